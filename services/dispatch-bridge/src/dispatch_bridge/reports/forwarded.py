"""A report forwarded into an incident, the one way every route does it: its incident, its state, the audit entry."""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from dispatch_bridge.audit import BRIDGE, audit
from dispatch_bridge.models import BridgeReport, Incident
from dispatch_bridge.states import REPORT_STATES, ReportState


def forwarded_into(session: AsyncSession, stored: BridgeReport, incident: Incident, how: str, **detail: Any) -> None:
    """`how`: as the incident's request for service, as an update to it, or as an answer to its Burgernet action."""
    stored.incident_id = incident.id
    stored.state = REPORT_STATES.move(stored.state, ReportState.FORWARDED)
    session.add(stored)
    audit(
        session,
        BRIDGE,
        "report.sent_to_meldkamer",
        "report",
        stored.report_id,
        {"incident_id": incident.id, "as": how, **detail},
        report_id=stored.report_id,
    )
