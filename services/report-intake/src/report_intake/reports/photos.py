"""A report's photos: checked and sanitised off the event loop, stored by digest, recorded."""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Callable

from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from burgermelding_shared.app import Runtime
from burgermelding_shared.blobstore import BlobStore, BlobStoreUnavailable
from burgermelding_shared.images import CheckedPhoto, check_photo
from burgermelding_shared.slots import PriorityExecutor
from burgermelding_shared.timeutil import utcnow
from report_intake.config import IntakeSettings
from report_intake.models import (
    DisplayState,
    Photo,
    display_of,
)
from report_intake.records import audit
from report_intake.schemas import (
    PhotoSummary,
)
from report_intake.uploads import UploadedForm

log = logging.getLogger(__name__)


async def check_photos(runtime: Runtime, form: UploadedForm, urgent: bool = False) -> list[CheckedPhoto]:
    """Decode and sanitise every photo off the event loop, one per core at a time, urgent reports' first."""
    settings: IntakeSettings = runtime.settings
    work: PriorityExecutor = runtime.extras["photo_work"]
    return [
        await work.run(
            urgent,
            check_photo,
            f.path,
            max_pixels=settings.max_image_pixels,
            display_max_side=settings.display_max_side,
            index=i,
        )
        for i, f in enumerate(form.files)
    ]


async def store_photo_blobs(runtime: Runtime, photos: list[CheckedPhoto]) -> list[str]:
    """Put originals and display copies in the blob store; returns the digests this call added. An original
    is moved there from its upload file (hashed and checked in `check_photo`), not read and copied again."""
    added: list[str] = []
    for photo in photos:
        blobs = [(photo.sha256, lambda p=photo: runtime.blobs.adopt_file(p.path, p.sha256))]
        if photo.display_jpeg is not None and photo.display_sha256 is not None:  # else made after the 202
            blobs.append((photo.display_sha256, lambda p=photo: runtime.blobs.put_bytes(p.display_jpeg)))
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


def wake_display_copies(runtime: Runtime, photos: list[CheckedPhoto]) -> None:
    """After a commit that left display copies to make: start on them now, not at the next poll."""
    loop = runtime.extras.get("display_copies")
    if loop is not None and any(p.display_jpeg is None for p in photos):
        loop.wake()


async def remove_blobs(runtime: Runtime, digests: list[str]) -> None:
    """Undo `store_photo_blobs` for a request that failed: nothing half-stored remains. A photo is content-
    addressed, so another request (on any replica) may have stored the same one for a report it committed:
    a digest a stored photo points at is kept. (Left open: that other request committing after this check.)"""
    if not digests:
        return
    async with runtime.db.sessions() as session:
        kept = set((await session.execute(select(Photo.sha256).where(col(Photo.sha256).in_(digests)))).scalars())
        kept |= {
            digest
            for digest in (
                await session.execute(
                    select(col(Photo.sanitised_sha256)).where(col(Photo.sanitised_sha256).in_(digests))
                )
            ).scalars()
            if digest is not None
        }
    for digest in (d for d in digests if d not in kept):
        try:
            await asyncio.to_thread(runtime.blobs.delete, digest)
        except BlobStoreUnavailable:  # the store is down: an unreferenced photo stays, no report points at it
            log.warning("could not remove photo %s of a failed request", digest)


def add_photo_rows(session: AsyncSession, report_id: str, photos: list[CheckedPhoto]) -> None:
    """The photos' rows, and the first entry of each one's custody (hash, size, time) in the audit chain."""
    now = utcnow()
    for checked in photos:
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
        )
        session.add(photo)
        audit.record_photo_received(session, report_id, photo)


def photo_summary(photo: Photo) -> PhotoSummary:
    return PhotoSummary(
        id=photo.id, content_type=photo.content_type, width=photo.width, height=photo.height, display=display_of(photo)
    )
