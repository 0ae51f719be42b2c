"""Grouping reports of one event, online as they arrive, with a periodic pass that merges fragments.

The rule itself (place, time, category family) is the suite's one rule in `burgermelding_shared.events`; this
module only finds candidates fast. Online: the groups in the report's H3 cell (resolution 9, edges of about
200 m) and its neighbours, then the nearest one the rule admits; otherwise a new group. A group's centre is the
mean of its reports. This over-splits at cell and window edges, which the merge pass repairs; each merge is
told to the bridge (outbox), so two incidents that turn out to be one event are merged at the meldkamer too.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

import h3
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from burgermelding_shared.background import BackgroundLoop
from burgermelding_shared.catalogue import GROUPS_MERGED
from burgermelding_shared.contracts import GroupsMerged, ReportSubmitted
from burgermelding_shared.db import Database
from burgermelding_shared.events import (
    ANY_FAMILY,
    WINDOW,
    Extent,
    Sighting,
    family_of,
    nearest_event,
    same_event,
)
from burgermelding_shared.messaging import enqueue
from burgermelding_shared.timeutil import utcnow
from burgermelding_shared.witnesses import independent_witnesses
from verification.models import IncidentGroup, ReportGroup, ReportText, messaging

RESOLUTION = 9


def extent(group: IncidentGroup) -> Extent:
    return Extent(group.family, group.lat, group.lon, group.first_seen, group.last_seen)


async def assign(
    session: AsyncSession, report_id: str, category: str, lat: float, lon: float, observed_at: datetime
) -> tuple[str, list[str]]:
    """Put a report in a group (idempotent per report); returns (group id, the group's other reports)."""
    existing = await session.get(ReportGroup, report_id)
    if existing is None:
        cell = h3.latlng_to_cell(lat, lon, RESOLUTION)
        sighting = Sighting(family_of(category), lat, lon, observed_at)
        candidates = (
            (
                await session.execute(
                    select(IncidentGroup)
                    .where(
                        col(IncidentGroup.cell).in_(list(h3.grid_disk(cell, 1))),
                        col(IncidentGroup.merged_into).is_(None),
                        IncidentGroup.last_seen >= observed_at - WINDOW,
                        IncidentGroup.first_seen <= observed_at + WINDOW,
                    )
                    .with_for_update()
                )
            )
            .scalars()
            .all()
        )
        group = nearest_event(((extent(g), g) for g in candidates), sighting)
        if group is not None:
            count = group.report_count
            group.lat, group.lon = (group.lat * count + lat) / (count + 1), (group.lon * count + lon) / (count + 1)
            group.report_count = count + 1
            if group.family == ANY_FAMILY:  # "other" reports fit anything; a specific witness says what it is
                group.family = sighting.family
            group.last_seen = max(group.last_seen, observed_at)
            group.first_seen = min(group.first_seen, observed_at)
        else:
            group = IncidentGroup(
                id=str(uuid.uuid4()),
                family=sighting.family,
                cell=cell,
                lat=lat,
                lon=lon,
                first_seen=observed_at,
                last_seen=observed_at,
            )
        session.add(group)
        existing = ReportGroup(report_id=report_id, group_id=group.id, observed_at=observed_at, lat=lat, lon=lon)
        session.add(existing)
        await session.flush()
    others = (
        (
            await session.execute(
                select(ReportGroup.report_id).where(
                    ReportGroup.group_id == existing.group_id, ReportGroup.report_id != report_id
                )
            )
        )
        .scalars()
        .all()
    )
    return existing.group_id, sorted(others)


@dataclass(frozen=True)
class Witness:
    """The installation a report came from (its daily pseudonym), and the independent source it counts as when
    that is not the installation itself (burgermelding_shared.witnesses)."""

    tag: str
    independent_source: str | None = None


def witness_of(report: ReportSubmitted) -> Witness | None:
    """Only reports with an installation credential can corroborate: those keyed on an address cannot be told
    apart."""
    if report.submitter_kind != "installation" or not report.submitter_tag:
        return None
    return Witness(report.submitter_tag, report.independent_source)


async def installations_in_group(session: AsyncSession, group_id: str) -> dict[str, Witness]:
    """report id -> the witness it came from, for the group's reports that came with an installation
    credential (reports keyed only on an address cannot be told apart)."""
    rows = (
        await session.execute(
            select(ReportText.report_id, ReportText.submitter_tag, ReportText.independent_source)
            .join(ReportGroup, col(ReportGroup.report_id) == ReportText.report_id)
            .where(
                ReportGroup.group_id == group_id,
                ReportText.submitter_kind == "installation",
                col(ReportText.submitter_tag).is_not(None),
            )
        )
    ).all()
    return {report_id: Witness(tag, source) for report_id, tag, source in rows}


def independent_count(witnesses: dict[str, Witness]) -> int:
    """How many independent witnesses the event's reports stand for."""
    return independent_witnesses((w.tag, w.independent_source) for w in witnesses.values())


def independent_others(witnesses: dict[str, Witness], own: Witness | None) -> int:
    """How many independent witnesses other than the report's own sent reports of its event: its own
    installation, and those new from its address with it, corroborate nothing."""
    reports = [(w.tag, w.independent_source) for w in witnesses.values()]
    if own is not None:
        reports.append((own.tag, own.independent_source))
    return independent_witnesses(reports, excluding=own.tag if own is not None else None)


async def merge_fragments(db: Database) -> int:
    """Merge groups that the online pass split at a cell or window edge; returns how many were merged away.
    Each merge goes to the bridge in the same transaction (outbox)."""
    merged = 0
    async with db.transaction() as session:
        recent = (
            (
                await session.execute(
                    select(IncidentGroup)
                    .where(
                        col(IncidentGroup.merged_into).is_(None),
                        IncidentGroup.last_seen >= utcnow() - timedelta(days=2),
                    )
                    .order_by(col(IncidentGroup.first_seen))
                    .with_for_update()
                )
            )
            .scalars()
            .all()
        )
        alive = list(recent)
        for i, older in enumerate(alive):
            if older.merged_into:
                continue
            for newer in alive[i + 1 :]:
                if newer.merged_into or not same_event(extent(older), extent(newer)):
                    continue
                await _merge(session, older, newer)
                merged += 1
    return merged


async def _merge(session: AsyncSession, older: IncidentGroup, newer: IncidentGroup) -> None:
    moved = list(
        (await session.execute(select(ReportGroup.report_id).where(ReportGroup.group_id == newer.id))).scalars()
    )
    total = older.report_count + newer.report_count
    older.lat = (older.lat * older.report_count + newer.lat * newer.report_count) / total
    older.lon = (older.lon * older.report_count + newer.lon * newer.report_count) / total
    older.report_count = total
    older.first_seen = min(older.first_seen, newer.first_seen)
    older.last_seen = max(older.last_seen, newer.last_seen)
    newer.merged_into = older.id
    await session.execute(update(ReportGroup).where(col(ReportGroup.group_id) == newer.id).values(group_id=older.id))
    session.add_all([older, newer])
    stayed = list(
        (
            await session.execute(
                select(ReportGroup.report_id).where(
                    ReportGroup.group_id == older.id, col(ReportGroup.report_id).not_in(moved)
                )
            )
        ).scalars()
    )
    message = GroupsMerged(
        group_id=older.id,
        merged_group_id=newer.id,
        report_ids=sorted(stayed),
        merged_report_ids=sorted(moved),
        merged_at=utcnow(),
    )
    await enqueue(session, messaging, GROUPS_MERGED, message)


class FragmentMerger(BackgroundLoop):
    name = "group-merger"

    def __init__(self, db: Database, every_seconds: float) -> None:
        super().__init__()
        self.db = db
        self.poll_seconds = every_seconds
        self._first = True

    async def run_once(self) -> int:
        # A periodic pass: the first one an interval after start, not at once (nothing new to merge then).
        if self._first:
            self._first = False
            return 0
        await merge_fragments(self.db)
        return 0  # then sleep a full interval
