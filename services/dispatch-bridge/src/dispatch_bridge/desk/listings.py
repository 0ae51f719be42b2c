"""What dispatchers see: incidents and reports, listed and opened, each view audited."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence
from dataclasses import dataclass, fields
from enum import Enum
from pathlib import Path
from typing import Any, Literal

from sqlalchemy import ColumnElement, not_, or_
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select
from starlette.requests import Request
from starlette.responses import FileResponse, Response

from burgermelding_shared import auditchain
from burgermelding_shared.app import Runtime
from burgermelding_shared.background import BackgroundLoop
from burgermelding_shared.blobstore import BlobNotFound, purge_cache, verified_file
from burgermelding_shared.contracts import PhotoRef, ReportSubmitted
from burgermelding_shared.errors import ServiceError
from burgermelding_shared.urgency import MeldkamerPriority
from burgermelding_shared.videos import COMPATIBLE_TYPE
from dispatch_bridge.accounts.tokens import Actor
from dispatch_bridge.audit import audit
from dispatch_bridge.incidents import events
from dispatch_bridge.models import BridgeMessage, BridgeReport, Incident
from dispatch_bridge.models import audit as audit_tables
from dispatch_bridge.states import CLOSED_STATUSES, DeliveryState, ReportState


def report_summary(stored: BridgeReport) -> dict[str, Any]:
    verification = json.loads(stored.verification) if stored.verification else None
    return {
        "report_id": stored.report_id,
        "reference": stored.reference,
        "category": stored.category,
        "in_progress": stored.in_progress,
        "danger_to_life": stored.danger_to_life,
        "state": stored.state,
        "received_at": stored.received_at,
        "incident_id": stored.incident_id,
        "burgernet_action_id": stored.appeal_id,
        "verification": None
        if verification is None
        else {
            "verdict": verification["verdict"],
            "score": verification["score"],
            "reasons": sorted({r["code"] for r in verification["reasons"]}),
            "duplicate_of_reports": verification.get("duplicate_of_reports", []),
            "near_duplicate_of_reports": verification.get("near_duplicate_of_reports", []),
            "group_id": verification.get("group_id"),
            "group_reports": verification.get("group_reports", []),
            # An answer to a Burgernet action: do its time and place (the photos' own first) fit the asked ones?
            "appeal_match": verification.get("appeal_match"),
        },
    }


def incident_summary(incident: Incident, reports: list[BridgeReport], merged_from: list[str]) -> dict[str, Any]:
    """One incident as the dispatcher sees it: all its reports (those of incidents merged into it too) and
    the event they describe together."""
    event = events.describe(incident, reports, incident.summary_version).model_dump(mode="json") if reports else None
    return {
        "incident_id": incident.id,
        "meldkamer_incident_id": incident.meldkamer_incident_id,
        "category": incident.category,
        "priority": incident.priority,
        "urgent": incident.urgent,
        "delivery_state": incident.delivery_state,
        "delivery_cause": incident.delivery_cause,
        "operational_status": incident.operational_status,
        "closed": is_closed(incident),
        # Its centre, and the nearest address to it once the background loop found one (incidents/addresses.py).
        "lat": incident.lat,
        "lon": incident.lon,
        "address": incident.address,
        "address_distance_m": incident.address_distance_m,
        "created_at": incident.created_at,
        "updated_at": incident.updated_at,
        "merged_into": incident.merged_into,
        "merged_from": merged_from,
        "split_from": incident.split_from,
        "event": event,
        "reports": [
            {"report_id": r.report_id, "reference": r.reference, "state": r.state, "verdict": r.verdict}
            for r in reports
        ],
    }


def is_closed(incident: Incident) -> bool:
    """Closed: the meldkamer says the incident is over (Closed or Cancelled); until it does, it is open, however
    old. (Not `events.is_open`, which also asks whether new reports may still join it.)"""
    return incident.operational_status in CLOSED_STATUSES


def closed_in_sql(closed: bool) -> ColumnElement[bool]:
    """`is_closed`, or its opposite, as a query's condition (no status yet is open: NULL is in no list)."""
    ended = col(Incident.operational_status).in_(CLOSED_STATUSES)
    return ended if closed else or_(col(Incident.operational_status).is_(None), not_(ended))


@dataclass(frozen=True)
class IncidentFilter:
    delivery_state: DeliveryState | None = None
    priority: MeldkamerPriority | None = None
    category: str | None = None
    include_merged: bool = False  # incidents merged into another are shown there, with all their reports
    closed: bool | None = None  # only the open ones (False), only the closed ones (True), or both (None)


@dataclass(frozen=True)
class ReportFilter:
    state: ReportState | None = None
    verdict: str | None = None
    category: str | None = None
    in_progress: bool | None = None
    group_id: str | None = None


