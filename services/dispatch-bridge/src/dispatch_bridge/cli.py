from __future__ import annotations

import argparse
import asyncio
import getpass
import sys
from pathlib import Path

from burgermelding_shared.cli import run_cli
from burgermelding_shared.db import Database
from dispatch_bridge.accounts import users
from dispatch_bridge.config import BridgeSettings
from dispatch_bridge.models import audit


def create_user(argv: list[str]) -> None:
    """`create-user NAME --role dispatcher|supervisor [--reset]`; the password is read from stdin or asked for.
    An existing name is refused unless `--reset` is given: then it gets this password and role, is enabled, and
    every token and console session issued to it before ends."""

    parser = argparse.ArgumentParser(prog="burgermelding-dispatch-bridge create-user")
    parser.add_argument("username")
    parser.add_argument("--role", choices=users.ROLES, required=True)
    parser.add_argument(
        "--reset",
        action="store_true",
        help="give an existing account this password and role (ending its tokens and console sessions)",
    )
    args = parser.parse_args(argv)
    password = getpass.getpass("password: ") if sys.stdin.isatty() else sys.stdin.readline().rstrip("\n")
    settings = BridgeSettings()

    async def run() -> bool:
        db = Database(settings.effective_database_url)
        try:
            return await users.create_user(db, args.username, password, args.role, reset=args.reset)
        finally:
            await db.dispose()

    try:
        existed = asyncio.run(run())
    except ValueError as exc:  # AccountExists too
        sys.exit(f"error: {exc}")
    print(
        f"user {args.username} ({args.role}) "
        + ("reset: its earlier tokens and console sessions have ended" if existed else "created")
    )


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["create-user"]:
        create_user(argv[1:])
        return
    run_cli(
        prog="burgermelding-dispatch-bridge",
        settings_factory=BridgeSettings,
        migrations_dir=Path(__file__).parent / "migrations",
        app_path="dispatch_bridge.main:create_app",
        argv=argv,
        audit=audit,
    )


if __name__ == "__main__":
    main()
