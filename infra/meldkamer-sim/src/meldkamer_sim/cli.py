from __future__ import annotations

from pathlib import Path

from burgermelding_shared.cli import run_cli
from meldkamer_sim.config import MeldkamerSettings


def main(argv: list[str] | None = None) -> None:
    run_cli(
        prog="burgermelding-meldkamer-sim",
        settings_factory=MeldkamerSettings,
        migrations_dir=Path(__file__).parent / "migrations",
        app_path="meldkamer_sim.main:create_app",
        argv=argv,
    )


if __name__ == "__main__":
    main()
