"""Legal holds: an incident's reports kept as evidence until the hold is lifted, whatever happens to the incident."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from burgermelding_shared.app import Runtime
from burgermelding_shared.catalogue import LEGAL_HOLD
from burgermelding_shared.contracts import LegalHold as HoldMessage
from burgermelding_shared.errors import ServiceError
from burgermelding_shared.messaging import enqueue
from burgermelding_shared.timeutil import utcnow
from dispatch_bridge.audit import BRIDGE, Who, audit
from dispatch_bridge.incidents import events
from dispatch_bridge.models import BridgeReport, Incident, LegalHold, messaging
from dispatch_bridge.peers import call_service, unreachable

SET, LIFTED = 1, 2  # a hold's versions


async def active_hold(session: AsyncSession, incident_id: str) -> LegalHold | None:
    return (
        (
            await session.execute(
                select(LegalHold).where(LegalHold.incident_id == incident_id, col(LegalHold.lifted_at).is_(None))
            )
        )
        .scalars()
        .first()
    )


async def held_reports(session: AsyncSession, incident: Incident) -> list[BridgeReport]:
    """The incident's reports, those of incidents merged into it too (they are one event)."""
    merged = list((await session.execute(select(Incident.id).where(Incident.merged_into == incident.id))).scalars())
    found: list[BridgeReport] = []
    for one in (incident.id, *merged):
        found += await events.reports_of(session, one)
    return found


async def event_of(session: AsyncSession, incident_id: str, lock: bool = False) -> Incident:
    """The incident a hold is about: the survivor of any merge (a hold is on the event, and a merged-away
    incident has no reports of its own any more)."""
    incident = await session.get(Incident, incident_id[:36], with_for_update=lock)
    while incident is not None and incident.merged_into is not None:
        incident = await session.get(Incident, incident.merged_into, with_for_update=lock)
    if incident is None:
        raise ServiceError(404, "incident_not_found", "no such incident", detail_nl="dit incident bestaat niet")
    return incident


async def _tell_intake(runtime: Runtime, message: HoldMessage) -> dict[str, Any]:
    try:
        answer = await call_service(
            runtime, LEGAL_HOLD.destination, "POST", LEGAL_HOLD.path, message.model_dump(mode="json")
        )
        return dict(answer.json())
    except httpx.HTTPError as exc:
        raise unreachable("report-intake") from exc


async def set_hold(runtime: Runtime, actor: Who, incident_id: str, reason: str) -> dict[str, Any]:
    """Mark an incident (the event: the survivor of any merge) as evidence.

    The hold is recorded first, under the incident's row lock, which every join takes: from then on a report
    that joins is held too (by the outbox), and two supervisors setting it at once share one hold. Then intake
    confirms the reports held; if intake cannot be reached the hold is lifted again at once (the lift goes to
    intake through the outbox, so whatever reached it meanwhile is released) and the supervisor is told."""
    async with runtime.db.transaction() as session:
        incident = await event_of(session, incident_id, lock=True)
        hold = await active_hold(session, incident.id)
        if hold is None:
            hold = LegalHold(
                id=str(uuid.uuid4()),
                incident_id=incident.id,
                reason=reason,
                set_by=actor.username,
                set_at=utcnow(),
                version=SET,
            )
            session.add(hold)
        hold_id, hold_reason = hold.id, hold.reason
        asked = [r.report_id for r in await held_reports(session, incident)]
    try:
        answer = await _tell_intake(
            runtime, HoldMessage(hold_id=hold_id, incident_id=incident.id, report_ids=asked, active=True, version=SET)
        )
    except ServiceError:
        await _give_up(runtime, hold_id, "report-intake did not confirm the hold")
        raise
    if answer.get("stale"):  # intake had this hold lifted (a lift whose record here failed): start a new one
        await _give_up(runtime, hold_id, "report-intake had lifted this hold")
        return await set_hold(runtime, actor, incident.id, reason)
    async with runtime.db.transaction() as session:
        audit(
            session,
            actor,
            "legal_hold.set",
            "incident",
            incident.id,
            {
                "hold_id": hold_id,
                "reports": answer["held"],
                "already_gone": answer["unknown"],
                "personal_data_gone": answer.get("personal_data_gone", []),
            },
        )
    return {
        "hold_id": hold_id,
        "incident_id": incident.id,
        "reason": hold_reason,
        "reports_held": answer["held"],
        "reports_already_gone": answer["unknown"],
        "reports_without_personal_data": answer.get("personal_data_gone", []),
        "active": True,
    }


async def _give_up(runtime: Runtime, hold_id: str, why: str) -> None:
    """A hold intake did not confirm is lifted here and there (through the outbox, at the lifted version, so
    no extension sent meanwhile can keep it alive)."""
    async with runtime.db.transaction() as session:
        hold = await session.get(LegalHold, hold_id, with_for_update=True)
        if hold is None or hold.lifted_at is not None:
            return
        await _lift(session, hold, BRIDGE, why)


async def _lift(session: AsyncSession, hold: LegalHold, actor: Who, why: str | None = None) -> None:
    hold.lifted_by, hold.lifted_at, hold.version = actor.username, utcnow(), LIFTED
    session.add(hold)
    message = HoldMessage(hold_id=hold.id, incident_id=hold.incident_id, report_ids=[], active=False, version=LIFTED)
    await enqueue(session, messaging, LEGAL_HOLD, message)
    audit(session, actor, "legal_hold.lifted", "incident", hold.incident_id, {"hold_id": hold.id, "because": why})


