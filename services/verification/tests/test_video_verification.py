"""Verification of videos on real clips made with PyAV (issue #33): container time and place checked against the
report like a photo's EXIF, with the words of a video; a re-upload or a trimmed copy found by its frames (vPDQ),
called recycled far away and the same event close by; a video that cannot be read fails like a photo."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tests.verification_support import result, submission, submit
from tests.videos import phone_clip, re_encoded
from verification.config import VerificationSettings

HERE = {"lat": 52.0907, "lon": 5.1214}
KM_EAST = 1 / (111.32 * 0.6143)  # degrees of longitude per km at this latitude


@pytest.fixture
async def verification(start_service: Callable[..., Any]) -> Any:
    return await start_service(
        "verification", VerificationSettings, workers=1, bridge_url="http://127.0.0.1:9", group_merge_seconds=3600
    )


async def verify(service: Any, media: list[bytes], **overrides: Any) -> dict[str, Any]:
    report = submission(service, media, **overrides)
    assert (await submit(service, report)).status_code == 202
    return await result(service, report.report_id)


def checks_of(outcome: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {c["code"]: c for p in outcome["photos"] for c in p["checks"]}


async def test_a_video_recorded_there_and_then_passes_its_checks(verification: Any) -> None:
    now = datetime.now(UTC)
    clip = phone_clip(51, seconds=3.0, place=(HERE["lat"], HERE["lon"]), recorded_at=now - timedelta(minutes=4))
    outcome = await verify(verification, [clip], location=HERE, observed_at=now - timedelta(minutes=3))
    checks = checks_of(outcome)
    assert {code: c["outcome"] for code, c in checks.items()} == {
        "video_decodes": "pass",
        "capture_time_plausible": "pass",
        "gps_matches_claim": "pass",
    }
    assert "video" in checks["gps_matches_claim"]["detail_en"] and "video" in checks["gps_matches_claim"]["detail_nl"]
    assert outcome["verdict"] == "forward"
    photo = outcome["photos"][0]
    assert (photo["width"], photo["height"]) == (640, 360) and photo["gps"]["lat"] == pytest.approx(HERE["lat"])


async def test_an_old_video_from_elsewhere_is_called_so_in_a_videos_words(verification: Any) -> None:
    now = datetime.now(UTC)
    far = (HERE["lat"], HERE["lon"] + 30 * KM_EAST)
    clip = phone_clip(52, seconds=2.0, phone="iphone", container="mov", place=far, recorded_at=now - timedelta(days=3))
    checks = checks_of(await verify(verification, [clip], location=HERE, observed_at=now))
    assert checks["old_photo"]["outcome"] == "warn"
    assert checks["old_photo"]["detail_en"] == "The video was recorded about 3 days before the reported time."
    assert checks["old_photo"]["detail_nl"] == "De video is ongeveer 3 dagen voor het gemelde tijdstip opgenomen."
    assert checks["gps_far_from_claim"]["outcome"] == "warn" and "30.0 km" in checks["gps_far_from_claim"]["detail_en"]


async def test_a_video_without_metadata_says_so_without_a_penalty(verification: Any) -> None:
    outcome = await verify(verification, [phone_clip(53, seconds=2.0, codec="vp9", container="webm")])
    assert checks_of(outcome)["metadata_missing"]["outcome"] == "not_applicable"
    assert outcome["verdict"] == "forward"


async def test_a_passed_on_or_trimmed_recording_is_found_by_its_frames(verification: Any) -> None:
    original = phone_clip(54, seconds=8.0)
    first = await verify(verification, [original], location=HERE)
    # Passed on nearby, encoded again smaller: the same event.
    again = await verify(verification, [re_encoded(original, size=(480, 270))], location=HERE)
    assert again["near_duplicate_of_reports"] == [first["report_id"]]
    near = checks_of(again)["near_duplicate"]
    assert near["outcome"] == "not_applicable" and "the same recording" in near["detail_en"]
    # A trimmed part of it, 30 km away: recycled.
    far = {"lat": HERE["lat"], "lon": HERE["lon"] + 30 * KM_EAST}
    trimmed = await verify(verification, [re_encoded(original, start=2.0, end=5.0)], location=far)
    assert first["report_id"] in trimmed["near_duplicate_of_reports"]
    recycled = checks_of(trimmed)["recycled_image"]
    assert (
        recycled["outcome"] == "warn"
        and "trimmed part" in recycled["detail_en"]
        and "ingekort" in recycled["detail_nl"]
    )
    # Another recording is not.
    other = await verify(verification, [phone_clip(55, seconds=8.0)], location=HERE)
    assert other["near_duplicate_of_reports"] == [] and "near_duplicate" not in checks_of(other)
    # The very same file is an exact duplicate, as for photos.
    same = await verify(verification, [original], location=HERE)
    assert first["report_id"] in same["duplicate_of_reports"]


async def test_a_video_that_cannot_be_read_fails_like_a_photo(verification: Any) -> None:
    clip = phone_clip(56, seconds=2.0)
    outcome = await verify(verification, [clip[: len(clip) // 3]])
    assert checks_of(outcome)["video_undecodable"]["outcome"] == "fail"
    assert outcome["verdict"] != "forward"
