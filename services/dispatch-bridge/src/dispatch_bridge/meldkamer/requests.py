"""An incident's request for service and its updates, in order, and what the meldkamer answered to the request."""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Mapping
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from burgermelding_shared.catalogue import (
    INCIDENT_UPDATE,
)
from burgermelding_shared.contracts import (
    IncidentUpdate,
    IncidentUpdateKind,
    PhotoRef,
    ReportEventType,
    ReportSubmitted,
    RequestResponse,
)
from burgermelding_shared.messaging import Outcome, Precedence, enqueue
from burgermelding_shared.timeutil import utcnow
from dispatch_bridge.citizens.news import tell_citizen
from dispatch_bridge.config import BridgeSettings
from dispatch_bridge.incidents import events
from dispatch_bridge.meldkamer import eido, media
from dispatch_bridge.models import Incident, messaging
from dispatch_bridge.states import (
    DELIVERY_STATES,
    DeliveryState,
)

log = logging.getLogger(__name__)


def meldkamer_order(incident_id: str) -> str:
    """The outbox ordering key of everything the meldkamer hears about one incident: its request for service
    first, then its updates in the order they were written (an update sent before its request would be
    refused as unknown and wait out a backoff)."""
    return f"incident:{incident_id}"


async def update_incident(
    session: AsyncSession,
    settings: BridgeSettings,
    incident: Incident,
    kind: IncidentUpdateKind,
    notes: str | None = None,
    media_items: list[dict[str, Any]] | None = None,
    *,
    with_summary: bool = True,
    merge_items: list[dict[str, Any]] | None = None,
    urgent: bool = False,
) -> None:
    """Queue news for an incident the meldkamer has (or is about to have): one update id across retries, and an
    EIDO with what is new. It carries the event as it now stands, so the meldkamer always sees the whole event,
    not the pile. `urgent` news (a sighting of a live Burgernet search) leaves first and says so."""
    update_id = str(uuid.uuid4())
    summary = await events.summarise(session, incident) if with_summary else None
    document = eido.update_eido(
        incident_id=incident.id,
        update_id=update_id,
        agency=settings.agency,
        now=utcnow(),
        notes=notes,
        media=media_items or [],
        merges=merge_items or [],
    )
    update = IncidentUpdate(
        updateId=update_id, requestId=incident.id, kind=kind, eido=document, eventSummary=summary, urgent=urgent
    )
    await enqueue(
        session,
        messaging,
        INCIDENT_UPDATE,
        update,
        path_names={"request_id": incident.id},
        message_id=update_id,
        ordering_key=meldkamer_order(incident.id),
        precedence=Precedence.URGENT if urgent else Precedence.of(incident.priority),
    )


def photo_urls(settings: BridgeSettings, report: ReportSubmitted) -> dict[str, str]:
    return {
        p.photo_id: media.signed_url(
            settings.public_url, settings.media_url_secret, p.sha256, settings.media_url_ttl_seconds
        )
        for p in report.photos
    }


def media_for(
    settings: BridgeSettings, report: ReportSubmitted, photos: list[PhotoRef], incident_id: str
) -> list[dict[str, Any]]:
    """EIDO media components for an update: signed links and digests of these photos."""
    writer = eido.EidoWriter(settings.agency, incident_id, utcnow())
    return writer.media(report, photos, photo_urls(settings, report))


def request_message_id(incident_id: str) -> str:
    return f"rfs-{incident_id}"


def merge_component(settings: BridgeSettings, incident: Incident, other: Incident, direction: str) -> dict[str, Any]:
    return eido.merge_component(settings.agency, incident.id, other.id, direction, utcnow())


async def on_meldkamer_attempt(session: AsyncSession, row: Mapping[str, Any], outcome: Outcome) -> None:
    """A request went out without a decision (error, timeout): queued -> sent, with the cause so far."""
    incident = await session.get(Incident, json.loads(row["payload"])["requestId"], with_for_update=True)
    if incident is not None and incident.delivery_state == DeliveryState.QUEUED:
        incident.delivery_state = DELIVERY_STATES.move(incident.delivery_state, DeliveryState.SENT)
        incident.delivery_cause = outcome.reason[:1000]
        incident.updated_at = utcnow()
        session.add(incident)


async def on_meldkamer_answer(session: AsyncSession, row: Mapping[str, Any], outcome: Outcome) -> None:
    """Relay result handler for requests for service: record the meldkamer's decision and tell the citizen."""
    request_id = json.loads(row["payload"])["requestId"]
    incident = await session.get(Incident, request_id, with_for_update=True)
    if incident is None:
        log.error("answer for unknown incident", extra={"request_id": request_id})
        return
    incident.updated_at = utcnow()
    event: ReportEventType | None = None
    if outcome.delivered:
        try:
            answer = RequestResponse.model_validate(outcome.body)
        except ValueError:
            answer = RequestResponse(requestId=request_id, responseCode=500, responseText="unreadable answer")
        if answer.responseCode == 200:
            # A callback may have proven acceptance first (the meldkamer stored it but its answer was lost):
            # then the citizen has been told already.
            event = None if incident.delivery_state == DeliveryState.ACCEPTED else "accepted"
            incident.delivery_state = DELIVERY_STATES.move(incident.delivery_state, DeliveryState.ACCEPTED)
            incident.meldkamer_incident_id = answer.incidentId
        elif incident.delivery_state == DeliveryState.ACCEPTED:
            # A status callback proved it accepted before this answer came: the answer changes nothing.
            log.warning(
                "a late answer after acceptance", extra={"request_id": request_id, "response_code": answer.responseCode}
            )
        elif answer.responseCode in (180, 182):
            incident.delivery_state = DELIVERY_STATES.move(incident.delivery_state, DeliveryState.SENT)
        else:
            incident.delivery_state = DELIVERY_STATES.move(incident.delivery_state, DeliveryState.REJECTED)
            incident.delivery_cause = f"{answer.responseCode} {answer.responseText}"
            event = "declined"
    elif incident.delivery_state != DeliveryState.ACCEPTED:
        incident.delivery_state = DELIVERY_STATES.move(incident.delivery_state, DeliveryState.DEAD_LETTERED)
        incident.delivery_cause = outcome.reason[:1000]
        event = "declined"
    session.add(incident)
    if event:
        for stored in await events.reports_of(session, incident.id):
            await tell_citizen(
                session,
                stored.report_id,
                event,
                incident.meldkamer_incident_id,
                precedence=Precedence.of(incident.priority),
            )
