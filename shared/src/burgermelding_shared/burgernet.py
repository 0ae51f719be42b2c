"""Burgernet: the police ask the citizens in an area, and their sightings come back into the incident.

What every service agrees on: an action's area (a circle or a polygon) and whether a place lies in it, the
action as the bridge publishes it to intake (which serves it to the apps as a JSON feed and as a CAP 1.2 alert),
and the link a sighting carries to its action. The phone decides whether it is inside the area: the server
publishes every action to every phone and never learns where one is.
"""

from __future__ import annotations

import hashlib
import itertools
import math
from datetime import UTC, datetime
from typing import Annotated, Literal
from xml.etree import ElementTree as ET

from pydantic import BaseModel, ConfigDict, Field, WithJsonSchema, model_validator

from burgermelding_shared.events import distance_m

ActionKind = Literal["action", "witness_call"]  # a live search now, or a call for witnesses of a past event


def is_live_search(kind: ActionKind) -> bool:
    """A live search (`action`): the person or vehicle sought may be near now, so an answer is urgent
    (`contracts.is_urgent`); a witness call asks about a past event."""
    return kind == "action"


LookingFor = Literal["person", "vehicle", "missing_child", "witnesses"]
ActionStatus = Literal["open", "closed", "cancelled"]
# found / arrested / called_off: a dispatcher closed it; expired: its deadline did (with the standard text);
# cancelled: a supervisor took it back.
Outcome = Literal["found", "arrested", "called_off", "expired", "cancelled"]

MAX_POLYGON_POINTS = 100
# A centre proposed for an area from an incident's place is rounded to this many decimals of a degree (about
# 110 m north-south and 70 m east-west here): with one witness the exact place is where that citizen stood,
# often their home, and the area is public.
PROPOSED_CENTRE_DECIMALS = 3
# A stated place within this of the area's edge still counts as inside: a phone's position is rarely exact.
EDGE_SLACK_M = 100.0


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Circle(_Strict):
    lat: float = Field(ge=-90, le=90)
    lon: float = Field(ge=-180, le=180)
    radius_m: float = Field(ge=50, le=50_000, description="50 m to 50 km")


# A point [lat, lon]: a tuple here (hashable, unpacked), in the documents a two-number array, which OpenAPI
# generators can use (a JSON Schema tuple, `prefixItems`, they cannot).
Point = Annotated[
    tuple[float, float],
    WithJsonSchema({"type": "array", "items": {"type": "number"}, "minItems": 2, "maxItems": 2}),
]


class Area(_Strict):
    """Exactly one of `circle` and `polygon` (points as [lat, lon], 3 to 100 of them, not closed: the last point
    joins the first)."""

    circle: Circle | None = None
    polygon: list[Point] | None = Field(None, min_length=3, max_length=MAX_POLYGON_POINTS)
    description: str | None = Field(None, max_length=200, description="in words, e.g. 'Utrecht, Binnenstad'")

    @model_validator(mode="after")
    def _one_shape(self) -> Area:
        if (self.circle is None) == (self.polygon is None):
            raise ValueError("give exactly one of circle and polygon")
        if self.polygon is not None:
            for lat, lon in self.polygon:
                if not (-90 <= lat <= 90 and -180 <= lon <= 180):
                    raise ValueError("a polygon point lies outside -90..90, -180..180")
            if len(set(self.polygon)) < 3:
                raise ValueError("a polygon needs three different points")
        return self

    def contains(self, lat: float, lon: float, slack_m: float = 0.0) -> bool:
        """Whether the place lies in the area, or within `slack_m` metres of its edge."""
        if self.circle is not None:
            return distance_m(lat, lon, self.circle.lat, self.circle.lon) <= self.circle.radius_m + slack_m
        assert self.polygon is not None
        return _in_polygon(self.polygon, lat, lon) or (
            slack_m > 0 and _edge_distance_m(self.polygon, lat, lon) <= slack_m
        )

    def centre(self) -> tuple[float, float]:
        if self.circle is not None:
            return self.circle.lat, self.circle.lon
        assert self.polygon is not None
        return (
            sum(p[0] for p in self.polygon) / len(self.polygon),
            sum(p[1] for p in self.polygon) / len(self.polygon),
        )

    def cap_shape(self) -> tuple[str, str]:
        """The area as CAP 1.2 writes it: ("circle", "lat,lon radius-km") or ("polygon", closed ring)."""
        if self.circle is not None:
            return "circle", f"{self.circle.lat:.6f},{self.circle.lon:.6f} {self.circle.radius_m / 1000:.3f}"
        assert self.polygon is not None
        ring = [*self.polygon, self.polygon[0]]
        return "polygon", " ".join(f"{lat:.6f},{lon:.6f}" for lat, lon in ring)


