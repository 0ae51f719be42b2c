"""What makes reports one event: close in place and time, and of a compatible category family.

The one grouping rule of the suite. Verification groups every report with it (and merges fragments with it);
the bridge uses it to decide whether a report it is about to forward joins an incident the meldkamer already
has, so an urgent report is attached to its event without waiting for verification.

Measured on synthetic data (photo-verification.md): an event's reports lie within a few hundred metres and are
sent within the hour; two events 1 km or 6 hours apart stay apart.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TypeVar

from burgermelding_shared.categories import CATEGORIES

MAX_DISTANCE_M = 400.0  # from the event's centre
WINDOW = timedelta(hours=2)  # before its first or after its last report
ANY_FAMILY = "any"  # "other" fits every event


def distance_m(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Great-circle distance in metres (haversine)."""
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * 6_371_000 * math.asin(min(1.0, math.sqrt(a)))


def family_of(category: str) -> str:
    known = CATEGORIES.get(category)
    return known.family if known is not None else ANY_FAMILY


def compatible(family_a: str, family_b: str) -> bool:
    return family_a == family_b or ANY_FAMILY in (family_a, family_b)


def narrowest_family(categories: Iterable[str]) -> str:
    """An event's family: that of its first report with a specific one. An event of "other" reports only fits
    anything, but once a witness says "fire" it is a fire, and a fight 300 m away no longer joins it."""
    families = [family_of(c) for c in categories]
    return next((f for f in families if f != ANY_FAMILY), ANY_FAMILY)


@dataclass(frozen=True)
class Sighting:
    """One report as the rule sees it."""

    family: str
    lat: float
    lon: float
    observed_at: datetime


@dataclass(frozen=True)
class Extent:
    """An event as far as it is known: its family, centre and time span."""

    family: str
    lat: float
    lon: float
    first_seen: datetime
    last_seen: datetime


def distance_if_same_event(extent: Extent, sighting: Sighting) -> float | None:
    """The distance from the event's centre when the sighting belongs to the event, else None."""
    if not compatible(extent.family, sighting.family):
        return None
    if not (extent.first_seen - WINDOW <= sighting.observed_at <= extent.last_seen + WINDOW):
        return None
    distance = distance_m(extent.lat, extent.lon, sighting.lat, sighting.lon)
    return distance if distance <= MAX_DISTANCE_M else None


def same_event(a: Extent, b: Extent) -> bool:
    """Two fragments of one event (the merge pass): overlapping in time within the window, centres close."""
    return (
        compatible(a.family, b.family)
        and a.first_seen - WINDOW <= b.last_seen
        and b.first_seen - WINDOW <= a.last_seen
        and distance_m(a.lat, a.lon, b.lat, b.lon) <= MAX_DISTANCE_M
    )


T = TypeVar("T")


def nearest_event(candidates: Iterable[tuple[Extent, T]], sighting: Sighting) -> T | None:
    """Of the candidate events, the nearest one the sighting belongs to (None: a new event)."""
    best: tuple[float, T] | None = None
    for extent, item in candidates:
        distance = distance_if_same_event(extent, sighting)
        if distance is not None and (best is None or distance < best[0]):
            best = (distance, item)
    return best[1] if best else None


@dataclass(frozen=True)
class Spread:
    """Where an event's reports lie: their centre and the radius around it that holds them all."""

    lat: float
    lon: float
    radius_m: float


def spread_of(points: Sequence[tuple[float, float]]) -> Spread:
    """Centre (mean of the points; fine at the scale of an event) and the radius that holds every point."""
    lat = sum(p[0] for p in points) / len(points)
    lon = sum(p[1] for p in points) / len(points)
    return Spread(lat, lon, max(distance_m(lat, lon, p[0], p[1]) for p in points))


def normalise_text(text: str) -> str:
    """Words only, lower case: two texts that say the same in other punctuation or case compare equal."""
    return " ".join(re.findall(r"\w+", text.lower()))
