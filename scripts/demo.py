"""`python3 dev.py run --demo`: two console accounts and a few sample reports, so the console shows something at once.

Runs (in the project's environment) against the services `dev.py run` has just started, as the people who use
them would: the accounts with the bridge's own command (`create-user`), the reports through intake's public API
as the app sends them (each phone an installation registered with its proof of work, photos with camera EXIF).
It also writes the photo that the README's quick start sends: `var/demo/photo.jpg`.

    .venv/bin/python scripts/demo.py http://127.0.0.1:8001 http://127.0.0.1:8003
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from tests.helpers import phone_photo, register_installation_at, report_json, report_parts  # noqa: E402

DEMO = ROOT / "var" / "demo"
ACCOUNTS = {"demo-dispatcher": "dispatcher", "demo-supervisor": "supervisor"}
QUICK_START_PLACE = (52.0907, 5.1214)  # the README's first report: Utrecht, behind a bakery


def say(message: str) -> None:
    print(f"[burgermelding] {message}", flush=True)


def accounts() -> dict[str, str]:
    """The demo accounts' passwords: made once and kept in var/demo/accounts.json (readable by its owner only), so
    that a browser's password manager keeps working from one `run --demo` to the next."""
    stored = DEMO / "accounts.json"
    passwords: dict[str, str] = json.loads(stored.read_text()) if stored.exists() else {}
    for name in ACCOUNTS:
        passwords.setdefault(name, secrets.token_urlsafe(12))
    DEMO.mkdir(parents=True, exist_ok=True)
    with os.fdopen(os.open(stored, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w") as out:
        out.write(json.dumps(passwords, indent=2) + "\n")
    for name, role in ACCOUNTS.items():
        # --reset: the account may exist already (an earlier demo), or not (a new database); either way it gets
        # this password.
        subprocess.run(  # noqa: S603 (the bridge's own command, fixed arguments)
            [sys.executable, "-m", "dispatch_bridge", "create-user", name, "--role", role, "--reset"],
            input=passwords[name] + "\n",
            text=True,
            check=True,
            capture_output=True,
            cwd=ROOT,
            env=os.environ,
        )
    return passwords


def sample_reports(now: datetime, seed: int) -> list[tuple[str, dict[str, Any], list[bytes]]]:
    """(phone, report, photos): a fight seen by two witnesses, a stolen bicycle, a tip without a photo, and a photo
    that verification holds for a human to look at (taken days earlier, kilometres from where it is said to be).
    The citizens' texts are Dutch, as the app's users write them."""
    leidseplein, rotterdam, den_haag, eindhoven = (
        (52.3641, 4.8830),
        (51.9244, 4.4690),
        (52.0799, 4.3113),
        (51.4416, 5.4697),
    )

    def photo(n: int, place: tuple[float, float], taken: datetime) -> bytes:
        return phone_photo(seed + n, *place, when=taken, size=(1200, 900))

    return [
        (
            "phone-1",
            report_json(
                category="violence",
                description="Vechtpartij voor een café: drie mannen, één ligt op de grond",
                location={"lat": leidseplein[0], "lon": leidseplein[1], "accuracy_m": 10},
                observed_at=now.isoformat(),
                in_progress=True,
            ),
            [photo(1, leidseplein, now)],
        ),
        (
            "phone-2",
            report_json(
                category="violence",
                description="Er wordt geschopt, iemand bloedt aan zijn hoofd",
                location={"lat": leidseplein[0] + 0.0003, "lon": leidseplein[1] - 0.0002, "accuracy_m": 15},
                observed_at=now.isoformat(),
                in_progress=True,
            ),
            [photo(2, (leidseplein[0] + 0.0003, leidseplein[1] - 0.0002), now)],
        ),
        (
            "phone-3",
            report_json(
                category="theft",
                description="Mijn fiets is gestolen bij het station, het slot is doorgeknipt",
                location={"lat": rotterdam[0], "lon": rotterdam[1], "accuracy_m": 20},
                observed_at=(now - timedelta(minutes=20)).isoformat(),
            ),
            [photo(3, rotterdam, now - timedelta(minutes=20))],
        ),
        (
            "phone-3",
            report_json(
                category="suspicious_situation",
                description="Een man kijkt al een uur bij geparkeerde auto's naar binnen",
                location={"lat": den_haag[0], "lon": den_haag[1], "accuracy_m": 30},
                observed_at=(now - timedelta(minutes=5)).isoformat(),
            ),
            [],
        ),
        (
            "phone-3",
            report_json(
                category="vandalism",
                description="Het bushokje is kapotgeslagen",
                location={"lat": eindhoven[0], "lon": eindhoven[1], "accuracy_m": 10},
                observed_at=(now - timedelta(minutes=10)).isoformat(),
            ),
            [photo(5, (eindhoven[0] + 0.05, eindhoven[1] + 0.05), now - timedelta(days=3))],
        ),
    ]


def main() -> int:
    intake, bridge = sys.argv[1], sys.argv[2]
    now = datetime.now(UTC).replace(microsecond=0)
    seed = int(now.timestamp())  # photos new at every start: the same picture again would be a duplicate
    DEMO.mkdir(parents=True, exist_ok=True)
    (DEMO / "photo.jpg").write_bytes(phone_photo(seed, *QUICK_START_PLACE, when=now, size=(1200, 900)))
    passwords = accounts()
    reports = sample_reports(now, seed)
    phones = sorted({phone for phone, _report, _photos in reports})
    say(f"demo: registering {len(phones)} app installations (a proof of work each, about a second)")
    with httpx.Client(timeout=60) as http:
        credentials = {phone: register_installation_at(intake, client=http)["credential"] for phone in phones}
        sent = []
        for phone, body, photos in reports:
            answer = http.post(
                f"{intake}/v1/reports",
                files=report_parts(body, photos),
                headers={"Idempotency-Key": f"demo-{uuid.uuid4()}", "Installation-Credential": credentials[phone]},
            )
            answer.raise_for_status()
            sent.append(
                f"{answer.json()['reference']} ({body['category']}{', in progress' if body['in_progress'] else ''})"
            )
    say(f"demo: sent {len(sent)} sample reports: {', '.join(sent)}")
    say(f"demo: a photo for your own first report (the README's quick start): {DEMO.relative_to(ROOT)}/photo.jpg")
    say(f"demo: the dispatchers' console: {bridge}/console, log in as")
    for name, role in ACCOUNTS.items():
        say(f"demo:   {name:16s} password {passwords[name]}   ({role})")
    say(f"demo: (the passwords are kept in {DEMO.relative_to(ROOT)}/accounts.json)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
