"""Verification's verdict on a report: forward it, hold it for review, or reject it."""

from __future__ import annotations

from burgermelding_shared.app import Runtime
from burgermelding_shared.catalogue import (
    VERIFICATION_COMPLETED,
)
from burgermelding_shared.contracts import (
    ReportSubmitted,
    VerificationCompleted,
)
from burgermelding_shared.errors import ServiceError
from burgermelding_shared.messaging import Precedence, first_delivery
from dispatch_bridge.audit import BRIDGE, audit
from dispatch_bridge.burgernet import answers
from dispatch_bridge.citizens.news import tell_citizen
from dispatch_bridge.incidents import events
from dispatch_bridge.incidents.merging import merge_with_group
from dispatch_bridge.incidents.routing import dispatch, incident_of
from dispatch_bridge.meldkamer.requests import update_incident
from dispatch_bridge.models import messaging
from dispatch_bridge.reports.receiving import known_report
from dispatch_bridge.states import (
    REPORT_STATES,
    ReportState,
)


async def receive_verification(runtime: Runtime, result: VerificationCompleted, message_id: str, source: str) -> str:
    async with runtime.db.transaction() as session:
        await events.decide_one_at_a_time(session)  # it may forward, join or merge
        stored = await known_report(session, result.report_id)
        if result.revision > stored.revision:  # this revision of the report has not arrived yet
            raise ServiceError(
                409,
                "report_not_yet_known",
                "this revision has not reached the bridge yet",
                detail_nl="deze versie van de melding is nog niet bij de brug aangekomen",
                headers={"Retry-After": "1"},
            )
        if not await first_delivery(
            session, messaging, message=VERIFICATION_COMPLETED, message_id=message_id, source=source
        ):
            return "duplicate"
        if (result.revision, result.assessment) <= (stored.verified_revision, stored.verified_assessment):
            return "stale"
        first_verdict = stored.verified_revision < 0
        audit(
            session,
            BRIDGE,
            "report.verdict",
            "report",
            stored.report_id,
            {"revision": result.revision, "verdict": result.verdict, "score": result.score},
            report_id=stored.report_id,
        )
        stored.verdict, stored.score, stored.verified_revision = result.verdict, result.score, result.revision
        stored.verified_assessment = result.assessment
        stored.verification, stored.group_id = result.model_dump_json(), result.group_id
        session.add(stored)
        report = ReportSubmitted.model_validate_json(stored.submission)
        precedence = Precedence.urgent_if(report.urgent)
        if stored.state in (ReportState.WITHDRAWN, ReportState.REJECTED):
            return "applied"
        if stored.state == ReportState.FORWARDED:
            # Already with the meldkamer (in progress, or a later revision): the result follows as an update.
            incident = await incident_of(session, stored)
            await update_incident(
                session, runtime.settings, incident, "verification", verification_note(stored.reference, result)
            )
            if first_verdict:
                await tell_citizen(session, stored.report_id, "verified", precedence=precedence)
            await merge_with_group(session, runtime.settings, incident, result.group_reports)
        elif result.verdict == "forward" or (stored.appeal_id and result.verdict == "review"):
            # An answer to a Burgernet action or witness call goes to its incident unless it is spam: there
            # the investigators weigh it, with verification's reasons beside it.
            await tell_citizen(session, stored.report_id, "verified", precedence=precedence)
            incident = await dispatch(session, runtime.settings, stored, report)
            await merge_with_group(session, runtime.settings, incident, result.group_reports)
        elif result.verdict == "review":
            stored.state = REPORT_STATES.move(stored.state, ReportState.HELD_FOR_REVIEW)
            if first_verdict:
                await tell_citizen(session, stored.report_id, "under_review")
        else:
            stored.state = REPORT_STATES.move(stored.state, ReportState.REJECTED)
            await tell_citizen(session, stored.report_id, "rejected")
    return "applied"


def verification_note(reference: str, result: VerificationCompleted) -> str:
    reasons = ", ".join(sorted({r.code for r in result.reasons})) or "no concerns"
    note = (
        f"Verification of {reference} (revision {result.revision}): {result.verdict}, score {result.score:.2f}; "
        f"{reasons}"
    )
    return note + (f"; Burgernet {answers.match_text(result)}" if result.appeal_match else "")
