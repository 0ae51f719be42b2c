"""Answers to a Burgernet action or witness call against the asked window and area: the photo's own capture time
and place first, the stated ones when no photo says, with reasons in Dutch and English."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from burgermelding_shared.burgernet import AppealLink, Area
from burgermelding_shared.contracts import PhotoVerification
from verification.checks import Claim, appeal_checks

START = datetime(2026, 11, 28, 21, 0, tzinfo=UTC)  # Saturday 22:00 Dutch time
CALL = AppealLink(
    action_id="call",
    reference="BN-2026-000002",
    kind="witness_call",
    area=Area(circle={"lat": 52.0906, "lon": 5.1160, "radius_m": 300}),
    window_start=START,
    window_end=START + timedelta(hours=1),
)
STREET = {"lat": 52.0907, "lon": 5.1162}


def claim(at: datetime = START + timedelta(minutes=30), lat: float = 52.0906, lon: float = 5.1160) -> Claim:
    return Claim(observed_at=at, received_at=START + timedelta(days=1), lat=lat, lon=lon, accuracy_m=10)


def photo(**fields: object) -> PhotoVerification:
    return PhotoVerification(photo_id="p", sha256="0" * 64, **fields)


def codes(results: list) -> set[str]:
    return {r.code for r in results}


def test_a_photo_inside_the_window_and_area_matches() -> None:
    results, match = appeal_checks(CALL, claim(), [photo(captured_at=START + timedelta(minutes=20), gps=STREET)])
    assert match == "matching"
    assert {"appeal_photo_time_matches", "appeal_photo_place_matches"} <= codes(results)
    assert all(r.weight == 0 for r in results)  # relevance, not authenticity: the score is not touched


def test_a_photo_a_day_earlier_does_not_match_whatever_the_witness_says() -> None:
    results, match = appeal_checks(CALL, claim(), [photo(captured_at=START - timedelta(days=1), gps=STREET)])
    assert match == "not_matching"
    outside = next(r for r in results if r.code == "appeal_photo_time_outside")
    assert "1 day(s) before" in outside.detail_en and "1 dag(en) ervoor" in outside.detail_nl
    assert "2026-11-27 22:00" in outside.detail_en  # shown in Dutch time


def test_a_capture_time_without_offset_is_read_as_dutch_time_and_says_so() -> None:
    # 22:30 on the camera's clock in Amsterdam is 21:30 UTC: inside. Read as UTC it would have been outside.
    results, match = appeal_checks(CALL, claim(), [photo(captured_local=datetime(2026, 11, 28, 22, 30), gps=STREET)])
    assert match == "matching"
    assert "read as Dutch time" in next(r for r in results if r.code == "appeal_photo_time_matches").detail_en


def test_a_photo_taken_elsewhere_and_answers_without_metadata() -> None:
    _, match = appeal_checks(
        CALL, claim(), [photo(captured_at=START + timedelta(minutes=5), gps={"lat": 52.37, "lon": 4.89})]
    )
    assert match == "not_matching"
    results, match = appeal_checks(CALL, claim(), [photo()])  # stripped by a messenger: the stated time counts
    assert match == "matching" and {"appeal_photo_time_unknown", "appeal_photo_place_unknown"} <= codes(results)
    _, match = appeal_checks(CALL, claim(at=START + timedelta(hours=3)), [])
    assert match == "not_matching"
    _, match = appeal_checks(CALL, claim(lat=52.1000), [])
    assert match == "not_matching"
