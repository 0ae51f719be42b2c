"""A report's photos and videos: checked and sanitised off the event loop, stored by digest, recorded."""

from __future__ import annotations

import asyncio
import functools
import logging
import uuid
from collections.abc import Callable

from sqlalchemy.ext.asyncio import AsyncSession

from burgermelding_shared.app import Runtime
from burgermelding_shared.blobstore import BlobStore, BlobStoreUnavailable
from burgermelding_shared.images import check_photo
from burgermelding_shared.slots import PriorityExecutor
from burgermelding_shared.timeutil import utcnow
from burgermelding_shared.videos import CheckedMedia, CheckedVideo, VideoLimits, check_video
from report_intake.config import IntakeSettings
from report_intake.models import (
    DisplayState,
    Photo,
    digests_in_use,
    display_of,
    kind_of,
)
from report_intake.records import audit
from report_intake.schemas import (
    PhotoSummary,
)
from report_intake.uploads import UploadedForm

log = logging.getLogger(__name__)


async def check_photos(runtime: Runtime, form: UploadedForm, urgent: bool = False) -> list[CheckedMedia]:
    """Check every file off the event loop, one per core at a time, urgent reports' first: a photo is decoded
    and sanitised, a video read in its limited child (a poster and a playable copy without metadata). Which one
    a file is, its first bytes decided as it arrived (uploads.judge_head)."""
    settings: IntakeSettings = runtime.settings
    work: PriorityExecutor = runtime.extras["photo_work"]
    checked: list[CheckedMedia] = []
    for i, f in enumerate(form.files):
        if f.is_video:
            limits = VideoLimits(max_bytes=settings.max_video_bytes, max_seconds=settings.max_video_seconds)
            video = await work.run(
                urgent,
                check_video,
                f.path,
                limits=limits,
                poster_max_side=settings.display_max_side,
                index=i,
            )
            form.also_remove(video.playable_path)  # until the store has taken it
            checked.append(video)
        else:
            checked.append(
                await work.run(
                    urgent,
                    check_photo,
                    f.path,
                    max_pixels=settings.max_image_pixels,
                    display_max_side=settings.display_max_side,
                    index=i,
                )
            )
    return checked


async def store_photo_blobs(runtime: Runtime, photos: list[CheckedMedia]) -> list[str]:
    """Put originals and display copies (a video's poster, and its playable copy) in the blob store; returns
    the digests this call added. An original is moved there from its upload file (hashed and checked in
    `check_photo` or `check_video`), not read and copied again; so is a video's playable copy."""
    added: list[str] = []
    for photo in photos:
        store = runtime.blobs
        blobs: list[tuple[str, Callable[[], object]]] = [
            (photo.sha256, functools.partial(store.adopt_file, photo.path, photo.sha256))
        ]
        if photo.display_jpeg is not None and photo.display_sha256 is not None:  # else made after the 202
            blobs.append((photo.display_sha256, functools.partial(store.put_bytes, photo.display_jpeg)))
        if isinstance(photo, CheckedVideo):
            playable = functools.partial(store.adopt_file, photo.playable_path, photo.playable_sha256)
            blobs.append((photo.playable_sha256, playable))
        for digest, put in blobs:
            try:
                if await asyncio.to_thread(put_if_new, runtime.blobs, digest, put):
                    added.append(digest)
            except BaseException:
                await remove_blobs(runtime, added)  # the photos before this one: nothing half-stored remains
                raise
    return added


def put_if_new(store: BlobStore, digest: str, put: Callable[[], object]) -> bool:
    """Store a blob unless the store has it (another report's photo); True if this call added it. Blocking
    (the store may be across the network): run it in a worker thread."""
    if store.exists(digest):
        return False
    put()
    return True


def wake_display_copies(runtime: Runtime, photos: list[CheckedMedia]) -> None:
    """After a commit that left display copies (or a video's compatible copy) to make: start on them now, not at
    the next poll."""
    loop = runtime.extras.get("display_copies")
    later = any(p.display_jpeg is None or (isinstance(p, CheckedVideo) and p.needs_compatible_copy) for p in photos)
    if loop is not None and later:
        loop.wake()


async def remove_blobs(runtime: Runtime, digests: list[str]) -> None:
    """Undo `store_photo_blobs` for a request that failed: nothing half-stored remains. A photo is content-
    addressed, so another request (on any replica) may have stored the same one for a report it committed:
    a digest a stored photo points at is kept. (Left open: that other request committing after this check.)"""
    if not digests:
        return
    async with runtime.db.sessions() as session:
        kept = await digests_in_use(session, set(digests))
    for digest in (d for d in digests if d not in kept):
        try:
            await asyncio.to_thread(runtime.blobs.delete, digest)
        except BlobStoreUnavailable:  # the store is down: an unreferenced photo stays, no report points at it
            log.warning("could not remove photo %s of a failed request", digest)


def add_photo_rows(session: AsyncSession, report_id: str, photos: list[CheckedMedia]) -> None:
    """The photos' and videos' rows, and the first entry of each one's custody (hash, size, time) in the audit
    chain."""
    now = utcnow()
    for checked in photos:
        video = checked if isinstance(checked, CheckedVideo) else None
        photo = Photo(
            id=str(uuid.uuid4()),
            report_id=report_id,
            sha256=checked.sha256,
            sanitised_sha256=checked.display_sha256,
            display_state=DisplayState.READY if checked.display_jpeg is not None else DisplayState.PENDING,
            content_type=checked.content_type,
            size_bytes=checked.size_bytes,
            width=checked.width,
            height=checked.height,
            received_at=now,
            kind=checked.kind,
            playable_sha256=video.playable_sha256 if video else None,
            playable_type=video.playable_type if video else None,
            playable_codecs=video.playable_codecs if video else None,
            duration_ms=round(video.facts.duration_seconds * 1000) if video else None,
            compatible_state=DisplayState.PENDING if video and video.needs_compatible_copy else None,
        )
        session.add(photo)
        audit.record_photo_received(session, report_id, photo)


def photo_summary(photo: Photo) -> PhotoSummary:
    return PhotoSummary(
        id=photo.id,
        content_type=photo.content_type,
        width=photo.width,
        height=photo.height,
        display=display_of(photo),
        kind=kind_of(photo),
        duration_seconds=photo.duration_ms / 1000 if photo.duration_ms is not None else None,
    )