def audit_listing(
    session: AsyncSession,
    actor: Actor,
    what: str,
    filters: IncidentFilter | ReportFilter | dict[str, object],
    ids: list[str],
) -> None:
    """A list shows reports too: who saw which, under what filter (its values as they were asked for)."""
    shown = ", ".join(ids[:50]) + (f" and {len(ids) - 50} more" if len(ids) > 50 else "")
    if isinstance(filters, dict):
        asked = str(filters)
    else:
        values = ", ".join(f"{f.name}={_plain(getattr(filters, f.name))!r}" for f in fields(filters))
        asked = f"{type(filters).__name__}({values})"
    audit(session, actor, f"list_{what}", what, "*", f"filter {asked}; shown: {shown or 'none'}"[:2000])


def _plain(value: object) -> object:
    return value.value if isinstance(value, Enum) else value


async def list_incidents(runtime: Runtime, actor: Actor, filters: IncidentFilter, limit: int) -> list[dict[str, Any]]:
    async with runtime.db.transaction() as session:
        query = select(Incident).order_by(col(Incident.priority), col(Incident.created_at).desc()).limit(limit)
        if filters.delivery_state:
            query = query.where(Incident.delivery_state == filters.delivery_state)
        if filters.priority:
            query = query.where(Incident.priority == filters.priority)
        if filters.category:
            query = query.where(Incident.category == filters.category)
        if not filters.include_merged:
            query = query.where(col(Incident.merged_into).is_(None))
        if filters.closed is not None:
            query = query.where(closed_in_sql(filters.closed))
        shown = (await session.execute(query)).scalars().all()
        summaries = await incident_summaries(session, shown)
        audit_listing(session, actor, "incidents", filters, [i.id for i in shown])
    return summaries


async def incident_summaries(session: AsyncSession, shown: Sequence[Incident]) -> list[dict[str, Any]]:
    """`incident_summary` of each of these incidents, in their order, with their reports and merged ones."""
    ids = [i.id for i in shown]
    reports = (
        (
            await session.execute(
                select(BridgeReport)
                .where(col(BridgeReport.incident_id).in_(ids))
                .order_by(col(BridgeReport.received_at))
            )
        )
        .scalars()
        .all()
    )
    merged = (
        await session.execute(select(Incident.id, col(Incident.merged_into)).where(col(Incident.merged_into).in_(ids)))
    ).all()
    by_incident: dict[str, list[BridgeReport]] = {}
    for report in reports:
        by_incident.setdefault(report.incident_id or "", []).append(report)
    merged_from: dict[str, list[str]] = {}
    for absorbed, survivor in merged:
        if survivor is not None:  # it is: the query asked for the merged ones
            merged_from.setdefault(survivor, []).append(absorbed)
    return [incident_summary(i, by_incident.get(i.id, []), sorted(merged_from.get(i.id, []))) for i in shown]


async def list_reports(runtime: Runtime, actor: Actor, filters: ReportFilter, limit: int) -> list[dict[str, Any]]:
    async with runtime.db.transaction() as session:
        query = select(BridgeReport).order_by(col(BridgeReport.received_at).desc())
        for column, value in (
            (BridgeReport.state, filters.state),
            (BridgeReport.verdict, filters.verdict),
            (BridgeReport.category, filters.category),
            (BridgeReport.in_progress, filters.in_progress),
            (BridgeReport.group_id, filters.group_id),
        ):
            if value is not None:
                query = query.where(column == value)
        stored = list((await session.execute(query.limit(limit))).scalars())
        incidents = {
            i.id: i
            for i in (
                await session.execute(
                    select(Incident).where(col(Incident.id).in_([r.incident_id for r in stored if r.incident_id]))
                )
            ).scalars()
        }
        audit_listing(session, actor, "reports", filters, [r.report_id for r in stored])
    return [
        {
            **report_summary(r),
            "delivery_state": incidents[r.incident_id].delivery_state if r.incident_id in incidents else None,
        }
        for r in stored
    ]


async def find_report(session: AsyncSession, report_id: str, lock: bool = False) -> BridgeReport:
    stored = await session.get(BridgeReport, report_id[:36], with_for_update=lock)
    if stored is None:
        raise ServiceError(404, "report_not_found", "no such report", detail_nl="deze melding bestaat niet")
    return stored


