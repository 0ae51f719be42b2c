"""Photos published with a Burgernet action: uploaded by a dispatcher, sanitised, recorded as published."""

from __future__ import annotations

import asyncio
import hashlib

from sqlalchemy.ext.asyncio import AsyncSession

from burgermelding_shared import burgernet, images
from burgermelding_shared.app import Runtime
from burgermelding_shared.blobstore import published_store
from burgermelding_shared.burgernet import ActionPhoto
from burgermelding_shared.errors import ServiceError
from burgermelding_shared.timeutil import utcnow
from dispatch_bridge.audit import Who, audit
from dispatch_bridge.burgernet.errors import invalid
from dispatch_bridge.config import BridgeSettings
from dispatch_bridge.models import BurgernetPhoto

MAX_PHOTO_BYTES = 10 * 1024 * 1024


PHOTO_MAX_SIDE = 1600


PHOTO_MAX_PIXELS = 50_000_000


async def store_photo(runtime: Runtime, actor: Who, data: bytes) -> ActionPhoto:
    """Take a dispatcher's photo of whom or what is sought: sanitised by the suite's one image sanitiser, put in
    the published store (the only one intake's public photo route reads), and recorded with who uploaded it.
    Only a photo recorded here can be named by an action."""
    if len(data) > MAX_PHOTO_BYTES:
        raise ServiceError(
            413,
            "photo_too_large",
            f"a photo may be at most {MAX_PHOTO_BYTES // (1024 * 1024)} MB",
            detail_nl=f"een foto mag hoogstens {MAX_PHOTO_BYTES // (1024 * 1024)} MB zijn",
        )
    settings: BridgeSettings = runtime.settings
    clean = await asyncio.to_thread(
        images.sanitised_copy,
        data,
        max_pixels=PHOTO_MAX_PIXELS,
        max_side=PHOTO_MAX_SIDE,
        scratch=settings.blob_dir / "tmp",
    )
    digest = hashlib.sha256(clean).hexdigest()
    await asyncio.to_thread(published_store(settings.blob_config()).put_bytes, clean)
    photo = ActionPhoto(sha256=digest, size_bytes=len(clean), sha1=burgernet.photo_digest_sha1(clean))
    async with runtime.db.transaction() as session:
        if await session.get(BurgernetPhoto, digest) is None:  # the same photo again: one record, the first
            session.add(
                BurgernetPhoto(
                    sha256=digest,
                    size_bytes=photo.size_bytes,
                    sha1=photo.sha1,
                    original_sha256=hashlib.sha256(data).hexdigest(),
                    uploaded_by=actor.username,
                    uploaded_at=utcnow(),
                )
            )
        audit(
            session,
            actor,
            "burgernet.photo_uploaded",
            "photo_sha256",
            digest,
            {"sha256": digest, "size_bytes": len(clean), "original_sha256": hashlib.sha256(data).hexdigest()},
        )
    return photo


async def published_photo(session: AsyncSession, sha256: str) -> ActionPhoto:
    """The published photo an action names. Anything not uploaded for Burgernet is refused with the same answer
    whether or not the digest is known elsewhere (a citizen's original): nothing is learnt from it."""
    recorded = await session.get(BurgernetPhoto, sha256)
    if recorded is None:
        raise invalid(
            "unknown_photo",
            "no photo with this digest was uploaded for Burgernet (upload it with POST "
            "/v1/dispatch/burgernet/photos and name the digest it answers)",
            "er is geen foto met deze digest voor Burgernet geüpload (upload hem met POST "
            "/v1/dispatch/burgernet/photos en noem de digest uit het antwoord)",
        )
    return ActionPhoto(sha256=recorded.sha256, size_bytes=recorded.size_bytes, sha1=recorded.sha1)
