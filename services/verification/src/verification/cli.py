from __future__ import annotations

from pathlib import Path

from burgermelding_shared.cli import run_cli
from verification.config import VerificationSettings
from verification.models import audit


def main(argv: list[str] | None = None) -> None:
    run_cli(
        prog="burgermelding-verification",
        settings_factory=VerificationSettings,
        migrations_dir=Path(__file__).parent / "migrations",
        app_path="verification.main:create_app",
        argv=argv,
        audit=audit,
    )


if __name__ == "__main__":
    main()
