"""Legal holds at intake: reports kept as evidence, versioned so a late message cannot set a lifted hold again."""

from __future__ import annotations

import logging
from typing import Any

from sqlalchemy import delete, exists
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from burgermelding_shared.app import Runtime
from burgermelding_shared.contracts import LegalHold
from burgermelding_shared.timeutil import utcnow
from report_intake.models import (
    HoldState,
    Report,
    ReportHold,
)
from report_intake.records.audit import record

log = logging.getLogger(__name__)


async def is_held(session: AsyncSession, report_id: str) -> bool:
    return (await session.execute(select(exists().where(col(ReportHold.report_id) == report_id)))).scalar() is True


async def apply_hold(runtime: Runtime, hold: LegalHold) -> dict[str, Any]:
    """Set, extend or lift a hold; returns which of its reports are held, which no longer exist here (purged
    before the hold) and which are kept but had lost their personal data already (a withdrawal or retention
    that came first). The reports are locked, as a withdrawal locks its report, so the answer is the truth: a
    withdrawal under way either finishes first (and is named) or sees the hold. A message about an older
    version of the hold than intake has seen (an extension delivered after the lift) changes nothing."""
    async with runtime.db.transaction() as session:
        # The hold's row first (made if new, without a clash when its first two messages meet), then locked.
        dialect = sqlite if runtime.db.is_sqlite else postgresql
        await session.execute(
            dialect.insert(HoldState)
            .values(hold_id=hold.hold_id, incident_id=hold.incident_id, version=0, active=False, changed_at=utcnow())
            .on_conflict_do_nothing()
        )
        state = (
            (await session.execute(select(HoldState).where(HoldState.hold_id == hold.hold_id).with_for_update()))
            .scalars()
            .one()
        )
        if hold.version < state.version or (hold.active and not state.active and state.version > 0):
            log.info(
                "a late legal hold message ignored",
                extra={"hold_id": hold.hold_id, "version": hold.version, "known_version": state.version},
            )
            return {"held": [], "unknown": [], "personal_data_gone": [], "stale": True}
        state.version, state.active, state.changed_at = hold.version, hold.active, utcnow()
        session.add(state)
        # In a fixed order, as two holds at once must not deadlock.
        found = list(
            (
                await session.execute(
                    select(Report).where(col(Report.id).in_(hold.report_ids)).order_by(col(Report.id)).with_for_update()
                )
            ).scalars()
        )
        known = {r.id for r in found}
        if hold.active:
            present = set(
                (
                    await session.execute(select(ReportHold.report_id).where(ReportHold.hold_id == hold.hold_id))
                ).scalars()
            )
            for report_id in sorted(known - present):
                session.add(
                    ReportHold(
                        hold_id=hold.hold_id, report_id=report_id, incident_id=hold.incident_id, held_since=utcnow()
                    )
                )
                record(
                    session,
                    "legal_hold.set",
                    report_id,
                    detail={"hold_id": hold.hold_id, "incident_id": hold.incident_id, "version": hold.version},
                )
        else:
            lifted = list(
                (
                    await session.execute(select(ReportHold.report_id).where(ReportHold.hold_id == hold.hold_id))
                ).scalars()
            )
            await session.execute(delete(ReportHold).where(col(ReportHold.hold_id) == hold.hold_id))
            for report_id in lifted:
                record(
                    session,
                    "legal_hold.lifted",
                    report_id,
                    detail={"hold_id": hold.hold_id, "incident_id": hold.incident_id, "version": hold.version},
                )
    gone = sorted(r.id for r in found if r.anonymised_at is not None)
    return {
        "held": sorted(known) if hold.active else [],
        "unknown": sorted(set(hold.report_ids) - known),
        "personal_data_gone": gone if hold.active else [],
    }
