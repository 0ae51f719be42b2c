"""Routing a report to the meldkamer: into the open incident of its event, or as a new incident, at its priority."""

from __future__ import annotations

import uuid

from sqlalchemy.ext.asyncio import AsyncSession

from burgermelding_shared.catalogue import (
    REQUEST_FOR_SERVICE,
)
from burgermelding_shared.categories import CATEGORIES
from burgermelding_shared.contracts import (
    ReportSubmitted,
    RequestForService,
    VerificationCompleted,
)
from burgermelding_shared.messaging import Precedence, enqueue
from burgermelding_shared.timeutil import utcnow
from burgermelding_shared.urgency import MeldkamerPriority
from dispatch_bridge.burgernet import answers
from dispatch_bridge.citizens.news import tell_citizen, tell_joined
from dispatch_bridge.config import BridgeSettings
from dispatch_bridge.incidents import events
from dispatch_bridge.meldkamer import eido
from dispatch_bridge.meldkamer.requests import (
    media_for,
    meldkamer_order,
    photo_urls,
    request_message_id,
    update_incident,
)
from dispatch_bridge.models import BridgeReport, Incident, messaging
from dispatch_bridge.records import holds
from dispatch_bridge.reports.forwarded import forwarded_into
from dispatch_bridge.states import (
    DeliveryState,
)


def proposed_priority(report: ReportSubmitted) -> MeldkamerPriority:
    """Prio 1 for an urgent report (`contracts.is_urgent`), else what its category proposes."""
    return MeldkamerPriority.URGENT if report.urgent else CATEGORIES[report.category].priority


async def incident_of(session: AsyncSession, stored: BridgeReport) -> Incident:
    """The (locked) incident a forwarded report belongs to."""
    incident = await session.get(Incident, stored.incident_id, with_for_update=True)
    assert incident is not None, f"report {stored.report_id} points to a missing incident"
    return incident


async def dispatch(
    session: AsyncSession, settings: BridgeSettings, stored: BridgeReport, report: ReportSubmitted
) -> Incident:
    """Send a report to the meldkamer: into the open incident of its event if there is one, else as a new
    incident. The same rule for urgent and ordinary reports; for the first report of an event it costs one
    indexed query, so the first urgent report leaves as fast as before. An answer to a Burgernet action goes to
    that action's incident instead."""
    await events.decide_one_at_a_time(session)
    if report.caller_link is not None:  # a caller's images: into the incident the dispatcher asked them for
        asked = await surviving_incident(session, report.caller_link.incident_id)
        if asked is not None:
            await join_incident(session, settings, stored, report, asked)
            return asked
    if report.appeal is not None:
        result = VerificationCompleted.model_validate_json(stored.verification) if stored.verification else None
        attached = await answers.attach_answer(session, settings, stored, report, result)
        if attached is not None:
            return attached
    incident = await events.open_incident_for(session, report)
    if incident is None:
        return await forward(session, settings, stored, report)
    await join_incident(session, settings, stored, report, incident)
    return incident


async def surviving_incident(session: AsyncSession, incident_id: str) -> Incident | None:
    """The incident by its id, locked, or the one it was merged into (and so on): where its news goes now."""
    seen: set[str] = set()
    incident = await session.get(Incident, incident_id, with_for_update=True)
    while incident is not None and incident.merged_into and incident.id not in seen:
        seen.add(incident.id)
        incident = await session.get(Incident, incident.merged_into, with_for_update=True)
    return incident


async def forward(
    session: AsyncSession, settings: BridgeSettings, stored: BridgeReport, report: ReportSubmitted
) -> Incident:
    """Create the incident and queue its request for service (one requestId, whatever the retries)."""
    now = utcnow()
    priority = proposed_priority(report)
    incident = Incident(
        id=str(uuid.uuid4()),
        category=report.category,
        priority=priority,
        delivery_state=DeliveryState.QUEUED,
        created_at=now,
        updated_at=now,
    )
    session.add(incident)
    forwarded_into(session, stored, incident, "request_for_service")
    document = eido.build_eido(
        incident_id=incident.id,
        priority=priority,
        report=report,
        photo_urls=photo_urls(settings, report),
        agency=settings.agency,
        callback_uri=f"{settings.public_url}/v1/meldkamer/callbacks",
        now=now,
    )
    request = RequestForService(
        requestId=incident.id, eido=document, eventSummary=await events.summarise(session, incident)
    )
    await enqueue(
        session,
        messaging,
        REQUEST_FOR_SERVICE,
        request,
        precedence=Precedence.of(priority),
        message_id=request_message_id(incident.id),
        ordering_key=meldkamer_order(incident.id),
    )
    await tell_citizen(session, stored.report_id, "forwarded", precedence=Precedence.of(priority))
    return incident


async def join_incident(
    session: AsyncSession, settings: BridgeSettings, stored: BridgeReport, report: ReportSubmitted, incident: Incident
) -> None:
    """Another report about an event the meldkamer already has: an update to that incident (a new witness,
    new photos, a new description), not a new incident. An urgent witness makes the incident urgent."""
    forwarded_into(session, stored, incident, "incident_update")
    await holds.extend_hold(session, incident.id, stored.report_id)
    incident.priority = min(incident.priority, proposed_priority(report))
    incident.updated_at = utcnow()
    session.add(incident)
    await update_incident(
        session,
        settings,
        incident,
        "report_added",
        f"Another witness of this event ({report.reference}): {report.description}",
        media_for(settings, report, report.photos, incident.id),
    )
    await tell_joined(session, stored, report, incident)
