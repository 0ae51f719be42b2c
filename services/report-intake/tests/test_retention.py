"""Retention at intake on a real database (SQLite and PostgreSQL): each default rule removes exactly what it
says and when, a report under legal hold is left alone, and the audit chain, tampered with in the database
directly, is found broken by the service's own `audit-verify` command."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import uuid
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import delete, select, update

from burgermelding_shared.service_auth import development_key
from burgermelding_shared.timeutil import utcnow
from report_intake.config import IntakeSettings
from report_intake.models import Contact, Message, Photo, Report, audit, deletions
from report_intake.records import holds
from report_intake.records import retention as retention_rules
from tests.helpers import make_jpeg, report_json
from tests.intake_support import post_report


@pytest.fixture
async def intake(start_service: Callable[..., Any]) -> Any:
    return await start_service("report_intake", IntakeSettings, retention_interval_seconds=3600)


async def new_report(
    intake: Any, n: int, status: str | None = None, days_old: float = 0, finished_days_ago: float | None = None
) -> str:
    body = report_json(contact={"name": f"Getuige {n}", "share_with_police": True}, description=f"melding {n}")
    created = await post_report(intake, body, [("p.jpg", make_jpeg(pattern=n), "image/jpeg")], key=f"ret-{n:08d}")
    assert created.status_code == 202, created.text
    report_id = created.json()["id"]
    now = utcnow()
    async with intake.runtime.db.transaction() as session:
        values: dict[str, Any] = {"received_at": now - timedelta(days=days_old)}
        if status is not None:
            values.update(
                status=status,
                status_rank=10 if status != "rejected" else 9,
                finished_at=now - timedelta(days=finished_days_ago or 0),
            )
        await session.execute(update(Report).where(Report.id == report_id).values(**values))
        session.add(
            Message(id=str(uuid.uuid4()), report_id=report_id, direction="to_citizen", text="Welke kant?", sent_at=now)
        )
    return report_id


async def state(intake: Any, report_id: str) -> dict[str, Any]:
    async with intake.runtime.db.sessions() as session:
        report = (await session.execute(select(Report).where(Report.id == report_id))).scalars().first()
        return {
            "exists": report is not None,
            "description": report.description if report else None,
            "anonymised": report is not None and report.anonymised_at is not None,
            "contact": await session.get(Contact, report_id) is not None,
            "photos": len((await session.execute(select(Photo).where(Photo.report_id == report_id))).all()),
            "messages": len((await session.execute(select(Message).where(Message.report_id == report_id))).all()),
        }


async def test_the_default_rules_remove_exactly_what_they_say(intake: Any) -> None:
    rules = IntakeSettings().retention_rules
    young_spam = await new_report(intake, 1, "rejected", days_old=5, finished_days_ago=5)
    old_spam = await new_report(intake, 2, "rejected", days_old=31, finished_days_ago=31)
    closed = await new_report(intake, 3, "closed", days_old=2, finished_days_ago=1)
    open_case = await new_report(intake, 4, days_old=10)
    year_old = await new_report(intake, 5, "closed", days_old=366, finished_days_ago=360)
    ancient = await new_report(intake, 6, "closed", days_old=5 * 365 + 1, finished_days_ago=5 * 365)
    held = await new_report(intake, 7, "rejected", days_old=400, finished_days_ago=400)
    await holds.apply_hold(
        intake.runtime, holds.LegalHold(hold_id=str(uuid.uuid4()), incident_id="i-1", report_ids=[held], active=True)
    )
    blobs = intake.runtime.blobs
    async with intake.runtime.db.sessions() as session:
        old_spam_photo = (await session.execute(select(Photo.sha256).where(Photo.report_id == old_spam))).scalar()
    run = await retention_rules.run_retention(intake.runtime, rules)
    done = {(r.report_id, r.rule, r.action) for r in run.applied}
    assert done == {
        (old_spam, "rejected-purged", "purge"),
        (closed, "contact-after-closing", "remove_contact"),
        (young_spam, "contact-after-closing", "remove_contact"),
        (year_old, "anonymised-after-a-year", "anonymise"),
        (ancient, "purged-after-five-years", "purge"),
    }
    assert (await state(intake, old_spam))["exists"] is False and not blobs.exists(old_spam_photo)
    assert await state(intake, closed) == {
        "exists": True,
        "description": "melding 3",
        "anonymised": False,
        "contact": False,
        "photos": 1,
        "messages": 1,
    }
    assert await state(intake, open_case) == {
        "exists": True,
        "description": "melding 4",
        "anonymised": False,
        "contact": True,
        "photos": 1,
        "messages": 1,
    }
    assert await state(intake, year_old) == {
        "exists": True,
        "description": "",
        "anonymised": True,
        "contact": False,
        "photos": 0,
        "messages": 0,
    }
    assert (await state(intake, ancient))["exists"] is False
    assert await state(intake, held) == {
        "exists": True,
        "description": "melding 7",
        "anonymised": False,
        "contact": True,
        "photos": 1,
        "messages": 1,
    }
    # A second run finds nothing left to do; the deletion log holds one row per removal, nothing personal.
    assert (await retention_rules.run_retention(intake.runtime, rules)).applied == []
    async with intake.runtime.db.sessions() as session:
        logged = (await session.execute(select(deletions))).mappings().all()
    assert len(logged) == 5 and "Getuige" not in str(logged) and "melding" not in str(logged)
    # Each copy hears of it (verification never of a contact removal: it has no contact details).
    async with intake.runtime.db.sessions() as session:
        told = (
            (
                await session.execute(
                    select(intake.runtime.messaging.outbox.c.destination).where(
                        intake.runtime.messaging.outbox.c.kind == "report.retention"
                    )
                )
            )
            .scalars()
            .all()
        )
    assert sorted(told).count("dispatch-bridge") == 5 and sorted(told).count("verification") == 3


async def test_a_same_picture_in_another_report_keeps_its_blob(intake: Any) -> None:
    image = make_jpeg(pattern=11)
    first = (await post_report(intake, report_json(), [("a.jpg", image, "image/jpeg")], key="same-pic-1")).json()
    await post_report(intake, report_json(description="again"), [("b.jpg", image, "image/jpeg")], key="same-pic-2")
    async with intake.runtime.db.transaction() as session:
        report = (await session.execute(select(Report).where(Report.id == first["id"]))).scalars().one()
        digest = (await session.execute(select(Photo.sha256).where(Photo.report_id == report.id))).scalar()
        await retention_rules.remove(intake.runtime, session, report, "purge", "test")
    assert intake.runtime.blobs.exists(digest)


async def test_the_command_finds_entries_edited_deleted_or_reordered_in_the_database(intake: Any) -> None:
    for n in range(3):
        await post_report(intake, report_json(), [("p.jpg", make_jpeg(pattern=n), "image/jpeg")], key=f"chain-{n:04d}")
    env = {"BM_INTAKE_DATABASE_URL": intake.settings.database_url, "PATH": "/usr/bin:/bin"}

    def command(name: str) -> Any:  # a real process, as an operator runs it, off the test's event loop
        return asyncio.to_thread(
            subprocess.run,
            [sys.executable, "-m", "report_intake", name],
            env=env,
            text=True,
            capture_output=True,
            timeout=60,
        )

    async def verify() -> subprocess.CompletedProcess:
        return await command("audit-verify")

    assert (await command("audit-checkpoint")).returncode == 0
    intact = await verify()
    assert intact.returncode == 0 and "intact" in intact.stdout, intact.stdout + intact.stderr
    entries = audit.entries
    db = intake.runtime.db

    async def tamper(*statements: Any) -> None:
        async with db.engine.begin() as conn:
            for statement in statements:
                await conn.execute(statement)

    async def rows() -> list[dict[str, Any]]:
        async with db.engine.connect() as conn:
            return [dict(r) for r in (await conn.execute(select(entries).order_by(entries.c.seq))).mappings()]

    before = await rows()
    await tamper(update(entries).where(entries.c.seq == 2).values(action="photo.deleted"))
    edited = await verify()
    assert edited.returncode == 1 and "BROKEN at entry 2" in edited.stdout and "[changed]" in edited.stdout
    await tamper(
        update(entries).where(entries.c.seq == 2).values(action=before[1]["action"]),
        delete(entries).where(entries.c.seq == 4),
    )
    deleted = await verify()
    assert deleted.returncode == 1 and "BROKEN at entry 4" in deleted.stdout and "[missing]" in deleted.stdout
    await tamper(*[delete(entries)], *[entries.insert().values(**row) for row in before])
    assert (await verify()).returncode == 0  # put back as it was: intact again
    third, fifth = before[2], before[4]
    await tamper(
        delete(entries).where(entries.c.seq.in_([3, 5])),
        entries.insert().values(**{**third, "seq": 5}),
        entries.insert().values(**{**fifth, "seq": 3}),
    )
    reordered = await verify()
    assert reordered.returncode == 1 and "BROKEN at entry 3" in reordered.stdout, reordered.stdout
    async with db.engine.connect() as conn:  # signed with the service's own key, by its id
        assert (await conn.execute(select(audit.checkpoints.c.key_id))).scalar() == development_key("report-intake").kid
