"""Issue #29: a legal hold holds at intake. A hold and a withdrawal under way cannot cross (the hold locks the
reports it covers, as a withdrawal locks its report, and says truthfully what had already gone), and a late
message about an older version of a hold (an extension delivered after the lift) cannot set it again."""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Any

import pytest
from sqlalchemy import select, text

from burgermelding_shared.contracts import LegalHold
from report_intake.models import HoldState, Photo, Report, ReportHold
from report_intake.records import holds
from tests.helpers import phone_photo, report_json
from tests.intake_support import post_report


async def a_report_with_a_photo(intake: Any, n: int) -> dict[str, Any]:
    created = await post_report(
        intake,
        report_json(description=f"melding {n}"),
        photos=[("p.jpg", phone_photo(n, 52.09, 5.12, size=(640, 480)), "image/jpeg")],
        key=f"key-{uuid.uuid4()}",
    )
    assert created.status_code == 202, created.text
    return dict(created.json())


async def holds_on(intake: Any, report_id: str) -> list[str]:
    async with intake.runtime.db.sessions() as session:
        return list(
            (await session.execute(select(ReportHold.hold_id).where(ReportHold.report_id == report_id))).scalars()
        )


async def waits_for_a_lock(intake: Any, limit_seconds: float = 10) -> None:
    """The barrier: until another transaction of this service waits for a lock the paused one holds (on
    PostgreSQL a row lock, seen in pg_stat_activity; on SQLite the process's turn to write)."""
    deadline = time.monotonic() + limit_seconds
    db = intake.runtime.db
    while time.monotonic() < deadline:
        if db.is_sqlite:
            waiting = bool(db._write_turn._waiters)
        else:
            async with db.sessions() as session:
                waiting = (
                    await session.execute(
                        text(
                            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                            "AND wait_event_type = 'Lock'"
                        )
                    )
                ).scalar_one() > 0
        if waiting:
            return
        await asyncio.sleep(0.02)
    raise AssertionError("the hold never waited for the withdrawal's lock: the two can cross")


async def test_a_withdrawal_under_way_and_a_hold_cannot_cross(intake: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    created = await a_report_with_a_photo(intake, 1)
    report_id = created["id"]
    paused, go = asyncio.Event(), asyncio.Event()
    original_is_held = holds.is_held

    async def is_held_then_pause(session: Any, checked: str) -> bool:
        held = await original_is_held(session, checked)
        paused.set()  # the withdrawal has decided "not held" and holds its report's lock
        await go.wait()
        return held

    monkeypatch.setattr(holds, "is_held", is_held_then_pause)
    withdrawal = asyncio.create_task(
        intake.client.post(
            f"/v1/reports/{report_id}/withdraw", headers={"Authorization": f"Bearer {created['access_token']}"}
        )
    )
    await asyncio.wait_for(paused.wait(), 10)
    hold = asyncio.create_task(
        holds.apply_hold(
            intake.runtime,
            LegalHold(hold_id=str(uuid.uuid4()), incident_id=str(uuid.uuid4()), report_ids=[report_id], active=True),
        )
    )
    await waits_for_a_lock(intake)
    go.set()
    withdrawn, answer = await withdrawal, await hold
    assert withdrawn.status_code == 200 and withdrawn.json()["personal_data"] == "removed"
    # The hold's answer is the truth: the report is kept from now on, but its words and photos had gone.
    assert answer["personal_data_gone"] == [report_id]
    async with intake.runtime.db.sessions() as session:
        assert (await session.execute(select(Photo).where(Photo.report_id == report_id))).scalars().all() == []


async def test_a_hold_in_force_first_keeps_a_withdrawn_report(intake: Any) -> None:
    created = await a_report_with_a_photo(intake, 2)
    answer = await holds.apply_hold(
        intake.runtime, LegalHold(hold_id=str(uuid.uuid4()), incident_id="i-1", report_ids=[created["id"]], active=True)
    )
    assert answer["held"] == [created["id"]] and answer["personal_data_gone"] == []
    withdrawn = await intake.client.post(
        f"/v1/reports/{created['id']}/withdraw", headers={"Authorization": f"Bearer {created['access_token']}"}
    )
    assert withdrawn.json()["personal_data"] == "kept_under_legal_hold"
    async with intake.runtime.db.sessions() as session:
        assert len((await session.execute(select(Photo).where(Photo.report_id == created["id"]))).scalars().all()) == 1


async def test_a_late_extension_cannot_set_a_lifted_hold_again(intake: Any) -> None:
    first, later = await a_report_with_a_photo(intake, 3), await a_report_with_a_photo(intake, 4)
    hold_id, incident_id = str(uuid.uuid4()), str(uuid.uuid4())

    def message(report_ids: list[str], active: bool, version: int) -> LegalHold:
        return LegalHold(
            hold_id=hold_id, incident_id=incident_id, report_ids=report_ids, active=active, version=version
        )

    await holds.apply_hold(intake.runtime, message([first["id"]], True, 1))
    assert await holds_on(intake, first["id"]) == [hold_id]
    await holds.apply_hold(intake.runtime, message([], False, 2))  # lifted
    # An extension queued before the lift (version 1) arrives after it: nothing is held again, ever.
    late = await holds.apply_hold(intake.runtime, message([later["id"]], True, 1))
    assert late["stale"] is True and late["held"] == []
    assert await holds_on(intake, later["id"]) == [] and await holds_on(intake, first["id"]) == []
    # The same message again, as a redelivery would bring it: still nothing.
    await holds.apply_hold(intake.runtime, message([later["id"], first["id"]], True, 1))
    assert await holds_on(intake, later["id"]) == []
    async with intake.runtime.db.sessions() as session:
        state = await session.get(HoldState, hold_id)
        assert state is not None and (state.version, state.active) == (2, False)
        # Retention may act on them again.
        assert (
            await session.execute(select(Report.anonymised_at).where(Report.id == first["id"]))
        ).scalar_one() is None


async def test_the_first_two_messages_of_a_hold_do_not_clash(intake: Any) -> None:
    """The set from the bridge and an extension through the outbox may arrive together for a new hold."""
    first, second = await a_report_with_a_photo(intake, 5), await a_report_with_a_photo(intake, 6)
    hold_id, incident_id = str(uuid.uuid4()), str(uuid.uuid4())
    answers = await asyncio.gather(
        *(
            holds.apply_hold(
                intake.runtime, LegalHold(hold_id=hold_id, incident_id=incident_id, report_ids=[r["id"]], active=True)
            )
            for r in (first, second)
        )
    )
    assert sorted(a["held"][0] for a in answers) == sorted([first["id"], second["id"]])
    assert await holds_on(intake, first["id"]) == [hold_id] and await holds_on(intake, second["id"]) == [hold_id]