def proposed_centre(lat: float, lon: float) -> tuple[float, float]:
    """The centre to propose for a public area around a place: rounded to about 100 m (see
    PROPOSED_CENTRE_DECIMALS). A dispatcher may still draw an exact area on purpose."""
    return round(lat, PROPOSED_CENTRE_DECIMALS), round(lon, PROPOSED_CENTRE_DECIMALS)


def _in_polygon(points: list[tuple[float, float]], lat: float, lon: float) -> bool:
    """Even-odd ray casting on the plane of degrees: fine for areas of a town's size, away from the poles
    and the date line (the Netherlands)."""
    inside = False
    j = len(points) - 1
    for i, (lat_i, lon_i) in enumerate(points):
        lat_j, lon_j = points[j]
        if (lon_i > lon) != (lon_j > lon):
            crossing = lat_i + (lon - lon_i) * (lat_j - lat_i) / (lon_j - lon_i)
            if lat < crossing:
                inside = not inside
        j = i
    return inside


def _edge_distance_m(points: list[tuple[float, float]], lat: float, lon: float) -> float:
    """Distance to the nearest edge, on a local flat projection (metres per degree at this latitude)."""
    ky, kx = 111_320.0, 111_320.0 * math.cos(math.radians(lat))
    best = math.inf
    ring = [*points, points[0]]
    for (lat_a, lon_a), (lat_b, lon_b) in itertools.pairwise(ring):
        ax, ay = (lon_a - lon) * kx, (lat_a - lat) * ky
        bx, by = (lon_b - lon) * kx, (lat_b - lat) * ky
        dx, dy = bx - ax, by - ay
        length = dx * dx + dy * dy
        t = 0.0 if length == 0 else max(0.0, min(1.0, -(ax * dx + ay * dy) / length))
        best = min(best, math.hypot(ax + t * dx, ay + t * dy))
    return best


class ActionPhoto(_Strict):
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$", description="the sanitised copy's digest (no metadata)")
    content_type: Literal["image/jpeg"] = "image/jpeg"
    size_bytes: int = Field(ge=1)
    sha1: str = Field(pattern=r"^[0-9a-f]{40}$", description="for CAP's `digest`, which its spec makes SHA-1")


