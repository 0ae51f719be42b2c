"""The README's settings table is generated from the settings classes; it must not drift from them."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_the_readme_settings_table_matches_the_settings() -> None:
    table = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "settings_table.py")],
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
    ).stdout.strip()
    readme = (ROOT / "README.md").read_text()
    assert table in readme, "README.md is out of date: paste the output of scripts/settings_table.py"
