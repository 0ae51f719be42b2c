#!/usr/bin/env python3
"""Set up this machine for the test suite: install the Debian packages the tests use and start the services they
talk to, saying what it does. `python3 dev.py test` runs it first (and so does CI, through that command); run it
alone with `python3 scripts/setup_machine.py`. Needs only Python 3.11 (standard library); installs as root, or
through `sudo -n` when that works without a password, and otherwise says what to install by hand.

What the tests need beside Python packages:
- Chromium and its driver (Debian: chromium, chromium-driver): the dispatchers' console is tested in a real browser,
  driven by Playwright from PyPI (Playwright's own browser download does not work here);
- WebKitGTK's WebDriver and MiniBrowser, an X server without a screen, and GStreamer's decoders (Debian:
  webkit2gtk-driver, xvfb, gstreamer1.0-libav, gstreamer1.0-plugins-good): the caller's page and the dispatcher's
  player in WebKit, Safari's engine (no Safari runs on Linux);
- nginx (Debian: nginx-light): the load balancer in front of the replicas in the production test;
- promtool (Debian: prometheus): checks the Prometheus alert rules;
- Redis on 127.0.0.1:6379 (Debian: redis-server): the replicas' shared state is tested against a real one;
- PostgreSQL on 127.0.0.1:5432 (trust authentication for user postgres) for the PostgreSQL pass: started if this
  machine has a cluster that is down (Debian's pg_ctlcluster); it is not installed or configured from here.

Exit status 0 when everything is in place, 1 when something is still missing (each named on stderr).
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path


def say(message: str) -> None:
    print(f"[burgermelding] {message}", flush=True)


def found(*candidates: str) -> bool:
    """A command on PATH or at one of the absolute paths given (Debian puts nginx in /usr/sbin, off a user's PATH)."""
    return any(Path(c).is_file() if c.startswith("/") else shutil.which(c) for c in candidates)


# (Debian package, how to tell it is installed, what needs it)
PACKAGES: list[tuple[str, Callable[[], bool], str]] = [
    ("chromium", lambda: found("/usr/bin/chromium"), "the console tests: the dispatchers' console runs in it"),
    ("chromium-driver", lambda: found("/usr/bin/chromedriver"), "the console tests: Chromium's driver"),
    ("webkit2gtk-driver", lambda: found("WebKitWebDriver"), "the WebKit tests: Safari's engine and its driver"),
    ("xvfb", lambda: found("Xvfb"), "the WebKit tests: a display for WebKitGTK"),
    (
        "gstreamer1.0-libav",
        lambda: Path("/usr/lib/x86_64-linux-gnu/gstreamer-1.0/libgstlibav.so").is_file(),
        "the WebKit tests: WebKit's video decoders (H.264, HEVC)",
    ),
    (
        "gstreamer1.0-plugins-good",
        lambda: Path("/usr/lib/x86_64-linux-gnu/gstreamer-1.0/libgstisomp4.so").is_file(),
        "the WebKit tests: WebKit's MP4 demuxer",
    ),
    ("nginx-light", lambda: found("nginx", "/usr/sbin/nginx"), "the production test: the replicas' load balancer"),
    ("prometheus", lambda: found("promtool"), "the metrics tests: promtool checks the alert rules"),
    ("redis-server", lambda: found("redis-server"), "the tests of the replicas' shared state: a real Redis"),
]


def listening(port: int, host: str = "127.0.0.1") -> bool:
    try:
        with socket.create_connection((host, port), timeout=2):
            return True
    except OSError:
        return False


def wait_listening(port: int, seconds: float = 30) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if listening(port):
            return True
        time.sleep(0.5)
    return False


def as_root() -> list[str] | None:
    """The prefix that runs a command as root: nothing (we are root), `sudo -n`, or None (we cannot)."""
    if os.geteuid() == 0:
        return []
    if shutil.which("sudo") and subprocess.run(["sudo", "-n", "true"], capture_output=True).returncode == 0:
        return ["sudo", "-n"]
    return None


def apt_install(packages: list[str]) -> bool:
    root = as_root()
    if root is None or not shutil.which("apt-get"):
        why = "not root and no password-less sudo" if shutil.which("apt-get") else "no apt-get on this machine"
        say(f"cannot install {' '.join(packages)} ({why}): install them by hand")
        return False
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    say("apt-get update")
    updated = subprocess.run([*root, "apt-get", "update", "-qq"], env=env, capture_output=True, text=True)
    if updated.returncode != 0:
        say(f"apt-get update failed (exit {updated.returncode}):\n{updated.stderr[-2000:]}")
    done = subprocess.run(
        [
            *root,
            "env",
            "DEBIAN_FRONTEND=noninteractive",
            "apt-get",
            "install",
            "-y",
            "-qq",
            *packages,
        ],
        env=env,
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        say(f"apt-get install {' '.join(packages)} failed (exit {done.returncode}):\n{done.stderr[-4000:]}")
        return False
    return True


def install_packages() -> list[str]:
    """Install the missing Debian packages in one apt-get call; the ones still missing afterwards."""
    missing = [(package, check, why) for package, check, why in PACKAGES if not check()]
    if not missing:
        say(
            "Debian packages the tests need: all installed (chromium, chromium-driver, nginx-light, prometheus, "
            "redis-server)"
        )
        return []
    for package, _check, why in missing:
        say(f"installing {package} (Debian package, needed by {why})")
    started = time.monotonic()
    apt_install([package for package, _check, _why in missing])
    still = [package for package, check, _why in missing if not check()]
    if not still:
        say(f"installed {' '.join(p for p, _c, _w in missing)} in {time.monotonic() - started:.0f} s")
    return still


def start_redis() -> bool:
    if listening(6379):
        say("Redis is listening on 127.0.0.1:6379")
        return True
    if not shutil.which("redis-server"):
        say("Redis is not listening on 127.0.0.1:6379 and redis-server is not installed")
        return False
    say("Redis is not listening on 127.0.0.1:6379: starting it (redis-server --daemonize yes, nothing kept on disk)")
    subprocess.run(
        [
            "redis-server",
            "--bind",
            "127.0.0.1",
            "--port",
            "6379",
            "--save",
            "",
            "--appendonly",
            "no",
            "--daemonize",
            "yes",
        ],
        check=False,
    )
    if wait_listening(6379):
        return True
    say("Redis did not start")
    return False


def start_postgresql() -> bool:
    if listening(5432):
        say("PostgreSQL is listening on 127.0.0.1:5432")
        return True
    clusters = sorted(p.name for p in Path("/etc/postgresql").iterdir()) if Path("/etc/postgresql").is_dir() else []
    root = as_root()
    if not clusters or not shutil.which("pg_ctlcluster") or root is None:
        say(
            "PostgreSQL is not listening on 127.0.0.1:5432 and there is no cluster here this script can start: "
            "the PostgreSQL pass needs one (trust authentication for user postgres)"
        )
        return False
    say(f"PostgreSQL is not listening on 127.0.0.1:5432: starting it (pg_ctlcluster {clusters[0]} main start)")
    subprocess.run(
        [*root, "pg_ctlcluster", "--skip-systemctl-redirect", clusters[0], "main", "start"],
        check=False,
    )
    if wait_listening(5432):
        return True
    say("PostgreSQL did not start")
    return False


def set_up(postgresql: bool = True) -> list[str]:
    """Everything the tests need on this machine; what could not be set up (empty when all is in place)."""
    problems = install_packages()
    if not start_redis():
        problems.append("Redis on 127.0.0.1:6379")
    if postgresql and not start_postgresql():
        problems.append("PostgreSQL on 127.0.0.1:5432")
    return problems


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--no-postgresql", action="store_true", help="do not start PostgreSQL (a SQLite-only run)")
    args = parser.parse_args()
    say("setting up this machine for the tests (scripts/setup_machine.py)")
    problems = set_up(postgresql=not args.no_postgresql)
    if problems:
        print(f"[burgermelding] missing: {', '.join(problems)}: the tests that need them will fail", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