class PublishedAction(_Strict):
    """bridge -> intake: an action as the public may see it, again with every change (`version` grows). Nothing
    in it is about a citizen; the incident is named only by the action's own reference."""

    action_id: str = Field(max_length=36)
    reference: str = Field(max_length=32, description="e.g. BN-2026-000012")
    version: int = Field(ge=1)
    kind: ActionKind
    looking_for: LookingFor
    headline_nl: str = Field(max_length=160)
    headline_en: str = Field(max_length=160)
    description_nl: str = Field(max_length=2000)
    description_en: str = Field(max_length=2000)
    area: Area
    photo: ActionPhoto | None = None
    started_at: datetime
    closes_at: datetime = Field(description="when it closes by itself, with the standard text, if nobody closes it")
    window_start: datetime | None = Field(None, description="witness calls: the past window asked about")
    window_end: datetime | None = None
    status: ActionStatus
    outcome: Outcome | None = None
    closing_nl: str | None = Field(None, max_length=2000, description="the closing message, always once closed")
    closing_en: str | None = Field(None, max_length=2000)
    closed_at: datetime | None = None

    def asked_window(self) -> tuple[datetime, datetime]:
        """The time a sighting should fall in: a witness call's past window, or the action's own time."""
        if self.kind == "witness_call" and self.window_start and self.window_end:
            return self.window_start, self.window_end
        return self.started_at, self.closed_at or self.closes_at

    def is_open_at(self, moment: datetime) -> bool:
        return self.status == "open" and moment < self.closes_at

    def public(self) -> PublishedAction:
        """What the public may see: an open action whole; an ended one only with what it was (a generic
        headline), its area and its closing message. A found child's description and photo must not stay
        public for the day the feed keeps showing the closing message; the bridge keeps the police's record."""
        if self.status == "open":
            return self
        headline_nl, headline_en = EVENT_NAMES[self.looking_for]
        return self.model_copy(
            update={
                "headline_nl": headline_nl,
                "headline_en": headline_en,
                "description_nl": "",
                "description_en": "",
                "photo": None,
            }
        )


class AppealLink(_Strict):
    """What a sighting (or a witness's upload) carries of the action it answers: for verification to check
    its time and place against, and for the bridge to know which incident it updates and how urgently."""

    action_id: str = Field(max_length=36)
    reference: str = Field(max_length=32)
    kind: ActionKind
    area: Area
    window_start: datetime
    window_end: datetime

    @property
    def is_live_search(self) -> bool:
        """It answers a live search: a sighting is urgent (`contracts.is_urgent`) and reaches the meldkamer at
        once; a witness's account of a past event is ordinary news for the investigation."""
        return is_live_search(self.kind)


def link_of(action: PublishedAction) -> AppealLink:
    start, end = action.asked_window()
    return AppealLink(
        action_id=action.action_id,
        reference=action.reference,
        kind=action.kind,
        area=action.area,
        window_start=start,
        window_end=end,
    )


# ---- CAP 1.2 ----

CAP_NS = "urn:oasis:names:tc:emergency:cap:1.2"
CAP_CATEGORY = {"person": "Security", "vehicle": "Security", "missing_child": "Rescue", "witnesses": "Security"}
EVENT_NAMES = {  # (Dutch, English)
    "person": ("Burgernet: gezocht persoon", "Burgernet: person sought"),
    "vehicle": ("Burgernet: gezocht voertuig", "Burgernet: vehicle sought"),
    "missing_child": ("Burgernet: vermist kind", "Burgernet: missing child"),
    "witnesses": ("Burgernet: getuigen gezocht", "Burgernet: witnesses sought"),
}
INSTRUCTIONS = {  # (Dutch, English)
    "action": (
        "Ziet u iets? Bel direct 112 of stuur uw waarneming via de app. Ga niet zelf achter iemand aan.",
        "Do you see something? Call 112 at once or send your sighting with the app. Do not follow anyone yourself.",
    ),
    "witness_call": (
        "Was u in dit gebied in deze periode? Stuur via de app wat u zag en de foto's die u toen maakte.",
        "Were you in this area at that time? Send what you saw and the photos you took then, with the app.",
    ),
}


def cap_time(moment: datetime) -> str:
    """CAP's dateTime: seconds, an explicit offset, no fractions ("2026-12-06T10:00:00+00:00")."""
    return moment.astimezone(UTC).replace(microsecond=0).isoformat()


def cap_identifier(action: PublishedAction) -> str:
    return f"burgermelding.politie.nl-burgernet-{action.action_id}-v{action.version}"


