"""Grouping reports of one event, online as they arrive, with a periodic pass that merges fragments.

Online: the report's H3 cell (resolution 9, edges of about 200 m) and its neighbours, a time window, a
compatible category, and the nearest group within the distance limit; otherwise a new group. Measured on
synthetic data (photo-verification.md) this is fast and pure but over-splits at cell and window edges, which
the merge pass repairs. Two events 2 km or 6 hours apart stay apart.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

import h3
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from burgermelding_shared.background import BackgroundLoop
from burgermelding_shared.db import Database
from burgermelding_shared.timeutil import utcnow
from verification.checks import distance_m
from verification.models import IncidentGroup, ReportGroup

RESOLUTION = 9
MAX_DISTANCE_M = 400.0
WINDOW = timedelta(hours=2)

# Categories that can describe the same event; "other" fits anything.
FAMILIES = {
    "burglary": "crime", "theft": "crime", "robbery": "crime", "violence": "crime", "suspicious_situation": "crime",
    "vandalism": "crime", "drugs": "crime", "missing_person": "crime", "public_nuisance": "crime",
    "traffic_accident": "traffic", "dangerous_driving": "traffic", "fire": "fire", "other": "any",
}


def family_of(category: str) -> str:
    return FAMILIES.get(category, "any")


def compatible(a: str, b: str) -> bool:
    return a == b or "any" in (a, b)


async def assign(session: AsyncSession, report_id: str, category: str, lat: float, lon: float,
                 observed_at: datetime) -> tuple[str, list[str]]:
    """Put a report in a group (idempotent per report); returns (group id, the group's other reports)."""
    existing = await session.get(ReportGroup, report_id)
    if existing is None:
        cell = h3.latlng_to_cell(lat, lon, RESOLUTION)
        family = family_of(category)
        candidates = (await session.execute(select(IncidentGroup).where(
            IncidentGroup.cell.in_(list(h3.grid_disk(cell, 1))), IncidentGroup.merged_into.is_(None),
            IncidentGroup.last_seen >= observed_at - WINDOW, IncidentGroup.first_seen <= observed_at + WINDOW,
        ).with_for_update())).scalars().all()
        nearest = min(((distance_m(lat, lon, g.lat, g.lon), g) for g in candidates if compatible(g.family, family)),
                      key=lambda pair: pair[0], default=None)
        if nearest is not None and nearest[0] <= MAX_DISTANCE_M:
            group = nearest[1]
            group.report_count += 1
            group.last_seen = max(group.last_seen, observed_at)
            group.first_seen = min(group.first_seen, observed_at)
        else:
            group = IncidentGroup(id=str(uuid.uuid4()), family=family, cell=cell, lat=lat, lon=lon,
                                  first_seen=observed_at, last_seen=observed_at)
        session.add(group)
        existing = ReportGroup(report_id=report_id, group_id=group.id, observed_at=observed_at, lat=lat, lon=lon)
        session.add(existing)
        await session.flush()
    others = (await session.execute(select(ReportGroup.report_id).where(
        ReportGroup.group_id == existing.group_id, ReportGroup.report_id != report_id))).scalars().all()
    return existing.group_id, sorted(others)


async def merge_fragments(db: Database) -> int:
    """Merge groups that the online pass split at a cell or window edge; returns how many were merged away."""
    merged = 0
    async with db.transaction() as session:
        recent = (await session.execute(select(IncidentGroup).where(
            IncidentGroup.merged_into.is_(None), IncidentGroup.last_seen >= utcnow() - timedelta(days=2))
            .order_by(IncidentGroup.first_seen).with_for_update())).scalars().all()
        alive = list(recent)
        for i, older in enumerate(alive):
            if older.merged_into:
                continue
            for newer in alive[i + 1:]:
                if newer.merged_into or not compatible(older.family, newer.family):
                    continue
                close_in_time = newer.first_seen <= older.last_seen + WINDOW
                if close_in_time and distance_m(older.lat, older.lon, newer.lat, newer.lon) <= MAX_DISTANCE_M:
                    newer.merged_into = older.id
                    older.report_count += newer.report_count
                    older.last_seen = max(older.last_seen, newer.last_seen)
                    await session.execute(update(ReportGroup).where(ReportGroup.group_id == newer.id)
                                          .values(group_id=older.id))
                    session.add_all([older, newer])
                    merged += 1
    return merged


class FragmentMerger(BackgroundLoop):
    name = "group-merger"

    def __init__(self, db: Database, every_seconds: float) -> None:
        super().__init__()
        self.db = db
        self.poll_seconds = every_seconds

    async def run_once(self) -> int:
        await merge_fragments(self.db)
        return 0  # then sleep a full interval
