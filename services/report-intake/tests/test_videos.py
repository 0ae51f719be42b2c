"""Videos in the app's report API (issue #33): judged by their bytes like photos, the original kept unaltered with
its SHA-256, a poster and a playable copy without metadata stored beside it, and refusals that leave nothing."""

from __future__ import annotations

import hashlib
import io
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import av
from PIL import Image
from sqlalchemy import select

from burgermelding_shared.contracts import ReportSubmitted
from report_intake.config import IntakeSettings
from report_intake.models import Photo, messaging
from tests.helpers import make_jpeg, report_json
from tests.intake_support import post_report, stored_counts
from tests.videos import phone_clip

UTRECHT = (52.0907, 5.1214)


async def test_a_report_with_a_video_and_a_photo(intake: Any) -> None:
    started = datetime.now(UTC) - timedelta(minutes=3)
    clip = phone_clip(41, seconds=2.0, place=UTRECHT, recorded_at=started)
    photo = make_jpeg()
    response = await post_report(
        intake, report_json(), [("clip.mp4", clip, "application/octet-stream"), ("p.jpg", photo, "image/jpeg")]
    )
    assert response.status_code == 202, response.text
    created = response.json()
    view = (
        await intake.client.get(created["status_url"], headers={"Authorization": f"Bearer {created['access_token']}"})
    ).json()
    kinds = sorted((p["kind"], p["content_type"], p["duration_seconds"] or 0) for p in view["photos"])
    assert kinds == [("photo", "image/jpeg", 0), ("video", "video/mp4", 2.0)]
    async with intake.runtime.db.sessions() as session:
        video = (await session.execute(select(Photo).where(Photo.kind == "video"))).scalars().one()
        payloads = (await session.execute(select(messaging.outbox.c.payload))).scalars().all()
    # The original, byte for byte, under its digest; the poster and the playable copy beside it.
    assert video.sha256 == hashlib.sha256(clip).hexdigest() and intake.runtime.blobs.read_verified(video.sha256) == clip
    poster = Image.open(io.BytesIO(intake.runtime.blobs.read_verified(video.sanitised_sha256)))
    assert poster.format == "JPEG" and poster.size == (640, 360)
    playable = intake.runtime.blobs.read_verified(video.playable_sha256)
    assert video.playable_type == "video/mp4"
    with av.open(io.BytesIO(clip)) as container:
        assert "location" in container.metadata and "creation_time" in container.metadata
    with av.open(io.BytesIO(playable)) as container:
        assert not {"location", "creation_time"} & set(container.metadata)
        assert sum(1 for _ in container.decode(video=0)) == 60
    # Verification and the bridge are told it is a video, with its copies.
    sent = [ReportSubmitted.model_validate(json.loads(p)) for p in payloads if '"report_id"' in p]
    refs = [ref for message in sent for ref in message.photos if ref.kind == "video"]
    assert refs and all(r.playable_sha256 == video.playable_sha256 and r.duration_seconds == 2.0 for r in refs)
    # Nothing is left in the upload folder.
    assert (await stored_counts(intake))["uploads"] == 0


async def test_video_refusals_store_nothing(start_service: Any) -> None:
    intake = await start_service(
        "report_intake", IntakeSettings, max_videos_per_report=1, max_video_bytes=3_000_000, max_video_seconds=2.0
    )
    before = await stored_counts(intake)
    clip = phone_clip(42, seconds=1.0)

    async def refused(files: list[tuple[str, bytes, str]], key: str) -> dict[str, Any]:
        response = await post_report(intake, report_json(), files, key=key)
        assert 400 <= response.status_code < 500, response.text
        assert await stored_counts(intake) == before
        return {"status": response.status_code, **response.json()}

    two = await refused([("a.mp4", clip, "video/mp4"), ("b.mp4", clip, "video/mp4")], "key-videos-2")
    assert (two["status"], two["error"]) == (413, "too_many_videos") and two["detail_nl"]
    long_clip = phone_clip(43, seconds=3.0)
    too_long = await refused([("long.mp4", long_clip, "video/mp4")], "key-videos-long")
    assert (too_long["status"], too_long["error"]) == (413, "video_too_long")
    damaged = await refused([("cut.mp4", clip[: len(clip) // 2], "video/mp4")], "key-videos-cut")
    assert (damaged["status"], damaged["error"]) == (422, "video_unreadable")
    assert "bestand 1" in damaged["detail_nl"]
    # A video may be larger than a photo, but not than its own limit; a photo stays at the photo limit.
    big = phone_clip(44, seconds=2.0, size=(1280, 720)) + bytes(3_000_000)
    too_big = await refused([("big.mp4", big, "video/mp4")], "key-videos-big")
    assert (too_big["status"], too_big["error"]) == (413, "upload_too_large") and "video" in too_big["detail"]
