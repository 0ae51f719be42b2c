"""Addresses to places and back: a pluggable geocoder, PDOK's Locatieserver in production, a fixed gazetteer
offline.

A citizen or an integrator may name a place by its address only (Open311's `address_string`); the meldkamer needs
coordinates. `Geocoder.locate` gives the place an address names, or None when it names none we can find: the
caller then refuses the request with a clear reason rather than guessing. `Geocoder.describe` goes the other way,
for a dispatcher who reads "Domplein 29, Utrecht" faster than coordinates: the nearest address, and how far it
is from the point (None when there is none near enough to help). Which geocoder runs is a setting
(`geocoder_for`): PDOK's Locatieserver (the Dutch government's free address service, run on the BAG) on a
deployment with internet access, the offline gazetteer where there is none (the embedded default, and tests,
which need the same answer every time).
"""

from __future__ import annotations

import math
import re
import unicodedata
from dataclasses import dataclass
from typing import Literal, Protocol

import httpx

PDOK_LOCATIESERVER = "https://api.pdok.nl/bzk/locatieserver/search/v3_1"
GeocoderKind = Literal["offline", "pdok"]


@dataclass(frozen=True)
class Place:
    lat: float
    lon: float
    label: str  # the address as the geocoder writes it: "Domplein 29, 3512JE Utrecht"


class GeocoderUnavailable(Exception):
    """The geocoder could not be asked (down, slow, an answer we cannot read): not the same as "not found"."""


@dataclass(frozen=True)
class NearestAddress:
    label: str  # "Domplein 29, 3512JE Utrecht"
    distance_m: float  # from the point asked about


class Geocoder(Protocol):
    async def locate(self, address: str) -> Place | None: ...

    async def describe(self, lat: float, lon: float) -> NearestAddress | None: ...


def distance_m(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Metres between two points (haversine; plenty for a city)."""
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * 6_371_000 * math.asin(math.sqrt(a))


# Farther than this from any address, a description by address would mislead more than coordinates.
MAX_DESCRIBE_METRES = 2000.0


def normalised(address: str) -> str:
    """Lower case, accents and punctuation gone, single spaces: "Domplein 29,  Utrecht" -> "domplein 29 utrecht"."""
    plain = unicodedata.normalize("NFKD", address).encode("ascii", "ignore").decode()
    return " ".join(re.sub(r"[^a-z0-9]+", " ", plain.lower()).split())


# Well-known public addresses with their BAG coordinates: enough for a developer and the tests to place a report
# by address without a network. Anything else is "not found".
GAZETTEER = [
    Place(52.090737, 5.121420, "Domplein 29, 3512JE Utrecht"),
    Place(52.088950, 5.110220, "Stationsplein 1, 3511ED Utrecht"),
    Place(52.373080, 4.892530, "Dam 1, 1012JS Amsterdam"),
    Place(52.378900, 4.900270, "Stationsplein 1, 1012AB Amsterdam"),
    Place(51.922910, 4.479330, "Coolsingel 40, 3011AD Rotterdam"),
    Place(52.080260, 4.313870, "Binnenhof 1, 2513AA Den Haag"),
    Place(51.441640, 5.478540, "Stationsplein 17, 5611AC Eindhoven"),
    Place(53.219380, 6.566500, "Grote Markt 1, 9712HN Groningen"),
]


class OfflineGeocoder:
    """The fixed gazetteer: an address matches when, normalised, it is a place's label with or without its
    postcode ("Domplein 29, Utrecht", "domplein 29 3512JE utrecht"). Deterministic, no network."""

    def __init__(self, places: list[Place] | None = None) -> None:
        self._index: dict[str, Place] = {}
        for place in places if places is not None else GAZETTEER:
            street, _, town = place.label.partition(", ")
            postcode, _, city = town.partition(" ")
            for form in (place.label, f"{street} {city}", f"{street} {postcode} {city}"):
                self._index[normalised(form)] = place

        self._places = list(dict.fromkeys(self._index.values()))

    async def locate(self, address: str) -> Place | None:
        return self._index.get(normalised(address))

    async def describe(self, lat: float, lon: float) -> NearestAddress | None:
        """The nearest place of the gazetteer, if one is within MAX_DESCRIBE_METRES (ties: the first listed)."""
        nearest = min(
            ((distance_m(lat, lon, p.lat, p.lon), p) for p in self._places), key=lambda pair: pair[0], default=None
        )
        if nearest is None or nearest[0] > MAX_DESCRIBE_METRES:
            return None
        return NearestAddress(nearest[1].label, round(nearest[0], 1))


class PdokLocatieserver:
    """PDOK's Locatieserver `free` search, the best address only (`fq=type:adres`). Its answer is Solr's:
    `{"response": {"numFound": n, "docs": [{"weergavenaam": ..., "centroide_ll": "POINT(lon lat)"}]}}`."""

    def __init__(self, base_url: str = PDOK_LOCATIESERVER, timeout_seconds: float = 3.0) -> None:
        self.base_url = base_url.rstrip("/")
        self.timeout_seconds = timeout_seconds

    async def locate(self, address: str) -> Place | None:
        params = {"q": address, "fq": "type:adres", "rows": "1", "fl": "weergavenaam,centroide_ll"}
        try:
            async with httpx.AsyncClient(timeout=self.timeout_seconds, follow_redirects=False) as client:
                response = await client.get(f"{self.base_url}/free", params=params)
            response.raise_for_status()
            docs = response.json()["response"]["docs"]
        except (httpx.HTTPError, ValueError, KeyError, TypeError) as exc:
            raise GeocoderUnavailable(f"PDOK Locatieserver: {exc}") from exc
        if not docs:
            return None
        match = re.fullmatch(r"POINT\(\s*([-\d.]+)\s+([-\d.]+)\s*\)", str(docs[0].get("centroide_ll", "")))
        if match is None:
            raise GeocoderUnavailable(f"PDOK Locatieserver: no point in {docs[0]!r}")
        return Place(lat=float(match.group(2)), lon=float(match.group(1)), label=str(docs[0].get("weergavenaam", "")))

    async def describe(self, lat: float, lon: float) -> NearestAddress | None:
        """The Locatieserver's `reverse`: the nearest address (`type=adres`), with its distance (`afstand`)."""
        params = {"lat": f"{lat:.6f}", "lon": f"{lon:.6f}", "type": "adres", "rows": "1", "fl": "weergavenaam,afstand"}
        try:
            async with httpx.AsyncClient(timeout=self.timeout_seconds, follow_redirects=False) as client:
                response = await client.get(f"{self.base_url}/reverse", params=params)
            response.raise_for_status()
            docs = response.json()["response"]["docs"]
            if not docs:
                return None
            distance = float(docs[0].get("afstand", 0.0))
            label = str(docs[0]["weergavenaam"])
        except (httpx.HTTPError, ValueError, KeyError, TypeError) as exc:
            raise GeocoderUnavailable(f"PDOK Locatieserver: {exc}") from exc
        return NearestAddress(label, distance) if distance <= MAX_DESCRIBE_METRES else None


def geocoder_for(kind: GeocoderKind, pdok_url: str = PDOK_LOCATIESERVER) -> Geocoder:
    if kind == "pdok":
        return PdokLocatieserver(pdok_url)
    return OfflineGeocoder()
