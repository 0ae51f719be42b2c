from __future__ import annotations

from pathlib import Path

from burgermelding_shared.cli import run_cli
from verification.config import VerificationSettings


def main(argv: list[str] | None = None) -> None:
    run_cli(prog="burgermelding-verification", settings_factory=VerificationSettings,
            migrations_dir=Path(__file__).parent / "migrations", app_path="verification.main:create_app",
            argv=argv)


if __name__ == "__main__":
    main()
