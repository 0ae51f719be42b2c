#!/usr/bin/env python3
"""Burgermelding's two commands. Needs only Python 3.11 and pip; installs everything else it needs.

python3 dev.py run     install, migrate and start all four services (Ctrl-C stops them all); with --demo also
                       a dispatcher, a supervisor and a few sample reports, so the console shows something at once
python3 dev.py test    set up this machine for the tests (Debian packages, Redis, PostgreSQL: see
                       scripts/setup_machine.py), then run the whole test suite on SQLite and on PostgreSQL

Besides: `lint` (what CI runs before the tests) and `solve` (an installation's proof of work, for the README's
quick start).
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import itertools
import json
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
    ("sms_sim", "BM_SMS_SIM_", 8005, "simulated SMS gateway"),
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


def service_url(env: dict[str, str], prefix: str, default_port: int) -> str:
    return f"http://{env.get(f'{prefix}HOST', '127.0.0.1')}:{int(env.get(f'{prefix}PORT', default_port))}"


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


# The simulated meldkamer's dispatcher under --demo: as by default, but an incident stays open for ten minutes (not
# one), so that a newcomer following the README has time to answer the question and look at it in the console.
DEMO_MELDKAMER_SCRIPT = [
    ["Active", 2.0],
    ["ResourcesAssigned", 10.0],
    ["ask:Can you describe the person you saw?", 15.0],
    ["Closed", 600.0],
]


def run(args: argparse.Namespace) -> int:
    install()
    env = dict(os.environ)
    if args.demo:
        env.setdefault("BM_MELDKAMER_SCRIPT", json.dumps(DEMO_MELDKAMER_SCRIPT))
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
            children.append(
                subprocess.Popen([str(VENV_PYTHON), "-m", package, "serve"], cwd=ROOT, env=env, start_new_session=True)
            )
        urls = {package: service_url(env, prefix, port) for package, prefix, port, _title in SERVICES}
        ready = True
        for package, _prefix, _port, title in SERVICES:
            ok = wait_ready(f"{urls[package]}/readyz")
            ready = ready and ok
            api = {"verification": "internal only", "sms_sim": f"{urls[package]} (the SMS callers get)"}.get(
                package, f"OpenAPI: {urls[package]}/docs"
            )
            say(f"{title:21s} {'ready' if ok else 'NOT READY'}  {api}")
            if package == "dispatch_bridge":
                say(
                    f"{'':20s} the dispatchers' console: {urls[package]}/console"
                    + ("" if args.demo else " (accounts: --demo makes two, or python -m dispatch_bridge create-user)")
                )
        if args.demo and not ready:
            say("no demo: not every service is ready (see above)")
        elif args.demo and not stopping:
            # Its own process in the environment the services run in: it uses the bridge's command and httpx.
            subprocess.call(
                [str(VENV_PYTHON), "scripts/demo.py", urls["report_intake"], urls["dispatch_bridge"]], cwd=ROOT, env=env
            )
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


def set_up_machine(postgresql: bool) -> None:
    """What the tests need beside Python packages (Chromium, nginx, promtool, Redis, a running PostgreSQL):
    scripts/setup_machine.py installs or starts what is missing and says so. What it cannot set up is reported,
    and the tests that need it fail (they are never skipped)."""
    script = [sys.executable, str(ROOT / "scripts" / "setup_machine.py"), *([] if postgresql else ["--no-postgresql"])]
    if subprocess.call(script, cwd=ROOT) != 0:
        say("this machine is not fully set up (see above): the tests that need what is missing will fail")


def serial_modules(pytest_args: list[str]) -> list[str]:
    """What the serial step collects: the test modules that mark a test serial, unless the arguments name paths
    themselves (collecting the whole suite only to leave out all but a few tests costs a core for seconds)."""
    if any(not arg.startswith("-") and (ROOT / arg.split("::", 1)[0]).exists() for arg in pytest_args):
        return []
    return sorted(
        str(path.relative_to(ROOT))
        for folder in ("shared", "services", "infra", "tests")
        for path in (ROOT / folder).rglob("test_*.py")
        if "mark.serial" in path.read_text(errors="replace")
    )


def pytest_step(step: str, workers: int, pytest_args: list[str], env: dict[str, str]) -> int:
    """One step of a pass: "parallel" (every test not marked serial, on `workers` processes) or "serial" (the
    tests marked serial, one at a time). pytest's exit code; 5 means the step had no test to run."""
    if step == "serial":
        pytest_args = [*pytest_args, *serial_modules(pytest_args)]
    # loadgroup: a module whose tests share a running suite stays on one worker (see conftest.py).
    parallel = step == "parallel" and workers > 1
    # In collection order (conftest.py puts the long end-to-end tests first), not xdist's "most tests first".
    spread = ["-n", str(workers), "--dist", "loadgroup", "--no-loadscope-reorder"] if parallel else ["-p", "no:xdist"]
    command = [str(VENV_PYTHON), "-m", "pytest", *spread, *pytest_args]
    return subprocess.call(command, cwd=ROOT, env={**env, "BM_TEST_STEP": step})


