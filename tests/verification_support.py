"""Helpers for verification's tests: submit a report as intake would, and wait for its result."""

from __future__ import annotations

import asyncio
import json
import tempfile
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from burgermelding_shared.contracts import PhotoRef, ReportSubmitted
from burgermelding_shared.errors import ServiceError
from burgermelding_shared.images import check_photo
from burgermelding_shared.service_auth import development_key
from burgermelding_shared.videos import VideoLimits, check_video, sniff_video_type
from verification.models import VerificationJob


def display_copy(service: Any, data: bytes) -> tuple[str, str, int, int]:
    """What intake stores beside an original: (display copy's digest, type, width, height), made by intake's own
    code. Data intake would refuse (the tests of undecodable photos send it anyway) gets the original as its
    "display copy", so verification meets it as it is."""
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "upload"
        path.write_bytes(data)
        try:
            checked = check_photo(path, max_pixels=50_000_000, display_max_side=2048, index=0)
        except ServiceError:
            return service.runtime.blobs.put_bytes(data), "image/jpeg", 640, 480
    return service.runtime.blobs.put_bytes(checked.display_jpeg), checked.content_type, checked.width, checked.height


def video_ref(service: Any, data: bytes) -> PhotoRef | None:
    """A video as intake passes it on (its poster and playable copy made by intake's own check), or None for
    something that is not a video. A video intake would refuse is passed on as it is, for verification to meet."""
    if sniff_video_type(data[:64]) is None:
        return None
    digest = service.runtime.blobs.put_bytes(data)
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "upload"
        path.write_bytes(data)
        try:
            video = check_video(path, limits=VideoLimits(), poster_max_side=2048)
        except ServiceError:
            return PhotoRef(
                photo_id=str(uuid.uuid4()), sha256=digest, sanitised_sha256=None, display="unreadable",
                content_type="video/mp4", size_bytes=len(data), width=1, height=1, kind="video",
            )  # fmt: skip
        return PhotoRef(
            photo_id=str(uuid.uuid4()),
            sha256=digest,
            sanitised_sha256=service.runtime.blobs.put_bytes(video.display_jpeg),
            content_type=video.content_type,
            size_bytes=len(data),
            width=video.width,
            height=video.height,
            kind="video",
            playable_sha256=service.runtime.blobs.put_file(video.playable_path),
            playable_type=video.playable_type,
            duration_seconds=video.facts.duration_seconds,
        )


def submission(service: Any, photos: list[bytes], **overrides: Any) -> ReportSubmitted:
    refs = []
    for data in photos:
        video = video_ref(service, data)
        if video is not None:
            refs.append(video)
            continue
        digest = service.runtime.blobs.put_bytes(data)
        display, content_type, width, height = display_copy(service, data)
        refs.append(
            PhotoRef(
                photo_id=str(uuid.uuid4()),
                sha256=digest,
                sanitised_sha256=display,
                content_type=content_type,
                size_bytes=len(data),
                width=width,
                height=height,
            )
        )
    now = datetime.now(UTC)
    values = {
        "report_id": str(uuid.uuid4()),
        "reference": "BM-2026-000001",
        "category": "theft",
        "description": "fiets gestolen",
        "location": {"lat": 52.09, "lon": 5.12},
        "observed_at": now,
        "received_at": now,
        "in_progress": False,
        "photos": refs,
        **overrides,
    }
    return ReportSubmitted(**values)


async def submit(service: Any, report: ReportSubmitted, message_id: str | None = None) -> Any:
    token = development_key("report-intake").issue("verification")
    return await service.client.post(
        "/internal/v1/jobs",
        content=report.model_dump_json(),
        headers={
            "Authorization": f"Bearer {token}",
            "content-type": "application/json",
            "Idempotency-Key": message_id or str(uuid.uuid4()),
        },
    )


async def result(service: Any, report_id: str) -> dict[str, Any]:
    for _ in range(600):  # bounded wait for the worker process; not a timing assertion
        async with service.runtime.db.sessions() as session:
            job = await session.get(VerificationJob, f"{report_id}:0")
        if job is not None and job.status == "done":
            return json.loads(job.result)
        await asyncio.sleep(0.05)
    raise AssertionError("job not done")