async def view_report(runtime: Runtime, actor: Actor, report_id: str) -> dict[str, Any]:
    async with runtime.db.transaction() as session:
        stored = await find_report(session, report_id)
        audit(session, actor, "view_report", "report", stored.report_id, report_id=stored.report_id)
        messages = (
            (
                await session.execute(
                    select(BridgeMessage)
                    .where(BridgeMessage.report_id == stored.report_id)
                    .order_by(col(BridgeMessage.sent_at))
                )
            )
            .scalars()
            .all()
        )
    submission = ReportSubmitted.model_validate_json(stored.submission)
    return {
        **report_summary(stored),
        "description": submission.description,
        "location": submission.location.model_dump(),
        "observed_at": submission.observed_at,
        "photos": [photo_view(p) for p in submission.photos],
        "contact": submission.contact.model_dump() if submission.contact else None,
        "verification_detail": json.loads(stored.verification) if stored.verification else None,
        "messages": [
            {
                "id": m.id,
                "direction": m.direction,
                "text": m.text,
                "author": m.author,
                "in_reply_to": m.in_reply_to,
                "sent_at": m.sent_at,
            }
            for m in messages
        ],
    }


VideoCopy = Literal["playable", "compatible"]


async def playable(
    runtime: Runtime, actor: Actor, report_id: str, photo_id: str, first: bool, copy: VideoCopy = "playable"
) -> tuple[Path, str]:
    """A video's playable copy (remuxed, without metadata) or its compatible copy (H.264, for a codec not every
    browser plays), as a file to serve in ranges; its poster is the display copy `photo` gives. `first`: the
    player's first request (not a range further on), which is the one that goes in the audit chain, as
    "view_video"."""
    async with runtime.db.transaction() as session:
        stored = await find_report(session, report_id)
        ref = ref_of(stored, photo_id)
        if ref is None or ref.kind != "video" or ref.playable_sha256 is None:
            raise ServiceError(
                404,
                "video_not_found",
                "no such video on this report",
                detail_nl="deze melding heeft geen video met dit nummer",
            )
        digest, media_type = ref.playable_sha256, ref.playable_type or "video/mp4"
        if copy == "compatible":
            digest, media_type = compatible_copy(ref), COMPATIBLE_TYPE
        if first:
            audit(
                session,
                actor,
                "view_video",
                "photo",
                ref.photo_id,
                {"sha256": digest, "copy": copy},
                report_id=stored.report_id,
            )
    try:
        path = await served_file(runtime, digest)
    except (BlobNotFound, ValueError) as exc:
        raise ServiceError(
            404,
            "video_not_found",
            "the stored video is missing or damaged",
            detail_nl="de opgeslagen video ontbreekt of is beschadigd",
        ) from exc
    return path, media_type


def compatible_copy(ref: PhotoRef) -> str:
    """The digest of a video's compatible copy, or why there is none (yet)."""
    if ref.compatible == "pending":
        raise ServiceError(
            409,
            "video_copy_pending",
            "the copy that plays in every browser is still being made; the playable copy is there now",
            detail_nl="de kopie die in elke browser speelt wordt nog gemaakt; de afspeelbare kopie is er al",
        )
    if ref.compatible_sha256 is None:
        raise ServiceError(
            404,
            "video_not_found",
            "this video has no compatible copy: its playable copy plays in every browser, or it could not be made",
            detail_nl="deze video heeft geen compatibele kopie: de afspeelbare kopie speelt in elke browser, "
            "of de kopie kon niet worden gemaakt",
        )
    return ref.compatible_sha256


async def media_ref(runtime: Runtime, report_id: str, photo_id: str) -> PhotoRef | None:
    """What a report's photo or video is (its kind and types), for a page that shows it; not an access to it."""
    async with runtime.db.sessions() as session:
        stored = await find_report(session, report_id)
    return ref_of(stored, photo_id)


def photo_view(p: PhotoRef) -> dict[str, Any]:
    """A report's photo or video as the dispatchers' API and the console show it (views.ReportPhoto)."""
    video = p.kind == "video"
    return {
        "photo_id": p.photo_id,
        "content_type": p.content_type,
        "width": p.width,
        "height": p.height,
        "sha256": p.sha256,
        "kind": p.kind,
        "duration_seconds": p.duration_seconds,
        "playable_type": p.playable_type if video else None,
        "playable_codecs": p.playable_codecs if video else None,
        "compatible": p.compatible if video else None,
    }


def ref_of(stored: BridgeReport, photo_id: str) -> PhotoRef | None:
    """A report's photo or video by its id, as intake described it."""
    photos = ReportSubmitted.model_validate_json(stored.submission).photos
    return next((p for p in photos if p.photo_id == photo_id), None)


def media_cache(runtime: Runtime) -> Path:
    return Path(runtime.settings.blob_dir).parent / "media-cache"


async def served_file(runtime: Runtime, digest: str) -> Path:
    """A blob as a file to serve (a video in ranges, an original to the meldkamer): checked against its digest
    the first time this process serves it (blobstore.verified_file); an S3 object copied to `media-cache/`."""
    known: set[str] = runtime.extras.setdefault("verified_files", set())
    return await asyncio.to_thread(verified_file, runtime.blobs, digest, media_cache(runtime), known)