def print_slowest(durations: Path, count: int = 30) -> None:
    if not durations.exists():
        return
    rows = [json.loads(line) for line in durations.read_text().splitlines() if line.strip()]
    rows.sort(key=lambda row: -row["seconds"])
    say(f"the slowest {min(count, len(rows))} tests (setup + call + teardown, of {len(rows)} run):")
    for row in rows[:count]:
        print(f"  {row['seconds']:7.1f} s  {row['database']:10s}  {row['test']}", flush=True)


def test(args: argparse.Namespace) -> int:
    started = time.monotonic()
    uv = install()
    databases = ["sqlite", "postgresql"] if args.db == "both" else [args.db]
    set_up_machine(postgresql="postgresql" in databases)
    workers = args.workers or len(os.sched_getaffinity(0))
    failures = []
    # Every test's time, kept after the run (var/ is ignored by git) for finding where CI's minutes go.
    durations = ROOT / "var" / "test-durations.jsonl"
    durations.parent.mkdir(parents=True, exist_ok=True)
    durations.unlink(missing_ok=True)
    for database in databases:
        if database == "postgresql" and not postgres_reachable():
            say("PostgreSQL is not reachable on 127.0.0.1:5432: the PostgreSQL run fails")
            failures.append(database)
            continue
        # The deployment tests install each service alone, as its Dockerfile does, with this same uv.
        env = {
            **os.environ,
            "BM_TEST_DATABASE": database,
            "BM_TEST_UV": shutil.which(uv[0]) or uv[0],
            "BM_TEST_DURATIONS": str(durations),
        }
        if database != databases[0]:
            # The tests that touch no database ran in the first pass; here they would run the same way again.
            env["BM_TEST_DATABASE_TESTS_ONLY"] = "1"
            say(f"test suite on {database}: the tests that touch a database (the others ran on {databases[0]})")
        else:
            say(f"test suite on {database}")
        pass_started = time.monotonic()
        say(f"{database}: the tests not marked serial, on {workers} worker{'s' if workers > 1 else ''}")
        parallel = pytest_step("parallel", workers, args.pytest_args, env)
        say(f"{database}: the tests marked serial (they need the machine to themselves), one at a time")
        serial = pytest_step("serial", workers, args.pytest_args, env)
        codes = {parallel, serial}
        say(f"{database}: {time.monotonic() - pass_started:.0f} s")
        if codes == {5} or codes - {0, 5}:  # 5: no test in that step; in neither step is a failure
            failures.append(database)
    print_slowest(durations)
    say(f"time: {time.monotonic() - started:.0f} s")
    if failures:
        say(f"FAILED on: {', '.join(failures)}")
        return 1
    say(f"all tests passed on: {', '.join(databases)}")
    return 0


