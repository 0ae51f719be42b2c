"""A real, small, size-limited filesystem for tests of a full photo disk: a tmpfs mounted for the test.

Mounting needs CAP_SYS_ADMIN (root outside a container); this machine and its CI have it, and there a mount that
fails is a failure of the test, never a skip: a skip would hide the whole chaos test. Only where mounting is truly
impossible (not Linux, no mount command, or a process without CAP_SYS_ADMIN) are these tests skipped, saying why;
`BM_TEST_REQUIRE_MOUNT=1` turns even that into a failure. They never run against an ordinary folder and pass.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

CAP_SYS_ADMIN = 21  # the capability bit mount(2) asks for (linux/capability.h)


def why_mounting_is_impossible() -> str | None:
    """Why this process cannot mount a filesystem at all, or None if it can (then a failed mount is an error)."""
    if sys.platform != "linux":
        return f"tmpfs is Linux's, this is {sys.platform}"
    if shutil.which("mount") is None:
        return "there is no mount command"
    status = Path("/proc/self/status").read_text()
    effective = next((line.split()[1] for line in status.splitlines() if line.startswith("CapEff:")), "0")
    if not int(effective, 16) >> CAP_SYS_ADMIN & 1:
        return "this process lacks CAP_SYS_ADMIN (it is not root, or runs in a container without it)"
    return None


@contextmanager
def small_filesystem(path: Path, size_mb: int) -> Iterator[Path]:
    """`path` as the mount point of a tmpfs of `size_mb` MB for as long as the context lasts."""
    impossible = why_mounting_is_impossible()
    if impossible is not None:
        message = f"needs a small real filesystem, and mounting one is impossible here: {impossible}"
        if os.environ.get("BM_TEST_REQUIRE_MOUNT"):
            pytest.fail(f"{message} (BM_TEST_REQUIRE_MOUNT is set)")
        pytest.skip(message)
    path.mkdir(parents=True, exist_ok=True)
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size_mb}m,mode=0700", "tmpfs", str(path)], capture_output=True, text=True
    )
    if mounted.returncode != 0:  # this machine can mount: that it did not is a failure, not a reason to skip
        pytest.fail(f"mounting a {size_mb} MB tmpfs at {path} failed: {mounted.stderr.strip()}")
    try:
        stats = os.statvfs(path)
        assert os.path.ismount(path) and stats.f_blocks * stats.f_frsize <= size_mb << 20, "not the small filesystem"
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False, capture_output=True)


def fill(folder: Path, leave_bytes: int = 0) -> Path:
    """Fill the filesystem of `folder` up to `leave_bytes` free, with one file that `free` removes."""
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
