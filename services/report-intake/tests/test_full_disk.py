"""A full photo disk (a real, size-limited filesystem): reports are refused with a retryable 503, nothing is half
stored, and the same request succeeds once there is room again."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from report_intake.config import IntakeSettings
from tests.filesystems import fill, small_filesystem
from tests.helpers import gps_tags, make_jpeg, phone_photo, report_json
from tests.intake_support import post_report, stored_counts


async def test_a_full_photo_disk_refuses_with_503_stores_nothing_and_a_retry_succeeds_later(
    start_service: Callable[..., Any], tmp_path: Path
) -> None:
    with small_filesystem(tmp_path / "photos", size_mb=8) as disk:
        intake = await start_service("report_intake", IntakeSettings, blob_dir=disk / "blobs")
        photo = make_jpeg(1600, 1200, pattern=3, gps=gps_tags(52.09, 5.12))
        filler = fill(disk, leave_bytes=len(photo) // 3)  # room for part of the upload, not for all of it
        before = await stored_counts(intake)
        for attempt in range(2):
            refused = await post_report(intake, report_json(), [("p.jpg", photo, "image/jpeg")], key="full-disk-01")
            assert refused.status_code == 503, (attempt, refused.text)
            assert refused.json()["error"] == "storage_unavailable" and refused.headers["Retry-After"]
            assert refused.json()["detail_nl"]
            assert await stored_counts(intake) == before  # no report, no key, no blob, no upload left behind
        assert (await intake.client.get("/healthz")).status_code == 200

        filler.unlink()  # an operator makes room; the phone retries with the same key
        accepted = await post_report(intake, report_json(), [("p.jpg", photo, "image/jpeg")], key="full-disk-01")
        assert accepted.status_code == 202, accepted.text
        after = await stored_counts(intake)
        assert (after["reports"], after["photos"], after["uploads"]) == (1, 1, 0)
        assert after["blobs"] == 2  # the original and its display copy


async def test_a_disk_that_fills_after_the_upload_is_the_stores_fault_not_the_photos(
    start_service: Callable[..., Any], tmp_path: Path
) -> None:
    """The upload fits, its display copy does not: 503 storage_unavailable, never 422 photo_unreadable (the
    citizen's photo is fine, and their app would otherwise give up on it)."""
    with small_filesystem(tmp_path / "photos", size_mb=8) as disk:
        intake = await start_service("report_intake", IntakeSettings, blob_dir=disk / "blobs")
        photo = phone_photo(55, 52.09, 5.12)  # camera-like grain: its display copy is hundreds of KB
        (disk / "blobs").mkdir(exist_ok=True)
        (disk / "uploads").mkdir(exist_ok=True)
        filler = fill(disk, leave_bytes=len(photo) + 16384)
        before = await stored_counts(intake)
        refused = await post_report(intake, report_json(), [("p.jpg", photo, "image/jpeg")], key="full-disk-02")
        assert refused.status_code == 503, refused.text
        assert refused.json()["error"] == "storage_unavailable"
        assert await stored_counts(intake) == before
        filler.unlink()
        accepted = await post_report(intake, report_json(), [("p.jpg", photo, "image/jpeg")], key="full-disk-02")
        assert accepted.status_code == 202, accepted.text
