"""Each service installed alone, the way its Dockerfile installs it: its own environment with only its own package,
the shared library and what they declare. A dependency that only the workspace brings in shows up here as an
import error, where the workspace's own environment (tests, `dev.py run`) would hide it.

An environment is made once for the sources it holds: it records a digest of them (the lock file, the
workspace's and the package's `pyproject.toml`, the shared library's and the service's sources), and is made
again when any of them changed. Test processes that want the same environment at once take turns (a file lock).
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import shutil
import subprocess
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ENVIRONMENTS = ROOT / ".standalone"

# service name (as in tests.suite.SERVICES): its distribution, as its Dockerfile names it to `uv sync --package`
DISTRIBUTIONS = {
    "intake": "burgermelding-report-intake",
    "verification": "burgermelding-verification",
    "bridge": "burgermelding-dispatch-bridge",
    "meldkamer": "burgermelding-meldkamer-sim",
}


# service name: its member's folder in the workspace
FOLDERS = {
    "intake": ROOT / "services" / "report-intake",
    "verification": ROOT / "services" / "verification",
    "bridge": ROOT / "services" / "dispatch-bridge",
    "meldkamer": ROOT / "infra" / "meldkamer-sim",
}
STAMP = "burgermelding-sources.sha256"


def sources_digest(service: str) -> str:
    """A digest of everything the service's own environment is made from."""
    digest = hashlib.sha256()
    files = [ROOT / "uv.lock", ROOT / "pyproject.toml"]
    for member in (ROOT / "shared", FOLDERS[service]):
        files.append(member / "pyproject.toml")
        files += sorted(
            path
            for path in (member / "src").rglob("*")
            if path.is_file() and "__pycache__" not in path.parts and path.suffix != ".pyc"
        )
    for path in files:
        digest.update(str(path.relative_to(ROOT)).encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()


def uv_command() -> str:
    """The uv that `dev.py test` installed with (it says so in BM_TEST_UV), else the one on PATH."""
    found = os.environ.get("BM_TEST_UV") or shutil.which("uv")
    if not found:
        raise RuntimeError("uv not found: run the tests with `python3 dev.py test`, which installs it")
    return found


def standalone_python(service: str) -> str:
    """The interpreter of the service's own environment, made (or brought up to date) with the Dockerfile's
    command: `uv sync --frozen --no-dev --no-editable --compile-bytecode --package <its distribution>`; made
    again only when its sources changed since (see the module's text). The first call makes all four
    environments side by side, since whoever wants one wants them all."""
    if not _all_made:
        with ThreadPoolExecutor(len(DISTRIBUTIONS)) as pool:
            list(pool.map(_environment, DISTRIBUTIONS))
        _all_made.append(True)
    return _environment(service)


_all_made: list[bool] = []


def _environment(service: str) -> str:
    folder = ENVIRONMENTS / DISTRIBUTIONS[service]
    ENVIRONMENTS.mkdir(parents=True, exist_ok=True)
    with (ENVIRONMENTS / f"{DISTRIBUTIONS[service]}.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        digest = sources_digest(service)
        stamp, python = folder / STAMP, folder / "bin" / "python"
        if python.exists() and stamp.exists() and stamp.read_text() == digest:
            return str(python)
        stamp.unlink(missing_ok=True)
        made = _sync(service, folder)
        stamp.write_text(digest)
        return made


def _sync(service: str, folder: Path) -> str:
    env = {k: v for k, v in os.environ.items() if k not in {"VIRTUAL_ENV", "UV_PROJECT_ENVIRONMENT"}}
    env["UV_PROJECT_ENVIRONMENT"] = str(folder)
    # Our own packages are built afresh each time the environment is made: uv would otherwise reuse a wheel built
    # from older sources (their version does not change with every commit).
    ours = ["--reinstall-package", "burgermelding-shared", "--reinstall-package", DISTRIBUTIONS[service]]
    done = subprocess.run(
        [
            uv_command(),
            "sync",
            "--frozen",
            "--no-dev",
            "--no-editable",
            "--compile-bytecode",
            "--quiet",
            "--python",
            "3.11",
            "--package",
            DISTRIBUTIONS[service],
            *ours,
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        raise RuntimeError(f"installing {DISTRIBUTIONS[service]} alone failed:\n{done.stderr}")
    return str(folder / "bin" / "python")