async def lift_hold(runtime: Runtime, actor: Who, incident_id: str) -> dict[str, Any]:
    """Lift the hold on an incident's event: its own and every hold on an incident merged into it or following
    from it (a supervisor lifting says the event is no longer evidence). intake is told at once, so the answer
    is the truth; the record here and a retry-safe copy of the lift (the outbox) are written together."""
    async with runtime.db.sessions() as session:
        incident = await event_of(session, incident_id)
        holds = await _holds_of_event(session, incident)
    if not holds:
        raise ServiceError(
            404,
            "legal_hold_not_found",
            "this incident is not under legal hold",
            detail_nl="dit incident staat niet onder bewaarplicht",
        )
    for hold in holds:
        await _tell_intake(
            runtime,
            HoldMessage(hold_id=hold.id, incident_id=hold.incident_id, report_ids=[], active=False, version=LIFTED),
        )
    async with runtime.db.transaction() as session:
        for hold in holds:
            current = await session.get(LegalHold, hold.id, with_for_update=True)
            if current is not None and current.lifted_at is None:
                await _lift(session, current, actor)
    return {
        "hold_id": holds[0].id,
        "incident_id": incident.id,
        "reason": holds[0].reason,
        "active": False,
        "reports_held": [],
        "reports_already_gone": [],
        "reports_without_personal_data": [],
    }


async def _holds_of_event(session: AsyncSession, incident: Incident) -> list[LegalHold]:
    """The active holds on an incident and on those merged into it, its own first; and those following them."""
    merged = list((await session.execute(select(Incident.id).where(Incident.merged_into == incident.id))).scalars())
    found = list(
        (
            await session.execute(
                select(LegalHold)
                .where(col(LegalHold.incident_id).in_([incident.id, *merged]), col(LegalHold.lifted_at).is_(None))
                .order_by(col(LegalHold.incident_id) != incident.id, col(LegalHold.set_at))
            )
        ).scalars()
    )
    seen = {h.id for h in found}
    while True:  # holds that followed one of these into a split-off incident are part of the same evidence
        following = [
            h
            for h in (
                await session.execute(
                    select(LegalHold).where(col(LegalHold.follows_hold).in_(seen), col(LegalHold.lifted_at).is_(None))
                )
            ).scalars()
            if h.id not in seen
        ]
        if not following:
            return found
        found += following
        seen |= {h.id for h in following}


async def _extend(session: AsyncSession, hold: LegalHold, report_ids: list[str]) -> None:
    """Hold these reports too, under `hold` at its version (through the outbox: it is not lost)."""
    message = HoldMessage(
        hold_id=hold.id, incident_id=hold.incident_id, report_ids=sorted(report_ids), active=True, version=hold.version
    )
    await enqueue(session, messaging, LEGAL_HOLD, message)


async def extend_hold(session: AsyncSession, incident_id: str, report_id: str) -> None:
    """A report that joins an incident under legal hold is held too. Called under the incident's row lock."""
    hold = await active_hold(session, incident_id)
    if hold is not None:
        await _extend(session, hold, [report_id])


async def _follow(session: AsyncSession, hold: LegalHold, incident: Incident, why: str) -> LegalHold:
    """`incident` is held because `hold` is: its own hold (a new one that follows `hold`, if it has none)."""
    own = await active_hold(session, incident.id)
    if own is None:
        own = LegalHold(
            id=str(uuid.uuid4()),
            incident_id=incident.id,
            reason=f"{why}: {hold.reason}"[:300],
            set_by=BRIDGE.username,
            set_at=utcnow(),
            version=SET,
            follows_hold=hold.id,
        )
        session.add(own)
        await session.flush()
        audit(
            session,
            BRIDGE,
            "legal_hold.set",
            "incident",
            incident.id,
            {"hold_id": own.id, "follows_hold": hold.id, "because": why},
        )
    return own


async def follow_merge(
    session: AsyncSession, survivor: Incident, absorbed: list[Incident], moved: list[BridgeReport]
) -> None:
    """Incidents became one: if any of them was held, the survivor is held and so is every report it now has
    (the moved ones under the survivor's hold, intake keeping each earlier hold too)."""
    holds = [h for h in [await active_hold(session, i.id) for i in (survivor, *absorbed)] if h is not None]
    if not holds:
        return
    own = (
        holds[0]
        if holds[0].incident_id == survivor.id
        else await _follow(session, holds[0], survivor, f"merged with held incident {holds[0].incident_id}")
    )
    everything = [r.report_id for r in await held_reports(session, survivor)]
    await _extend(session, own, sorted({*everything, *(r.report_id for r in moved)}))


async def follow_split(session: AsyncSession, old: Incident, new: Incident, report: BridgeReport) -> None:
    """A report split off a held incident keeps its hold, and its new incident is held too (its later reports
    with it)."""
    hold = await active_hold(session, old.id)
    if hold is not None:
        own = await _follow(session, hold, new, f"split off held incident {old.id}")
        await _extend(session, own, [report.report_id])
