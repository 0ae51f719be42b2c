"""What the README and the documentation site (docs/) say that the code decides must not drift from the code: the
settings page's table, generated from the settings classes, and the proof of work in the README's quick start
(`python3 dev.py solve`), against the test vector intake's OpenAPI document gives app developers."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from report_intake.schemas import CHALLENGE, CHALLENGE_DIGEST, CHALLENGE_SOLUTION

ROOT = Path(__file__).resolve().parents[1]


def test_the_settings_page_matches_the_settings() -> None:
    table = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "settings_table.py")],
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
    ).stdout
    page = (ROOT / "docs" / "settings.md").read_text()
    _by_hand, marker, generated = page.partition("do not edit by hand. -->\n\n")
    assert marker, "docs/settings.md has lost the marker line above its generated table"
    assert generated == table, "docs/settings.md is out of date: run .venv/bin/python scripts/settings_table.py --write"


def test_the_quick_starts_solver_solves_intakes_test_vector() -> None:
    """The quick start pipes intake's challenge through `python3 dev.py solve` (the machine's own Python, nothing
    installed) into the registration; an app developer checks a solver against the same vector, which the app
    developers' page gives."""
    page = (ROOT / "docs" / "app-developers.md").read_text()
    assert all(part in page for part in (CHALLENGE, CHALLENGE_SOLUTION, CHALLENGE_DIGEST)), (
        "docs/app-developers.md gives another test vector than intake's OpenAPI document"
    )
    solved = subprocess.run(
        ["python3", str(ROOT / "dev.py"), "solve"],
        input=json.dumps({"challenge": CHALLENGE, "difficulty_bits": 20, "expires_at": "2026-12-01T10:20:00Z"}),
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
    ).stdout
    assert json.loads(solved) == {"challenge": CHALLENGE, "solution": CHALLENGE_SOLUTION}
    alone = subprocess.run(
        ["python3", str(ROOT / "dev.py"), "solve", CHALLENGE, "20"], capture_output=True, text=True, check=True
    ).stdout
    assert alone.strip() == CHALLENGE_SOLUTION
