"""Answers to an action: a sighting or a witness's account joins the action's incident."""

from __future__ import annotations

import logging

from sqlalchemy.ext.asyncio import AsyncSession

from burgermelding_shared.contracts import ReportSubmitted, VerificationCompleted
from dispatch_bridge.burgernet.actions import open_incident_of
from dispatch_bridge.citizens import news
from dispatch_bridge.config import BridgeSettings
from dispatch_bridge.meldkamer import requests as to_meldkamer
from dispatch_bridge.models import BridgeReport, BurgernetAction, Incident
from dispatch_bridge.records import holds
from dispatch_bridge.reports.forwarded import forwarded_into

log = logging.getLogger(__name__)


def answer_note(
    action: BurgernetAction, stored: BridgeReport, report: ReportSubmitted, result: VerificationCompleted | None
) -> str:
    what = "Witness account" if action.kind == "witness_call" else "SIGHTING"
    seen = report.observed_at.isoformat()
    where = report.location.description or f"{report.location.lat:.5f},{report.location.lon:.5f}"
    text = f"{what} for Burgernet {action.reference} ({stored.reference}), seen {seen} at {where}: {report.description}"
    if result is not None and result.appeal_match is not None:
        text += f" [{match_text(result)}]"
    return text


def match_text(result: VerificationCompleted) -> str:
    """What verification found about the answer's time and place against the action's, in a line."""
    reasons = "; ".join(r.detail_en for r in result.reasons if r.code.startswith("appeal_"))
    return f"{result.appeal_match}: {reasons}" if reasons else str(result.appeal_match)


async def attach_answer(
    session: AsyncSession,
    settings: BridgeSettings,
    stored: BridgeReport,
    report: ReportSubmitted,
    result: VerificationCompleted | None = None,
) -> Incident | None:
    """An answer to an action updates the action's incident: a sighting of a live search at once and urgent,
    a witness's account as ordinary news. None when its action is unknown here (then it is an ordinary report)."""
    assert report.appeal is not None
    action = await session.get(BurgernetAction, report.appeal.action_id, with_for_update=True)
    if action is None:
        log.error("an answer to an unknown Burgernet action", extra={"report_id": stored.report_id})
        return None
    incident = await open_incident_of(session, action.incident_id)
    forwarded_into(session, stored, incident, "burgernet_answer", action=action.reference, urgent=report.urgent)
    if action.first_sighting_at is None:
        action.first_sighting_at = stored.received_at
        session.add(action)
    await holds.extend_hold(session, incident.id, stored.report_id)
    await to_meldkamer.update_incident(
        session,
        settings,
        incident,
        "sighting",
        answer_note(action, stored, report, result),
        to_meldkamer.media_for(settings, report, report.photos, incident.id),
        urgent=report.urgent,
    )
    await news.tell_joined(session, stored, report, incident)
    return incident
