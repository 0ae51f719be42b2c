"""The command line every service shares: `<service> migrate` and `<service> serve`; a service with an audit
chain also has `audit-verify` and `audit-checkpoint`."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections.abc import Callable
from pathlib import Path

from burgermelding_shared import migrations
from burgermelding_shared.auditchain import AuditTables
from burgermelding_shared.settings import ServiceSettings


def run_cli(
    *,
    prog: str,
    settings_factory: Callable[[], ServiceSettings],
    migrations_dir: Path,
    app_path: str,
    argv: list[str] | None = None,
    audit: AuditTables | None = None,
) -> None:
    parser = argparse.ArgumentParser(prog=prog)
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("migrate", help="bring the database schema up to date (Alembic)")
    serve = sub.add_parser("serve", help="run the service with uvicorn")
    serve.add_argument("--reload", action="store_true")
    if audit is not None:
        check = sub.add_parser(
            "audit-verify",
            help="check the audit chain and its signed checkpoints; points at "
            "the first broken or missing entry (exit 1 when anything is wrong)",
        )
        check.add_argument(
            "--public-key",
            action="append",
            default=[],
            metavar="JWK",
            help="an earlier public key (JWK) its checkpoints were signed with; repeatable",
        )
        sub.add_parser("audit-checkpoint", help="sign the audit chain's head now")
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
        uvicorn.run(
            app_path,
            factory=True,
            host=settings.host,
            port=settings.port,
            reload=args.reload,
            access_log=False,
            log_config=None,
            http=http,
        )
    elif audit is not None and args.command in ("audit-verify", "audit-checkpoint"):
        sys.exit(asyncio.run(_audit_command(args, settings, audit)))


async def _audit_command(args: argparse.Namespace, settings: ServiceSettings, tables: AuditTables) -> int:
    from burgermelding_shared import auditchain
    from burgermelding_shared.db import Database

    db = Database(settings.effective_database_url)
    try:
        if args.command == "audit-checkpoint":
            point = await auditchain.write_checkpoint(db, tables, settings.signing_key)
            print(json.dumps(point) if point else "nothing new to sign since the last checkpoint")
            return 0
        keys = dict(auditchain.public_key_of(jwk) for jwk in settings.audit_checkpoint_keys)
        keys.update(auditchain.public_key_of(json.loads(jwk)) for jwk in args.public_key)
        keys[settings.signing_key.kid] = settings.signing_key.private_key.public_key()
        report = await auditchain.verify_chain(db, tables, keys)
        print(report.summary())
        return 0 if report.intact else 1
    finally:
        await db.dispose()
