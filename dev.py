#!/usr/bin/env python3
"""Burgermelding's two commands. Needs only Python 3.11 and pip; installs everything else it needs.

    python3 dev.py run     install, migrate and start all four services (Ctrl-C stops them all)
    python3 dev.py test    run the whole test suite on SQLite and again on PostgreSQL
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV_PYTHON = ROOT / ".venv" / "bin" / "python"
TOOLS = ROOT / ".tools"

# (package, settings prefix, default port, title)
SERVICES = [
    ("report_intake", "BM_INTAKE_", 8001, "report-intake"),
    ("verification", "BM_VERIFICATION_", 8002, "verification"),
    ("dispatch_bridge", "BM_BRIDGE_", 8003, "dispatch-bridge"),
    ("meldkamer_sim", "BM_MELDKAMER_", 8004, "simulated meldkamer"),
]


def say(message: str) -> None:
    print(f"[burgermelding] {message}", flush=True)


def find_uv() -> list[str]:
    """uv on PATH, or installed with pip (into a private tools venv when the system pip refuses)."""
    if shutil.which("uv"):
        return ["uv"]
    if (TOOLS / "bin" / "uv").exists():
        return [str(TOOLS / "bin" / "uv")]
    say("uv not found: installing it with pip")
    if subprocess.call([sys.executable, "-m", "pip", "install", "--quiet", "uv"]) == 0 and shutil.which("uv"):
        return ["uv"]
    subprocess.check_call([sys.executable, "-m", "venv", str(TOOLS)])
    subprocess.check_call([str(TOOLS / "bin" / "pip"), "install", "--quiet", "uv"])
    return [str(TOOLS / "bin" / "uv")]


def install() -> list[str]:
    uv = find_uv()
    say("installing dependencies (uv sync --frozen)")
    subprocess.check_call([*uv, "sync", "--frozen", "--python", "3.11"], cwd=ROOT)
    return uv


def migrate(env: dict[str, str]) -> None:
    for package, _prefix, _port, title in SERVICES:
        say(f"migrating {title}")
        subprocess.check_call([str(VENV_PYTHON), "-m", package, "migrate"], cwd=ROOT, env=env)


def wait_ready(url: str, seconds: float = 60) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=2) as response:  # noqa: S310 (our own local address)
                if response.status == 200:
                    return True
        except OSError:
            pass
        time.sleep(0.3)
    return False


def stop_all(children: list[subprocess.Popen[bytes]]) -> None:
    """Stop every child and everything it started (each child leads its own process group)."""
    for child in children:
        if child.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(child.pid, signal.SIGTERM)
    deadline = time.monotonic() + 10
    for child in children:
        with contextlib.suppress(subprocess.TimeoutExpired):
            child.wait(timeout=max(0.1, deadline - time.monotonic()))
    for child in children:  # the group may outlive its leader (worker processes): make sure it is gone
        with contextlib.suppress(ProcessLookupError):
            os.killpg(child.pid, signal.SIGKILL)


def run(_args: argparse.Namespace) -> int:
    install()
    env = dict(os.environ)
    migrate(env)
    children: list[subprocess.Popen[bytes]] = []
    stopping = False

    def on_signal(signum: int, _frame: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    try:
        for package, _prefix, _port, _title in SERVICES:
            children.append(subprocess.Popen([str(VENV_PYTHON), "-m", package, "serve"], cwd=ROOT, env=env,
                                             start_new_session=True))
        for package, prefix, port, title in SERVICES:
            actual = int(env.get(f"{prefix}PORT", port))
            host = env.get(f"{prefix}HOST", "127.0.0.1")
            ok = wait_ready(f"http://{host}:{actual}/readyz")
            say(f"{title:20s} {'ready' if ok else 'NOT READY'}  OpenAPI: http://{host}:{actual}/docs")
            if package == "dispatch_bridge":
                say(f"{'':20s} the dispatchers' console: http://{host}:{actual}/console (accounts: python -m "
                    "dispatch_bridge create-user, see the README)")
        say("all services started; Ctrl-C stops them all")
        while not stopping:
            for child in children:
                if child.poll() is not None:
                    say(f"a service exited with code {child.returncode}; stopping the rest")
                    stopping = True
            time.sleep(0.5)
    finally:
        say("stopping")
        stop_all(children)
    return 0


def postgres_reachable(host: str = "127.0.0.1", port: int = 5432) -> bool:
    import socket

    try:
        with socket.create_connection((host, port), timeout=2):
            return True
    except OSError:
        return False


def test(args: argparse.Namespace) -> int:
    uv = install()
    databases = ["sqlite", "postgresql"] if args.db == "both" else [args.db]
    failures = []
    for database in databases:
        if database == "postgresql" and not postgres_reachable():
            say("PostgreSQL is not reachable on 127.0.0.1:5432: the PostgreSQL run fails (start it first)")
            failures.append(database)
            continue
        say(f"test suite on {database}")
        # The deployment tests install each service alone, as its Dockerfile does, with this same uv.
        env = {**os.environ, "BM_TEST_DATABASE": database, "BM_TEST_UV": shutil.which(uv[0]) or uv[0]}
        code = subprocess.call([str(VENV_PYTHON), "-m", "pytest", *args.pytest_args], cwd=ROOT, env=env)
        if code != 0:
            failures.append(database)
    if failures:
        say(f"FAILED on: {', '.join(failures)}")
        return 1
    say(f"all tests passed on: {', '.join(databases)}")
    return 0


def lint(_args: argparse.Namespace) -> int:
    install()
    say("ruff check")
    return subprocess.call([str(VENV_PYTHON), "-m", "ruff", "check", "."], cwd=ROOT)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("run", help="install, migrate and start all four services")
    sub.add_parser("lint", help="ruff check")
    test_parser = sub.add_parser("test", help="run the test suite")
    test_parser.add_argument("--db", choices=["sqlite", "postgresql", "both"], default="both")
    test_parser.add_argument("pytest_args", nargs="*", help="passed on to pytest (after --)")
    args = parser.parse_args()
    return {"run": run, "test": test, "lint": lint}[args.command](args)


if __name__ == "__main__":
    sys.exit(main())
