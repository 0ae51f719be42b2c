"""Write a new Alembic migration for a service by comparing its models with its migrated schema.

    uv run python scripts/new_migration.py report_intake 0003 "installations"

Migrates a throwaway SQLite database to head, autogenerates the difference, and leaves the script in the
service's `migrations/versions/` to be read and adjusted (autogenerate is a first draft, never the answer).
"""

from __future__ import annotations

import argparse
import importlib
import tempfile
from pathlib import Path

from alembic import command

from burgermelding_shared import migrations


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("package")
    parser.add_argument("revision")
    parser.add_argument("message")
    args = parser.parse_args()
    folder = Path(importlib.import_module(args.package).__file__).parent / "migrations"  # type: ignore[arg-type]
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite+aiosqlite:///{tmp}/draft.db"
        migrations.upgrade(folder, url)
        command.revision(migrations.alembic_config(folder, url), message=args.message, autogenerate=True,
                         rev_id=args.revision)


if __name__ == "__main__":
    main()
