"""Videos in the app's report API (issue #33): judged by their bytes like photos, the original kept unaltered with
its SHA-256, a poster and a playable copy without metadata stored beside it, and refusals that leave nothing."""

from __future__ import annotations

import asyncio
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
from report_intake.models import Photo, audit, messaging
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


async def test_an_iphone_hevc_video_gets_a_compatible_copy_after_the_202(intake: Any) -> None:
    """HEVC, what iPhones record by default, plays in Safari but not in every browser: the report goes on at
    once with the remuxed copy, and an H.264 copy (upright, without metadata, the sound kept) follows as the
    bridge's next revision. An H.264 video needs no such copy."""
    clip = phone_clip(44, seconds=2.0, codec="hevc", container="mov", phone="iphone", place=UTRECHT, rotation=90)
    response = await post_report(
        intake, report_json(), [("IMG_0001.MOV", clip, "video/quicktime"), ("b.mp4", phone_clip(45), "video/mp4")]
    )
    assert response.status_code == 202, response.text

    async def bridge_messages() -> list[ReportSubmitted]:
        async with intake.runtime.db.sessions() as session:
            rows = (
                await session.execute(
                    select(messaging.outbox.c.destination, messaging.outbox.c.payload).order_by(messaging.outbox.c.id)
                )  # as they were sent (PostgreSQL keeps no order of its own)
            ).all()
        return [ReportSubmitted.model_validate(json.loads(p)) for d, p in rows if "bridge" in d and '"report_id"' in p]

    first = (await bridge_messages())[0]  # sent with the 202, not waiting for the copy
    hevc = next(ref for ref in first.photos if ref.content_type == "video/quicktime")
    h264 = next(ref for ref in first.photos if ref.content_type == "video/mp4")
    assert (hevc.compatible, hevc.compatible_sha256) == ("pending", None)
    assert hevc.playable_codecs is not None and hevc.playable_codecs.startswith("hvc1.1.")
    assert h264.compatible is None and (h264.playable_codecs or "").startswith("avc1.")
    deadline = asyncio.get_running_loop().time() + 60
    while len(await bridge_messages()) < 2:
        assert asyncio.get_running_loop().time() < deadline, "no compatible copy within a minute"
        await asyncio.sleep(0.2)
    latest = (await bridge_messages())[-1]
    ref = next(r for r in latest.photos if r.photo_id == hevc.photo_id)
    assert latest.revision == first.revision + 1 and ref.compatible == "ready" and ref.compatible_sha256
    copy = intake.runtime.blobs.read_verified(ref.compatible_sha256)
    with av.open(io.BytesIO(copy)) as container:
        video = container.streams.video[0]
        assert video.codec_context.name == "h264" and (video.width, video.height) == (360, 640)  # upright
        assert [s.type for s in container.streams] == ["video", "audio"]
        assert not {"location", "creation_time", "com.apple.quicktime.location.iso6709"} & set(container.metadata)
        assert sum(1 for _ in container.decode(video=0)) == 60
    async with intake.runtime.db.sessions() as session:
        stored = await session.get(Photo, hevc.photo_id)
        entries = (
            await session.execute(select(audit.entries).where(audit.entries.c.action == "photo.compatible_copy"))
        ).all()
    assert stored is not None and stored.compatible_sha256 == ref.compatible_sha256 and len(entries) == 1
    assert (await stored_counts(intake))["uploads"] == 0
