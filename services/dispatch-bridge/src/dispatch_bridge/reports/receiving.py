"""Reports from intake: a new report, a revision of one, a withdrawal."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from burgermelding_shared.app import Runtime
from burgermelding_shared.catalogue import (
    REPORT_FOR_BRIDGE,
    REPORT_WITHDRAWN,
)
from burgermelding_shared.contracts import (
    IncidentStatus,
    ReportSubmitted,
    ReportWithdrawn,
)
from burgermelding_shared.errors import ServiceError
from burgermelding_shared.messaging import first_delivery
from burgermelding_shared.retention import personal_data_removed
from burgermelding_shared.timeutil import utcnow
from dispatch_bridge.audit import BRIDGE, audit
from dispatch_bridge.config import BridgeSettings
from dispatch_bridge.incidents import events
from dispatch_bridge.incidents.routing import dispatch, incident_of
from dispatch_bridge.meldkamer.requests import media_for, update_incident
from dispatch_bridge.models import BridgeReport, deletions, messaging
from dispatch_bridge.records.figures import region_of
from dispatch_bridge.states import (
    CLOSED_STATUSES,
    INCIDENT_STATUSES,
    REPORT_STATES,
    ReportState,
)


async def receive_report(runtime: Runtime, report: ReportSubmitted, message_id: str, source: str) -> str:
    """A new report, or a new revision of one (photos added)."""
    # An urgent report, and a caller's images the dispatcher asked for, go to the meldkamer at once (verification
    # still judges them); the others after their verdict.
    at_once = report.urgent or report.caller_link is not None
    async with runtime.db.transaction() as session:
        if at_once:
            await events.decide_one_at_a_time(session)  # before any row lock: see decide_one_at_a_time
        if not await first_delivery(
            session, messaging, message=REPORT_FOR_BRIDGE, message_id=message_id, source=source
        ):
            return "duplicate"
        stored = await session.get(BridgeReport, report.report_id, with_for_update=True)
        if await personal_data_removed(session, deletions, report.report_id):
            # Late news of a report whose data retention or a withdrawal removed here: it brings nothing back.
            audit(
                session,
                BRIDGE,
                "report.late_copy_refused",
                "report",
                report.report_id,
                {"revision": report.revision, "from": source},
                report_id=report.report_id,
            )
            return "removed"
        if stored is not None:
            return await _revise(session, runtime.settings, stored, report)
        stored = BridgeReport(
            report_id=report.report_id,
            reference=report.reference,
            category=report.category,
            in_progress=report.in_progress,
            danger_to_life=report.danger_to_life,
            revision=report.revision,
            submission=report.model_dump_json(),
            received_at=utcnow(),
            state=ReportState.WAITING_VERIFICATION,
            appeal_id=report.appeal.action_id if report.appeal else None,
        )
        events.place(stored, report)
        session.add(stored)
        audit(
            session,
            BRIDGE,
            "report.received",
            "report",
            report.report_id,
            {
                "revision": report.revision,
                "from": source,
                "photos": [p.sha256 for p in report.photos],
                # What the figures count a report by after retention has purged it (records/figures.py): its
                # category and its 0.1-degree region, nothing more precise.
                "category": report.category,
                "region": region_of(report.location.lat, report.location.lon),
            },
            report_id=report.report_id,
        )
        if at_once:
            await dispatch(session, runtime.settings, stored, report)
    return "accepted"


async def _revise(
    session: AsyncSession, settings: BridgeSettings, stored: BridgeReport, report: ReportSubmitted
) -> str:
    if report.revision <= stored.revision:
        return "duplicate"  # an older or equal revision: we have newer news already
    previous = ReportSubmitted.model_validate_json(stored.submission)
    before = {p.photo_id for p in previous.photos}
    report = events.first_witness(report, previous)  # a witness stays the witness it first came as (#29)
    stored.submission, stored.revision = report.model_dump_json(), report.revision
    events.place(stored, report)
    session.add(stored)
    new_photos = [p for p in report.photos if p.photo_id not in before]
    if stored.incident_id and stored.state != ReportState.WITHDRAWN and new_photos:
        incident = await incident_of(session, stored)
        await update_incident(
            session,
            settings,
            incident,
            "media",
            f"{len(new_photos)} more photo(s) from {report.reference}",
            media_for(settings, report, new_photos, incident.id),
        )
    return "revised"


async def known_report(session: AsyncSession, report_id: str) -> BridgeReport:
    """The report, locked; a 409 while its own message has not reached the bridge yet (messages travel
    independently, so news about a report can overtake the report): the sender asks again later."""
    stored = await session.get(BridgeReport, report_id, with_for_update=True)
    if stored is None:
        raise ServiceError(
            409,
            "report_not_yet_known",
            "the report has not reached the bridge yet",
            detail_nl="de melding is nog niet bij de brug aangekomen",
            headers={"Retry-After": "1"},
        )
    return stored


async def receive_withdrawal(runtime: Runtime, withdrawal: ReportWithdrawn, message_id: str, source: str) -> str:
    async with runtime.db.transaction() as session:
        stored = await known_report(session, withdrawal.report_id)
        if not await first_delivery(session, messaging, message=REPORT_WITHDRAWN, message_id=message_id, source=source):
            return "duplicate"
        was_forwarded = stored.state == ReportState.FORWARDED
        stored.state = REPORT_STATES.move(stored.state, ReportState.WITHDRAWN)
        session.add(stored)
        if was_forwarded and stored.incident_id:
            incident = await incident_of(session, stored)
            await update_incident(
                session, runtime.settings, incident, "withdrawn", f"The citizen withdrew report {stored.reference}."
            )
            if not any(r.state != ReportState.WITHDRAWN for r in await events.reports_of(session, incident.id)):
                # Its last witness withdrew: the meldkamer cancels it, so a new report of the place and time
                # starts a new incident rather than joining a cancelled one.
                if incident.operational_status not in CLOSED_STATUSES:
                    incident.operational_status = INCIDENT_STATUSES.move(
                        incident.operational_status or IncidentStatus.ACTIVE, IncidentStatus.CANCELLED
                    )
                session.add(incident)
    return "applied"
