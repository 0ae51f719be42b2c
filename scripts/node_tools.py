"""Our Node.js tools, each a folder of tools/ with its package.json and committed lock file (tools/spectral: the
OpenAPI linter; tools/clients: the TypeScript client generator, tsc and tsx), installed the same way for lint and
for the tests: from the lock file, the first time one is needed."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path


class NodeToolMissing(RuntimeError):
    """The tool cannot be had: no npm on this machine, or the install failed (npm said why)."""


def node_tool(folder: Path, name: str, what: str) -> Path:
    """The executable `name` of the npm packages in `folder` (a folder of tools/), installed from its lock file
    with `npm ci` (no install scripts; from the npm registry) when its node_modules is not there yet. `what`
    names the tool in messages."""
    binary = folder / "node_modules" / ".bin" / name
    if binary.exists():
        return binary
    npm = shutil.which("npm")
    if npm is None:
        raise NodeToolMissing(f"{what} needs Node.js and npm (Debian: apt-get install nodejs npm)")
    print(f"installing {what} (npm ci in tools/{folder.name})", flush=True)
    installed = subprocess.run(  # noqa: S603 (npm from PATH, fixed arguments)
        [npm, "ci", "--ignore-scripts", "--no-audit", "--no-fund"], cwd=folder, check=False
    )
    if installed.returncode != 0 or not binary.exists():
        raise NodeToolMissing(f"npm ci in tools/{folder.name} failed (see above)")
    return binary
