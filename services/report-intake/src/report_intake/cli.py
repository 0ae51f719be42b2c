from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path

from burgermelding_shared.cli import run_cli
from burgermelding_shared.db import Database
from report_intake.config import IntakeSettings
from report_intake.installations import credentials
from report_intake.models import audit
from report_intake.records import retention as retention_rules


def revoke_installation(argv: list[str]) -> None:
    """`revoke-installation --report ID`: block the installation that made a report (abuse), without anyone
    learning which installation that is or which other reports it made."""
    from sqlalchemy import select

    from report_intake.models import Report

    parser = argparse.ArgumentParser(prog="burgermelding-report-intake revoke-installation")
    parser.add_argument("--report", required=True, help="the report id (or BM- reference) the abuse came with")
    args = parser.parse_args(argv)
    settings = IntakeSettings()

    async def run() -> str:
        db = Database(settings.effective_database_url)
        try:
            async with db.sessions() as session:
                report = (
                    (
                        await session.execute(
                            select(Report).where((Report.id == args.report) | (Report.reference == args.report))
                        )
                    )
                    .scalars()
                    .first()
                )
            if report is None:
                return "error: no such report"
            if report.installation_binding is None:
                return "error: this report was not made with an installation credential"
            found = await credentials.installation_of_report(
                db, settings.token_secret, report.id, report.installation_binding
            )
            if found is None:
                return "error: the installation of this report no longer exists"
            await credentials.revoke(db, found)
            return f"revoked the installation that made {report.reference}"
        finally:
            await db.dispose()

    outcome = asyncio.run(run())
    if outcome.startswith("error"):
        sys.exit(outcome)
    print(outcome)


def retention(argv: list[str]) -> None:
    """`retention [--dry-run]`: apply the retention rules now (the service also runs them on a schedule)."""
    import json
    from dataclasses import dataclass

    from burgermelding_shared.blobstore import BlobStore

    @dataclass(frozen=True)
    class Stores:  # a records.Stores
        db: Database
        blobs: BlobStore
        settings: IntakeSettings

    parser = argparse.ArgumentParser(prog="burgermelding-report-intake retention")
    parser.add_argument("--dry-run", action="store_true", help="say what would be removed, remove nothing")
    args = parser.parse_args(argv)
    settings = IntakeSettings()

    async def run() -> dict:
        db = Database(settings.effective_database_url)
        try:
            # The rules need the database, the photo store and the settings: what a running service holds.
            runtime = Stores(db=db, blobs=settings.blob_config().open(), settings=settings)
            done = await retention_rules.run_retention(runtime, settings.retention_rules, dry_run=args.dry_run)
            return {
                **done.summary(),
                "dry_run": args.dry_run,
                "reports": [{"reference": r.reference, "rule": r.rule, "action": r.action} for r in done.applied],
            }
        finally:
            await db.dispose()

    print(json.dumps(asyncio.run(run()), indent=2))


def integrators(argv: list[str]) -> None:
    """`integrators issue --name NAME [--reports-per-hour N]`, `integrators revoke ID`, `integrators list`: the
    api keys of Open311 integrators (open311/integrators.py). A new key is printed once and never again."""
    import getpass
    import json

    from report_intake.open311 import integrators as keys

    parser = argparse.ArgumentParser(prog="burgermelding-report-intake integrators")
    commands = parser.add_subparsers(dest="command", required=True)
    issuing = commands.add_parser("issue", help="issue a key for an integrator (printed once)")
    issuing.add_argument("--name", required=True, help="who the key is for, e.g. 'Gemeente Utrecht MOR'")
    issuing.add_argument("--reports-per-hour", type=int, help="its own limit (default: open311_reports_per_hour)")
    revoking = commands.add_parser("revoke", help="revoke a key: its requests are refused from now on")
    revoking.add_argument("integrator_id")
    commands.add_parser("list", help="the integrators, their limits and whether their key is revoked")
    args = parser.parse_args(argv)
    settings = IntakeSettings()
    operator = getpass.getuser()

    async def run() -> str:
        db = Database(settings.effective_database_url)
        try:
            if args.command == "issue":
                per_hour = args.reports_per_hour or settings.open311_reports_per_hour
                if per_hour < 1 or not args.name.strip():
                    return "error: a name and a positive --reports-per-hour are needed"
                issued = await keys.issue(db, args.name.strip()[:100], per_hour, operator)
                return json.dumps({"integrator_id": issued.integrator_id, "api_key": issued.api_key}, indent=2)
            if args.command == "revoke":
                if not await keys.revoke(db, args.integrator_id, operator):
                    return "error: no such integrator"
                return f"revoked the api_key of integrator {args.integrator_id}"
            rows = [
                {
                    "integrator_id": row.id,
                    "name": row.name,
                    "reports_per_hour": row.reports_per_hour,
                    "issued_at": row.issued_at.isoformat(),
                    "revoked_at": row.revoked_at.isoformat() if row.revoked_at else None,
                }
                for row in await keys.listing(db)
            ]
            return json.dumps(rows, indent=2)
        finally:
            await db.dispose()

    outcome = asyncio.run(run())
    if outcome.startswith("error"):
        sys.exit(outcome)
    print(outcome)


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["integrators"]:
        integrators(argv[1:])
        return
    if argv[:1] == ["revoke-installation"]:
        revoke_installation(argv[1:])
        return
    if argv[:1] == ["retention"]:
        retention(argv[1:])
        return
    run_cli(
        prog="burgermelding-report-intake",
        settings_factory=IntakeSettings,
        migrations_dir=Path(__file__).parent / "migrations",
        app_path="report_intake.main:create_app",
        argv=argv,
        audit=audit,
    )


if __name__ == "__main__":
    main()
