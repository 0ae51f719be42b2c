"""Our Node.js tools, each a folder of tools/ with its package.json and committed lock file (tools/spectral: the
OpenAPI linter; tools/clients: the TypeScript client generator, tsc and tsx), installed the same way for lint and
for the tests: from the lock file, the first time one is needed.

An install is kept on the machine, by the lock file's hash (`~/.cache/burgermelding/node-tools/`), and a clone's
tools/<name>/node_modules links to it: CI runs on a new clone every time, and would otherwise spend some 20 s of
its two cores on `npm ci` of the same lock files in every run. A changed lock file is another hash, another install.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

CACHE = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "burgermelding" / "node-tools"


class NodeToolMissing(RuntimeError):
    """The tool cannot be had: no npm on this machine, or the install failed (npm said why)."""


def _installed(folder: Path, what: str) -> Path:
    """The node_modules installed from `folder`'s lock file, in the machine's cache (installed there now if not)."""
    lock = (folder / "package-lock.json").read_bytes()
    cached = CACHE / f"{folder.name}-{hashlib.sha256(lock).hexdigest()[:16]}"
    if (cached / "node_modules").is_dir():
        return cached / "node_modules"
    npm = shutil.which("npm")
    if npm is None:
        raise NodeToolMissing(f"{what} needs Node.js and npm (Debian: apt-get install nodejs npm)")
    print(f"installing {what} (npm ci of tools/{folder.name}'s lock file, kept in {CACHE})", flush=True)
    CACHE.mkdir(parents=True, exist_ok=True)
    # Installed beside the cache entry and renamed into place: a run beside this one never sees half an install.
    with tempfile.TemporaryDirectory(dir=CACHE, prefix=f".{folder.name}-") as scratch:
        for name in ("package.json", "package-lock.json"):
            shutil.copy2(folder / name, Path(scratch) / name)
        installed = subprocess.run(  # noqa: S603 (npm from PATH, fixed arguments)
            [npm, "ci", "--ignore-scripts", "--no-audit", "--no-fund"], cwd=scratch, check=False
        )
        if installed.returncode != 0:
            raise NodeToolMissing(f"npm ci of tools/{folder.name}'s lock file failed (see above)")
        cached.mkdir(exist_ok=True)
        try:
            os.rename(Path(scratch) / "node_modules", cached / "node_modules")
        except OSError:  # another run put it there first: theirs is the same install
            if not (cached / "node_modules").is_dir():
                raise
    return cached / "node_modules"


def node_tool(folder: Path, name: str, what: str) -> Path:
    """The executable `name` of the npm packages in `folder` (a folder of tools/), installed from its lock file
    with `npm ci` (no install scripts; from the npm registry) when it is not installed yet. `what` names the tool
    in messages."""
    modules = folder / "node_modules"
    if modules.is_symlink() and not modules.exists():
        modules.unlink()  # its cache entry is gone: install again
    if not modules.exists():
        modules.symlink_to(_installed(folder, what), target_is_directory=True)
    binary = modules / ".bin" / name
    if not binary.exists():
        raise NodeToolMissing(f"{what}: tools/{folder.name} has no {name} (remove its node_modules to reinstall)")
    return binary
