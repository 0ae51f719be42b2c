"""The command line every service shares: `<service> migrate` and `<service> serve`."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path

from burgermelding_shared import migrations
from burgermelding_shared.settings import ServiceSettings


def run_cli(
    *, prog: str, settings_factory: Callable[[], ServiceSettings], migrations_dir: Path, app_path: str,
    argv: list[str] | None = None,
) -> None:
    parser = argparse.ArgumentParser(prog=prog)
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("migrate", help="bring the database schema up to date (Alembic)")
    serve = sub.add_parser("serve", help="run the service with uvicorn")
    serve.add_argument("--reload", action="store_true")
    args = parser.parse_args(argv)
    settings = settings_factory()
    if args.command == "migrate":
        migrations.upgrade(migrations_dir, settings.effective_database_url)
    elif args.command == "serve":
        import uvicorn

        from burgermelding_shared.connections import header_timeout_protocol

        # --reload runs the app in a subprocess that gets uvicorn's settings pickled, which a class made at run
        # time cannot be: a developer's reloading server goes without the header deadline.
        http = "auto" if args.reload else header_timeout_protocol(settings.header_timeout_seconds)
        uvicorn.run(app_path, factory=True, host=settings.host, port=settings.port, reload=args.reload,
                    access_log=False, log_config=None, http=http)
