"""The meldkamer starts an action on an incident it has from us (a signed request)."""

from __future__ import annotations

from typing import Any

from burgermelding_shared import burgernet
from burgermelding_shared.app import Runtime
from burgermelding_shared.burgernet import Area, Circle
from burgermelding_shared.catalogue import BURGERNET_REQUEST
from burgermelding_shared.contracts import MeldkamerAppeal
from burgermelding_shared.errors import ServiceError
from burgermelding_shared.messaging import first_delivery
from dispatch_bridge.burgernet.actions import HEADLINES, ActionRequest, open_incident_of, start_action
from dispatch_bridge.models import messaging


async def from_meldkamer(runtime: Runtime, appeal: MeldkamerAppeal, webhook_id: str) -> dict[str, Any]:
    """The meldkamer's script starts an action around the incident's place (once per webhook id)."""
    async with runtime.db.transaction() as session:
        if not await first_delivery(
            session, messaging, message=BURGERNET_REQUEST, message_id=webhook_id, source="meldkamer"
        ):
            return {"status": "duplicate"}
        incident = await open_incident_of(session, appeal.requestId)
        if incident.lat is None or incident.lon is None:
            raise ServiceError(
                409,
                "incident_without_place",
                "the incident has no place to draw an area around",
                detail_nl="het incident heeft geen plaats om een gebied omheen te trekken",
            )
    headline_nl, headline_en = HEADLINES[appeal.lookingFor]
    lat, lon = burgernet.proposed_centre(incident.lat, incident.lon)  # not a lone witness's exact place
    request = ActionRequest(
        incident_id=incident.id,
        looking_for=appeal.lookingFor,
        headline_nl=headline_nl,
        headline_en=headline_en,
        description_nl=appeal.description,
        area=Area(circle=Circle(lat=lat, lon=lon, radius_m=appeal.radiusMeters)),
        duration_minutes=appeal.minutes,
    )
    return {"status": "started", **await start_action(runtime, MeldkamerActor(), request)}


class MeldkamerActor:
    username = "meldkamer"
    role = "meldkamer"
