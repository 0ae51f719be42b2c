"""The event an incident's reports describe together: its place, time span, witnesses, photos and summary."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from burgermelding_shared.contracts import (
    EventCentre,
    EventPhoto,
    EventSummary,
    ReportSubmitted,
    VerificationCompleted,
)
from burgermelding_shared.db import serialise
from burgermelding_shared.events import (
    WINDOW,
    Extent,
    Sighting,
    family_of,
    narrowest_family,
    nearest_event,
    normalise_text,
    spread_of,
)
from burgermelding_shared.witnesses import independent_witnesses
from dispatch_bridge.meldkamer import eido
from dispatch_bridge.models import BridgeReport, Incident
from dispatch_bridge.states import CLOSED_STATUSES, DeliveryState, ReportState

# The meldkamer no longer has (or never had) these incidents: a new report of the event starts a new one.
DEAD_DELIVERIES = (DeliveryState.REJECTED, DeliveryState.DEAD_LETTERED)


DESCRIPTIONS_MAX_CHARS = 20_000


DOUBTFUL_PHOTO_CHECKS = {"near_duplicate", "recycled_image", "possible_duplicate"}


EVENT_DECISIONS = "bridge:event-decisions"


def sighting_of(report: ReportSubmitted) -> Sighting:
    return Sighting(family_of(report.category), report.location.lat, report.location.lon, report.observed_at)


def extent_of(incident: Incident) -> Extent | None:
    if (
        incident.family is None
        or incident.lat is None
        or incident.lon is None
        or incident.first_seen is None
        or incident.last_seen is None
    ):
        return None
    return Extent(incident.family, incident.lat, incident.lon, incident.first_seen, incident.last_seen)


def is_open(incident: Incident) -> bool:
    return (
        incident.merged_into is None
        and incident.operational_status not in CLOSED_STATUSES
        and incident.delivery_state not in DEAD_DELIVERIES
    )


async def decide_one_at_a_time(session: AsyncSession) -> None:
    """Two witnesses of one event arriving at the same moment must not both start an incident, and a merge
    must not race a join. Every transaction that may forward, join or merge takes this first, before any row
    lock, so such transactions never wait on each other's rows in opposite orders."""
    await serialise(session, EVENT_DECISIONS)


async def open_incident_for(session: AsyncSession, report: ReportSubmitted) -> Incident | None:
    """The open incident of the report's event, if the meldkamer has one (locked); None: a new event."""
    sighting = sighting_of(report)
    candidates = (
        (
            await session.execute(
                select(Incident).where(
                    col(Incident.merged_into).is_(None),
                    col(Incident.last_seen) >= sighting.observed_at - WINDOW,
                    col(Incident.first_seen) <= sighting.observed_at + WINDOW,
                )
            )
        )
        .scalars()
        .all()
    )
    pairs = [(extent, i) for i in candidates if is_open(i) and (extent := extent_of(i)) is not None]
    found = nearest_event(pairs, sighting)
    if found is None:
        return None
    incident = await session.get(Incident, found.id, with_for_update=True)
    while incident is not None and incident.merged_into is not None:  # merged meanwhile: join the survivor
        incident = await session.get(Incident, incident.merged_into, with_for_update=True)
    # A meldkamer callback may have closed it between the query and the lock (those take no event lock).
    return incident if incident is not None and is_open(incident) else None


def place(stored: BridgeReport, report: ReportSubmitted) -> None:
    """What the bridge keeps of a report to place it in its event and count its witness: where and when from
    each revision, the sender from the first that named one (as verification keeps it: a revision may come
    without it, or on another day under that day's pseudonym, and one report stays one witness)."""
    stored.lat, stored.lon, stored.observed_at = report.location.lat, report.location.lon, report.observed_at
    if report.submitter_tag and not stored.submitter_tag:
        stored.submitter_tag, stored.submitter_kind = report.submitter_tag, report.submitter_kind


def first_witness(report: ReportSubmitted, previous: ReportSubmitted) -> ReportSubmitted:
    """A revision as the bridge stores it over `previous` (the submission it has): with the independent source
    the report first came with. The event's witnesses are counted from each report's stored submission
    (`describe`), so a revision without it (sent by an intake from before reports kept theirs, or after the
    installation's first hour) must not make ten installations new from one address ten witnesses again. The
    first source seen is kept; a revision may bring one the report had none of."""
    if previous.independent_source is None or report.independent_source == previous.independent_source:
        return report
    return report.model_copy(update={"independent_source": previous.independent_source})


async def reports_of(session: AsyncSession, incident_id: str) -> list[BridgeReport]:
    query = (
        select(BridgeReport)
        .where(BridgeReport.incident_id == incident_id)
        .order_by(col(BridgeReport.received_at), col(BridgeReport.report_id))
    )
    return list((await session.execute(query)).scalars())


def sender_of(report: BridgeReport) -> str:
    """One per installation; reports keyed only on an address count as one sender; without a pseudonym (an
    anonymised report), each report is its own."""
    return f"{report.submitter_kind}:{report.submitter_tag}" if report.submitter_tag else f"report:{report.report_id}"


def witnesses(reports: list[BridgeReport]) -> int:
    """Distinct senders (`sender_of`), each installation counted, however new."""
    return len({sender_of(r) for r in reports})


