"""What the console's incident page shows: the incident, its event, every report in full with its verification
and messages, and its Burgernet actions, read in one transaction and audited as one view."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

from sqlalchemy import select as select_columns  # SQLModel's select takes at most four
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from burgermelding_shared.app import Runtime
from burgermelding_shared.burgernet import proposed_centre
from burgermelding_shared.contracts import ReportSubmitted
from burgermelding_shared.errors import ServiceError
from dispatch_bridge.accounts.tokens import Actor
from dispatch_bridge.audit import audit
from dispatch_bridge.callers import links
from dispatch_bridge.desk import listings
from dispatch_bridge.incidents import events
from dispatch_bridge.meldkamer import eido
from dispatch_bridge.models import BridgeMessage, BridgeReport, BurgernetAction, Incident

MERGE_CANDIDATES_WITHIN = timedelta(days=1)
BEST_PHOTOS = 4  # thumbnails in the event's summary; every photo is still shown with its report
REASON_ORDER = {"fail": 0, "warn": 1, "pass": 2, "not_applicable": 3}


def incident_not_found() -> ServiceError:
    return ServiceError(404, "incident_not_found", "no such incident", detail_nl="dit incident bestaat niet")


def burgernet_centre(incident: Incident) -> dict[str, float | None]:
    if incident.lat is None or incident.lon is None:
        return {"lat": None, "lon": None}
    lat, lon = proposed_centre(incident.lat, incident.lon)
    return {"lat": lat, "lon": lon}


async def incident_page(runtime: Runtime, actor: Actor, incident_id: str) -> dict[str, Any]:
    async with runtime.db.transaction() as session:
        incident = await session.get(Incident, incident_id[:36])
        if incident is None:
            raise incident_not_found()
        reports = await events.reports_of(session, incident.id)
        merged_from = list(
            (await session.execute(select(Incident.id).where(Incident.merged_into == incident.id))).scalars()
        )
        ids = [r.report_id for r in reports]
        shown = await reports_in_full(session, reports)
        # What it may be merged with: the other open incidents of the last day, newest first.
        others = [
            i
            for i in (
                await session.execute(
                    select(Incident)
                    .where(
                        col(Incident.merged_into).is_(None),
                        Incident.id != incident.id,
                        Incident.created_at >= incident.created_at - MERGE_CANDIDATES_WITHIN,
                        Incident.created_at <= incident.created_at + MERGE_CANDIDATES_WITHIN,
                    )
                    .order_by(col(Incident.created_at).desc())
                    .limit(50)
                )
            ).scalars()
            if events.is_open(i)
        ]
        actions = (
            (
                await session.execute(
                    select(BurgernetAction)
                    .where(BurgernetAction.incident_id == incident.id)
                    .order_by(col(BurgernetAction.number))
                )
            )
            .scalars()
            .all()
        )
        # One entry for the page, naming every report it showed (as a list view does).
        listings.audit_listing(session, actor, "incident_reports", {"incident_id": incident.id}, ids)
        audit(session, actor, "view_incident", "incident", incident.id)
    references = {r.report_id: r.reference for r in reports}
    summary = listings.incident_summary(incident, reports, sorted(merged_from))
    return {
        "incident": summary,
        "caller_links": await links.links_of(runtime, incident.id),
        "best_photos": best_photos(summary["event"], shown),
        "reports": shown,
        "references": references,
        "actions": [{"id": a.id, "reference": a.reference, "status": a.status, "kind": a.kind} for a in actions],
        # The Burgernet form's proposed centre: never the exact place (see burgernet.proposed_centre).
        **burgernet_centre(incident),
        "others": [
            {
                "id": o.id,
                "category": o.category,
                "urgent": o.urgent,
                "created_at": o.created_at,
                "meldkamer_incident_id": o.meldkamer_incident_id,
                "address": o.address,
                "address_distance_m": o.address_distance_m,
                "lat": o.lat,
                "lon": o.lon,
            }
            for o in others
        ],
    }


def best_photos(
    event: dict[str, Any] | None, shown: list[dict[str, Any]], most: int = BEST_PHOTOS
) -> list[dict[str, str]]:
    """The event's best photos for the top of the incident page: its ranking (verified, no duplicate, sharp:
    `events.ranked_photos`, as the meldkamer gets them), duplicates left out, as (report, photo) to show."""
    if not event:
        return []
    where = {
        eido.media_id(photo.photo_id): {
            "report_id": r["report_id"],
            "photo_id": photo.photo_id,
            "reference": r["reference"],
        }
        for r in shown
        for photo in r["photos"]
    }
    ranked = [where[p["mediaId"]] for p in event["photos"] if not p["duplicate"] and p["mediaId"] in where]
    return ranked[:most]


async def report_page(runtime: Runtime, actor: Actor, report_id: str) -> dict[str, Any]:
    """One report on a page of its own: one held for review has no incident yet."""
    async with runtime.db.transaction() as session:
        stored = await session.get(BridgeReport, report_id[:36])
        if stored is None:
            raise ServiceError(404, "report_not_found", "no such report", detail_nl="deze melding bestaat niet")
        shown = await reports_in_full(session, [stored])
        audit(session, actor, "view_report", "report", stored.report_id, report_id=stored.report_id)
    return {"reports": shown, "references": {stored.report_id: stored.reference}, "incident": None}


async def reports_in_full(session: AsyncSession, reports: list[BridgeReport]) -> list[dict[str, Any]]:
    """Each report as the console shows it: its summary, words, photos, reasons (doubts first), messages."""
    messages = (
        (
            await session.execute(
                select(BridgeMessage)
                .where(col(BridgeMessage.report_id).in_([r.report_id for r in reports]))
                .order_by(col(BridgeMessage.sent_at))
            )
        )
        .scalars()
        .all()
    )
    by_report: dict[str, list[BridgeMessage]] = {}
    for message in messages:
        by_report.setdefault(message.report_id, []).append(message)
    shown = []
    for stored in reports:
        submission = ReportSubmitted.model_validate_json(stored.submission)
        detail = json.loads(stored.verification) if stored.verification else None
        shown.append(
            {
                **listings.report_summary(stored),
                "description": submission.description,
                "location": submission.location,
                "observed_at": submission.observed_at,
                "photos": submission.photos,
                "messages": by_report.get(stored.report_id, []),
                "reasons": sorted(detail["reasons"], key=lambda r: REASON_ORDER.get(r["outcome"], 9)) if detail else [],
            }
        )
    return shown


async def report_places(runtime: Runtime, actor: Actor, report_ids: list[str]) -> dict[str, dict[str, Any]]:
    """Where each report was seen, for the map (a citizen's place: audited with the reports it shows)."""
    async with runtime.db.transaction() as session:
        rows = (
            await session.execute(
                select_columns(
                    col(BridgeReport.report_id),
                    col(BridgeReport.lat),
                    col(BridgeReport.lon),
                    col(BridgeReport.in_progress),
                    col(BridgeReport.danger_to_life),
                ).where(col(BridgeReport.report_id).in_(report_ids))
            )
        ).all()
        listings.audit_listing(session, actor, "map_reports", {"places": True}, [r.report_id for r in rows])
    return {
        r.report_id: {"lat": r.lat, "lon": r.lon, "urgent": r.in_progress or r.danger_to_life}
        for r in rows
        if r.lat is not None and r.lon is not None
    }