def cap_alert(action: PublishedAction, sender: str, public_url: str, references: list[str] | None = None) -> bytes:
    """The action as an OASIS CAP 1.2 alert: msgType Alert for a new action, Update for a change or its closing
    message (responseType AllClear), Cancel when a supervisor took it back; Dutch and English info blocks."""

    def sub(parent: ET.Element, tag: str, text: str | None = None) -> ET.Element:
        element = ET.SubElement(parent, f"{{{CAP_NS}}}{tag}")
        if text is not None:
            element.text = text
        return element

    alert = ET.Element(f"{{{CAP_NS}}}alert")
    sub(alert, "identifier", cap_identifier(action))
    sub(alert, "sender", sender)
    sub(
        alert, "sent", cap_time(action.closed_at if action.status != "open" and action.closed_at else action.started_at)
    )
    sub(alert, "status", "Actual")
    msg_type = "Cancel" if action.status == "cancelled" else ("Update" if action.version > 1 else "Alert")
    sub(alert, "msgType", msg_type)
    sub(alert, "scope", "Public")
    if msg_type != "Alert" and references:
        sub(alert, "references", " ".join(references))
    shape, value = action.area.cap_shape()
    closed = action.status != "open"
    for language, index in (("nl-NL", 0), ("en-GB", 1)):
        info = sub(alert, "info")
        sub(info, "language", language)
        sub(info, "category", CAP_CATEGORY[action.looking_for])
        sub(info, "event", EVENT_NAMES[action.looking_for][index])
        sub(info, "responseType", "AllClear" if closed else "Monitor")
        sub(info, "urgency", "Past" if closed else ("Immediate" if action.kind == "action" else "Expected"))
        sub(info, "severity", "Moderate" if action.looking_for == "missing_child" else "Minor")
        sub(info, "certainty", "Observed")
        sub(info, "effective", cap_time(action.started_at))
        sub(info, "expires", cap_time(action.closed_at if closed and action.closed_at else action.closes_at))
        sub(info, "senderName", "Politie, Burgernet" if index == 0 else "Police, Burgernet")
        headline = action.headline_nl if index == 0 else action.headline_en
        description = action.description_nl if index == 0 else action.description_en
        if closed:  # the closing message alone: an ended action no longer describes whom it sought
            headline = ("Afgesloten: " if index == 0 else "Closed: ") + EVENT_NAMES[action.looking_for][index]
            description = (action.closing_nl if index == 0 else action.closing_en) or ""
        sub(info, "headline", headline[:160])
        sub(info, "description", description)
        if not closed:
            sub(info, "instruction", INSTRUCTIONS[action.kind][index])
        sub(info, "web", f"{public_url.rstrip('/')}/v1/burgernet/actions/{action.action_id}")
        for name, parameter in (
            ("burgernetActionId", action.action_id),
            ("burgernetReference", action.reference),
            ("burgernetKind", action.kind),
            ("burgernetStatus", action.status),
        ):
            param = sub(info, "parameter")
            sub(param, "valueName", name)
            sub(param, "value", parameter)
        if action.photo is not None and not closed:
            resource = sub(info, "resource")
            sub(resource, "resourceDesc", "Foto" if index == 0 else "Photo")
            sub(resource, "mimeType", action.photo.content_type)
            sub(resource, "size", str(action.photo.size_bytes))
            sub(resource, "uri", f"{public_url.rstrip('/')}/v1/burgernet/actions/{action.action_id}/photo")
            sub(resource, "digest", action.photo.sha1)
        area = sub(info, "area")
        sub(area, "areaDesc", action.area.description or ("Zoekgebied" if index == 0 else "Search area"))
        sub(area, shape, value)
    # The default namespace is given here, never registered: ElementTree's registry is one for the process, and
    # the bridge also writes PIDF-LO, whose own default namespace a registration here would take away.
    return ET.tostring(alert, encoding="utf-8", xml_declaration=True, default_namespace=CAP_NS)


def photo_digest_sha1(data: bytes) -> str:
    """CAP 1.2's `digest` is SHA-1 (by its spec), for integrity only, not for security."""
    return hashlib.sha1(data, usedforsecurity=False).hexdigest()