class MediaCachePurge(BackgroundLoop):
    """The S3 objects copied to `media-cache/` to be served in ranges go once nobody has played them for an
    hour: the cache stays the size of what is being watched, and a video retention deleted does not live on."""

    name = "media-cache-purge"
    poll_seconds = 600.0
    unused_seconds = 3600.0

    def __init__(self, runtime: Runtime) -> None:
        super().__init__()
        self.runtime = runtime

    async def run_once(self) -> int:
        return await asyncio.to_thread(purge_cache, media_cache(self.runtime), self.unused_seconds)


async def video_answer(
    request: Request, runtime: Runtime, actor: Actor, report_id: str, photo_id: str, copy: VideoCopy
) -> Response:
    """A video's playable copy as the dispatchers' API and the console answer it: a file answer, which answers a
    player's Range requests with 206 (seeking), never cached."""
    first = request.headers.get("range", "bytes=0-").replace(" ", "") in {"bytes=0-", ""}
    path, media_type = await playable(runtime, actor, report_id, photo_id, first, copy)
    return FileResponse(path, media_type=media_type, headers={"Cache-Control": "no-store"})


async def photo_answer(
    runtime: Runtime, actor: Actor, report_id: str, photo_id: str, original: bool, headers: dict[str, str]
) -> Response:
    """`photo` as an answer: bytes, or a file streamed (a video's original: up to 200 MB, never whole in memory)."""
    found, content_type = await photo(runtime, actor, report_id, photo_id, original)
    if isinstance(found, Path):
        return FileResponse(found, media_type=content_type, headers=headers)
    return Response(found, media_type=content_type, headers=headers)


async def photo(
    runtime: Runtime, actor: Actor, report_id: str, photo_id: str, original: bool
) -> tuple[bytes | Path, str]:
    """The sanitised display copy; the original (evidence) only for supervisors, and only if it is intact (a
    video's as a file, checked against its digest)."""
    if original and actor.role != "supervisor":
        raise ServiceError(
            403,
            "forbidden",
            "only a supervisor may see the original photo",
            detail_nl="alleen een supervisor mag de originele foto zien",
        )
    async with runtime.db.transaction() as session:
        stored = await find_report(session, report_id)
        ref = ref_of(stored, photo_id)
        if ref is None:
            raise ServiceError(
                404,
                "photo_not_found",
                "no such photo on this report",
                detail_nl="deze melding heeft geen foto met dit nummer",
            )
        audit(
            session,
            actor,
            "view_photo_original" if original else "view_photo",
            "photo",
            ref.photo_id,
            {
                "sha256": ref.sha256 if original else ref.sanitised_sha256,
                "copy": "original" if original else "sanitised",
            },
            report_id=stored.report_id,
        )
    try:
        if original and ref.kind == "video":
            return await served_file(runtime, ref.sha256), ref.content_type
        if original:
            return await asyncio.to_thread(runtime.blobs.read_verified, ref.sha256), ref.content_type
        if ref.sanitised_sha256 is None and ref.display == "pending":
            raise ServiceError(
                409,
                "photo_display_pending",
                "the display copy of this photo is being made: ask again in a few seconds",
                headers={"Retry-After": "2"},
                detail_nl="De weergavekopie van deze foto wordt gemaakt: probeer het over enkele seconden opnieuw",
            )
        if ref.sanitised_sha256 is None:
            raise ServiceError(
                404,
                "photo_unreadable",
                "this photo does not decode, so it has no display copy (a "
                "supervisor can fetch the original as it arrived)",
                detail_nl="Deze foto is niet leesbaar en heeft dus geen weergavekopie (een "
                "supervisor kan het origineel opvragen zoals het binnenkwam)",
            )
        return await asyncio.to_thread(runtime.blobs.read_verified, ref.sanitised_sha256), "image/jpeg"
    except (BlobNotFound, ValueError) as exc:
        raise ServiceError(
            404,
            "photo_not_found",
            "the stored photo is missing or damaged",
            detail_nl="de opgeslagen foto ontbreekt of is beschadigd",
        ) from exc


async def audit_log(runtime: Runtime, target_id: str | None, limit: int) -> list[dict[str, Any]]:
    """The newest entries of the bridge's audit chain (with their hashes), optionally about one target."""
    entries = audit_tables.entries
    async with runtime.db.sessions() as session:
        query = entries.select().order_by(entries.c.seq.desc()).limit(limit)
        if target_id:
            query = query.where((entries.c.target_id == target_id) | (entries.c.report_id == target_id))
        rows = (await session.execute(query)).mappings().all()
    return [{**auditchain.as_json(dict(row)), "username": row["actor"]} for row in rows]
