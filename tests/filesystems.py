"""A real, small, size-limited filesystem for tests of a full photo disk: a tmpfs mounted for the test.

Mounting needs the right to (root, or CAP_SYS_ADMIN); this machine and its CI have it. Where it is refused, the
tests that need it are skipped with the reason, never run against an ordinary folder and reported as passing.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest


@contextmanager
def small_filesystem(path: Path, size_mb: int) -> Iterator[Path]:
    """`path` as the mount point of a tmpfs of `size_mb` MB for as long as the context lasts."""
    path.mkdir(parents=True, exist_ok=True)
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size_mb}m,mode=0700", "tmpfs", str(path)],
                             capture_output=True, text=True)
    if mounted.returncode != 0:
        pytest.skip(f"this machine refuses to mount a small filesystem: {mounted.stderr.strip()}")
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False, capture_output=True)


def fill(folder: Path, leave_bytes: int = 0) -> Path:
    """Fill the filesystem of `folder` up to `leave_bytes` free, with one file that `free` removes."""
    import os

    filler = folder / "filler"
    stats = os.statvfs(folder)
    free = stats.f_bavail * stats.f_frsize
    with filler.open("wb") as fh:
        remaining = max(0, free - leave_bytes)
        while remaining > 0:
            step = min(remaining, 1 << 20)
            try:
                fh.write(b"\0" * step)
                fh.flush()
            except OSError:
                break
            remaining -= step
    return filler
