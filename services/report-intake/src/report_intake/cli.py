from __future__ import annotations

from pathlib import Path

from burgermelding_shared.cli import run_cli
from report_intake.config import IntakeSettings


def main(argv: list[str] | None = None) -> None:
    run_cli(prog="burgermelding-report-intake", settings_factory=IntakeSettings,
            migrations_dir=Path(__file__).parent / "migrations", app_path="report_intake.main:create_app",
            argv=argv)


if __name__ == "__main__":
    main()
