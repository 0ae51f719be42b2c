"""The geocoders: the offline gazetteer both ways, and PDOK's Locatieserver against a local server that answers in
its documented shape (Solr's `response.docs`, `centroide_ll` as WKT, `afstand` in metres)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from burgermelding_shared.geocoding import (
    GeocoderUnavailable,
    NearestAddress,
    OfflineGeocoder,
    PdokLocatieserver,
    distance_m,
)
from tests.pdok import Locatieserver


async def test_the_offline_gazetteer_finds_its_addresses_in_any_spelling_and_nothing_else() -> None:
    geocoder = OfflineGeocoder()
    for spelling in ("Domplein 29, Utrecht", "domplein 29 3512JE utrecht", "  DOMPLEIN 29,,UTRECHT "):
        place = await geocoder.locate(spelling)
        assert place is not None and place.label == "Domplein 29, 3512JE Utrecht", spelling
    assert await geocoder.locate("Domplein 30, Utrecht") is None
    assert await geocoder.locate("") is None


async def test_the_offline_gazetteer_describes_a_point_by_its_nearest_address_within_reach() -> None:
    geocoder = OfflineGeocoder()
    near = await geocoder.describe(52.0907, 5.1214)
    assert near is not None and near.label == "Domplein 29, 3512JE Utrecht" and near.distance_m < 10
    farther = await geocoder.describe(52.0957, 5.1214)  # about 550 m north
    assert farther is not None and 500 < farther.distance_m < 600
    assert await geocoder.describe(52.6, 5.5) is None  # nothing within 2 km: coordinates say more


def test_distance_is_right_at_city_scale() -> None:
    # Dam to Amsterdam Centraal: 0.00582 degree north (647 m) and 0.00774 east (0.00774 * 111.2 km * cos 52.4 =
    # 525 m): 833 m as the crow flies.
    assert 825 < distance_m(52.37308, 4.89253, 52.3789, 4.90027) < 840
    assert distance_m(52.0, 5.0, 52.0, 5.0) == 0


@pytest.fixture
def locatieserver() -> Iterator[Locatieserver]:
    server = Locatieserver()
    yield server
    server.stop()


async def test_pdok_locates_and_describes_with_its_own_parameters(locatieserver: Locatieserver) -> None:
    pdok = PdokLocatieserver(locatieserver.url)
    place = await pdok.locate("Coolsingel 40 Rotterdam")
    assert place is not None and (place.lat, place.lon) == (51.92291, 4.47933)
    path, query = locatieserver.asked[-1]
    assert path.endswith("/free") and query["fq"] == ["type:adres"] and query["rows"] == ["1"]
    assert await pdok.locate("Nergens 1") is None

    assert await pdok.describe(52.5, 4.5) == NearestAddress("Coolsingel 40, 3011AD Rotterdam", 12.5)
    path, query = locatieserver.asked[-1]
    assert path.endswith("/reverse") and query["type"] == ["adres"] and query["lat"] == ["52.500000"]
    assert await pdok.describe(53.5, 4.5) is None  # the nearest address is 5 km away: no help
    assert await pdok.describe(51.5, 4.5) is None  # none at all

    locatieserver.failing = True
    with pytest.raises(GeocoderUnavailable):
        await pdok.locate("Coolsingel 40 Rotterdam")
    with pytest.raises(GeocoderUnavailable):
        await pdok.describe(52.5, 4.5)