# What `lint` checks, each a command that fails on a finding: style, format, types, and the import rules (no
# service imports another, the shared library imports none, no module imports one that imports it back), and the
# published OpenAPI documents against their committed snapshots (scripts/openapi_contract.py), and the docs site.
LINT_STEPS = [
    ("ruff check", ["-m", "ruff", "check", "."]),
    ("ruff format --check", ["-m", "ruff", "format", "--check", "."]),
    ("mypy", ["-m", "mypy"]),
    (
        "import contracts (import-linter)",
        ["-c", "import sys; from importlinter.cli import lint_imports_command; sys.exit(lint_imports_command())"],
    ),
    ("import circles", ["scripts/import_cycles.py"]),
    ("the error catalogue (scripts/error_catalogue.py)", ["scripts/error_catalogue.py", "--check"]),
    ("OpenAPI snapshots, their versions, Spectral", ["scripts/openapi_contract.py", "--check"]),
    # The documentation site (mkdocs.yml, docs/), built into site/ (ignored by git): a broken link or anchor, a
    # page left out of the nav, a missing snippet fails. Not --quiet: that hides the warnings --strict fails on.
    ("the documentation site (mkdocs build --strict)", ["-m", "mkdocs", "build", "--strict"]),
]


def lint(_args: argparse.Namespace) -> int:
    install()
    env = {"NO_MKDOCS_2_WARNING": "1", **os.environ}  # mkdocs-material's banner about its successor, at every build
    failed = []
    for title, command in LINT_STEPS:
        say(title)
        if subprocess.call([str(VENV_PYTHON), *command], cwd=ROOT, env=env) != 0:
            failed.append(title)
    if failed:
        say(f"lint FAILED: {', '.join(failed)}")
        return 1
    say("lint passed")
    return 0


def solve_challenge(challenge: str, difficulty_bits: int) -> str:
    """The proof of work an app does once before it registers: the first decimal counter whose SHA-256 of
    `<challenge>:<counter>` starts with `difficulty_bits` zero bits (report-intake's registration.solve, in the
    Python every machine has, so that the README's curl session needs nothing installed)."""
    for counter in itertools.count():
        digest = hashlib.sha256(f"{challenge}:{counter}".encode()).digest()
        if int.from_bytes(digest, "big") >> (256 - difficulty_bits) == 0:
            return str(counter)
    raise AssertionError("unreachable")


def solve(args: argparse.Namespace) -> int:
    if args.challenge:
        print(solve_challenge(args.challenge, args.difficulty_bits))
        return 0
    issued = json.load(sys.stdin)  # intake's answer to POST /v1/installations/challenges
    solution = solve_challenge(issued["challenge"], int(issued["difficulty_bits"]))
    print(json.dumps({"challenge": issued["challenge"], "solution": solution}))
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    run_parser = sub.add_parser("run", help="install, migrate and start all four services")
    run_parser.add_argument(
        "--demo",
        action="store_true",
        help="also create a dispatcher and a supervisor (printing their passwords) and send a few sample reports",
    )
    sub.add_parser(
        "lint", help="ruff check and format, mypy, the import contracts and circles, the snapshots, the docs site"
    )
    solve_parser = sub.add_parser(
        "solve",
        help="solve an installation challenge (the proof of work an app does before registering): with no "
        "arguments, reads intake's challenge (JSON) on stdin and prints the body that redeems it",
    )
    solve_parser.add_argument("challenge", nargs="?", help="the challenge; prints just the solution")
    solve_parser.add_argument("difficulty_bits", nargs="?", type=int, default=20)
    test_parser = sub.add_parser("test", help="run the test suite")
    test_parser.add_argument("--db", choices=["sqlite", "postgresql", "both"], default="both")
    test_parser.add_argument(
        "--workers",
        type=int,
        default=0,
        help="pytest-xdist workers for the tests not marked serial (default: one per core)",
    )
    test_parser.add_argument("pytest_args", nargs="*", help="passed on to pytest (after --)")
    args = parser.parse_args()
    return {"run": run, "test": test, "lint": lint, "solve": solve}[args.command](args)


if __name__ == "__main__":
    sys.exit(main())