def ranked_photos(reports: list[BridgeReport], submissions: list[ReportSubmitted]) -> list[EventPhoto]:
    """Every photo of the event, best first: verified without doubts, not a duplicate, sharp."""
    photos: list[tuple[tuple[Any, ...], EventPhoto]] = []
    seen_digests: set[str] = set()
    for order, (stored, submission) in enumerate(zip(reports, submissions, strict=True)):
        result = VerificationCompleted.model_validate_json(stored.verification) if stored.verification else None
        checked = {p.photo_id: p for p in result.photos} if result else {}
        for photo in submission.photos:
            verification = checked.get(photo.photo_id)
            doubts = {c.code for c in verification.checks if c.outcome in ("warn", "fail")} if verification else set()
            codes = {c.code for c in verification.checks} if verification else set()
            duplicate = (
                photo.sha256 in seen_digests
                or bool(codes & DOUBTFUL_PHOTO_CHECKS)
                or bool(result and result.duplicate_of_reports)
            )
            seen_digests.add(photo.sha256)
            verified = None if result is None else (result.verdict == "forward" and not doubts)
            sharpness = verification.sharpness if verification else None
            entry = EventPhoto(
                mediaId=eido.media_id(photo.photo_id),
                digestSha256=photo.sha256,
                reportReference=stored.reference,
                verified=verified,
                sharpness=sharpness,
                duplicate=duplicate,
            )
            photos.append(((verified is not True, duplicate, -(sharpness or 0.0), order), entry))
    return [entry for _key, entry in sorted(photos, key=lambda pair: pair[0])]


def distinct_descriptions(reports: list[BridgeReport], submissions: list[ReportSubmitted]) -> tuple[list[str], int]:
    """Each description once (the same words in other case or punctuation are a repeat), oldest first,
    up to DESCRIPTIONS_MAX_CHARS; returns (texts, how many distinct ones were left out)."""
    texts: list[str] = []
    seen: set[str] = set()
    used, omitted = 0, 0
    by_time = sorted(
        zip(reports, submissions, strict=True),
        key=lambda pair: (pair[0].observed_at or pair[0].received_at, pair[0].report_id),
    )
    for _stored, submission in by_time:
        text = submission.description.strip()
        key = normalise_text(text)
        if not key or key in seen:
            continue
        seen.add(key)
        if used + len(text) > DESCRIPTIONS_MAX_CHARS:
            omitted += 1
            continue
        texts.append(text)
        used += len(text)
    return texts, omitted


def refresh_extent(incident: Incident, reports: list[BridgeReport]) -> None:
    placed = [
        (r, (r.lat, r.lon), r.observed_at)
        for r in reports
        if r.lat is not None and r.lon is not None and r.observed_at is not None
    ]
    if not placed:
        return
    spread = spread_of([point for _, point, _ in placed])
    incident.lat, incident.lon = spread.lat, spread.lon
    incident.first_seen = min(seen for _, _, seen in placed)
    incident.last_seen = max(seen for _, _, seen in placed)
    incident.family = narrowest_family(r.category for r, _, _ in placed)


def counts(stored: BridgeReport) -> bool:
    """Whether a report speaks for the event: not withdrawn, and not rejected by verification (an urgent
    report joins before it is verified; spam found later must not count as a witness). An answer to a Burgernet
    action is news for the incident (its own update), not a witness of the event's place: a sighting of the
    suspect two kilometres on must not stretch the event over the town."""
    return stored.state != ReportState.WITHDRAWN and stored.verdict != "reject" and stored.appeal_id is None


async def summarise(session: AsyncSession, incident: Incident) -> EventSummary:
    """The event as it now stands, with a new version, for the meldkamer; refreshes the incident's extent."""
    await session.flush()
    reports = [r for r in await reports_of(session, incident.id) if counts(r)]
    refresh_extent(incident, reports)
    incident.summary_version += 1
    session.add(incident)
    return describe(incident, reports, incident.summary_version)


def describe(incident: Incident, reports: list[BridgeReport], version: int) -> EventSummary:
    """What these reports of the incident say together (those that do not count left out)."""
    reports = [r for r in reports if counts(r)]
    placed = [(r.lat, r.lon) for r in reports if r.lat is not None and r.lon is not None]
    spread = spread_of(placed) if placed else None
    observed = [r.observed_at for r in reports if r.observed_at is not None]
    submissions = [ReportSubmitted.model_validate_json(r.submission) for r in reports]  # parsed once
    descriptions, omitted = distinct_descriptions(reports, submissions)
    fallback: datetime = incident.created_at
    return EventSummary(
        version=max(1, version),
        reportCount=len(reports),
        senderCount=witnesses(reports),
        # Installations new from one address are one witness: the dispatcher sees both numbers, and so why.
        witnessCount=independent_witnesses(
            (sender_of(r), s.independent_source) for r, s in zip(reports, submissions, strict=True)
        ),
        firstObserved=min(observed, default=fallback),
        lastObserved=max(observed, default=fallback),
        centre=EventCentre(
            lat=spread.lat if spread else incident.lat or 0.0, lon=spread.lon if spread else incident.lon or 0.0
        ),
        radiusMeters=round(spread.radius_m, 1) if spread else 0.0,
        inProgress=any(r.in_progress for r in reports),
        dangerToLife=any(r.danger_to_life for r in reports),
        descriptions=descriptions,
        descriptionsOmitted=omitted,
        photos=ranked_photos(reports, submissions),
    )
