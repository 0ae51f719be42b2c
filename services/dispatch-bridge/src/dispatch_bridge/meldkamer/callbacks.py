"""The meldkamer's signed status callbacks on an incident: its status, its questions, proof it has the incident."""

from __future__ import annotations

import logging

from burgermelding_shared.app import Runtime
from burgermelding_shared.catalogue import (
    INCIDENT_EVENT,
)
from burgermelding_shared.contracts import (
    IncidentEvent,
    IncidentStatus,
)
from burgermelding_shared.errors import ServiceError
from burgermelding_shared.messaging import Precedence, first_delivery
from burgermelding_shared.timeutil import utcnow
from dispatch_bridge.audit import BRIDGE, audit
from dispatch_bridge.citizens.conversation import ask_citizen
from dispatch_bridge.citizens.news import tell_citizen
from dispatch_bridge.citizens.texts import STATUS_EVENTS
from dispatch_bridge.incidents import events
from dispatch_bridge.models import BridgeMessage, Incident, messaging
from dispatch_bridge.states import (
    DELIVERY_STATES,
    INCIDENT_STATUSES,
    DeliveryState,
)

log = logging.getLogger(__name__)


async def receive_incident_event(runtime: Runtime, event: IncidentEvent, webhook_id: str) -> str:
    """A signed status change or question from the meldkamer. Duplicates are ignored; a stale status never
    moves an incident back."""
    async with runtime.db.transaction() as session:
        if not await first_delivery(
            session, messaging, message=INCIDENT_EVENT, message_id=webhook_id, source="meldkamer"
        ):
            return "duplicate"
        incident = await session.get(Incident, event.requestId, with_for_update=True)
        if incident is None:
            raise ServiceError(
                404,
                "incident_not_found",
                "no incident with this requestId",
                detail_nl="geen incident bij deze requestId",
            )
        reports = await events.reports_of(session, incident.id) if incident.merged_into is None else []
        if event.questionId and event.notesText:
            for stored in reports:
                question_id = f"{event.questionId}:{stored.report_id}"[:64]
                # The same question may come again under another webhook id: ask it once.
                if await session.get(BridgeMessage, question_id) is None:
                    await ask_citizen(session, stored.report_id, event.notesText, "meldkamer", question_id)
        if incident.merged_into is not None:
            # Part of another incident now: its citizens follow that one; this one's late news changes nothing.
            incident.callback_sequence = max(incident.callback_sequence, event.sequence)
            session.add(incident)
            return "merged"
        if event.sequence <= incident.callback_sequence:
            return "out_of_order"
        previous = STATUS_EVENTS.get(incident.operational_status or "")
        audit(
            session,
            BRIDGE,
            "incident.status",
            "incident",
            incident.id,
            {"status": event.status, "sequence": event.sequence, "meldkamer_incident_id": event.incidentId},
        )
        if not INCIDENT_STATUSES.allows(incident.operational_status or IncidentStatus.ACTIVE, event.status):
            # The meldkamer decides its own incident's status: recorded all the same, but a workflow of theirs
            # that changed shows here.
            log.warning(
                "an incident status outside the workflow",
                extra={"incident_id": incident.id, "from": incident.operational_status, "to": str(event.status)},
            )
        incident.callback_sequence, incident.operational_status = event.sequence, event.status
        incident.meldkamer_incident_id = incident.meldkamer_incident_id or event.incidentId
        if incident.delivery_state != DeliveryState.ACCEPTED:
            # A status from the meldkamer proves it has the incident, even if its answer to our request was
            # lost; the request's eventual answer will then not tell the citizen a second time.
            incident.delivery_state = DELIVERY_STATES.move(incident.delivery_state, DeliveryState.ACCEPTED)
            incident.delivery_cause = None
            for stored in reports:
                await tell_citizen(
                    session,
                    stored.report_id,
                    "accepted",
                    incident.meldkamer_incident_id,
                    precedence=Precedence.of(incident.priority),
                )
        incident.updated_at = utcnow()
        session.add(incident)
        citizen_event = STATUS_EVENTS.get(event.status)
        if citizen_event and citizen_event != previous:
            for stored in reports:
                await tell_citizen(
                    session,
                    stored.report_id,
                    citizen_event,
                    incident.meldkamer_incident_id,
                    precedence=Precedence.of(incident.priority),
                )
    return "applied"
