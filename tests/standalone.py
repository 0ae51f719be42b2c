"""Each service installed alone, the way its Dockerfile installs it: its own environment with only its own package,
the shared library and what they declare. A dependency that only the workspace brings in shows up here as an
import error, where the workspace's own environment (tests, `dev.py run`) would hide it."""

from __future__ import annotations

import os
import shutil
import subprocess
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


def uv_command() -> str:
    """The uv that `dev.py test` installed with (it says so in BM_TEST_UV), else the one on PATH."""
    found = os.environ.get("BM_TEST_UV") or shutil.which("uv")
    if not found:
        raise RuntimeError("uv not found: run the tests with `python3 dev.py test`, which installs it")
    return found


def standalone_python(service: str) -> str:
    """The interpreter of the service's own environment, made (or brought up to date) with the Dockerfile's
    command: `uv sync --frozen --no-dev --no-editable --compile-bytecode --package <its distribution>`."""
    folder = ENVIRONMENTS / DISTRIBUTIONS[service]
    env = {k: v for k, v in os.environ.items() if k not in {"VIRTUAL_ENV", "UV_PROJECT_ENVIRONMENT"}}
    env["UV_PROJECT_ENVIRONMENT"] = str(folder)
    # Our own packages are built afresh each time: uv would otherwise reuse a wheel built from older sources
    # (their version does not change with every commit).
    ours = ["--reinstall-package", "burgermelding-shared", "--reinstall-package", DISTRIBUTIONS[service]]
    done = subprocess.run([uv_command(), "sync", "--frozen", "--no-dev", "--no-editable", "--compile-bytecode",
                           "--quiet", "--python", "3.11", "--package", DISTRIBUTIONS[service], *ours],
                          cwd=ROOT, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"installing {DISTRIBUTIONS[service]} alone failed:\n{done.stderr}")
    return str(folder / "bin" / "python")
