"""Work on one photo, run in a worker process: verify the digest, read metadata, hash the pixels, check.

The pixels come from the display copy that intake made from its one decode of the original (intake refuses a
photo that does not decode completely before it answers 202): a JPEG of at most 2048 px, decoded here at
reduced size in about 5 ms. So the original's pixels are decoded once in the whole suite; for a HEIC, which has
no reduced decode and takes about 500 ms to decode, that halves the work. The original itself is still read
here: its digest is checked, and its metadata (EXIF, the embedded thumbnail, content credentials) is what the
checks judge. A report without a display copy (an older intake) has its original decoded as before.

Every photo is hashed the same way: the upright image scaled to exactly HASH_SIDE, so hashes from different
reports are comparable.
"""

from __future__ import annotations

import io
import os
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from PIL import Image, ImageOps

from burgermelding_shared.blobstore import (
    BlobCorrupted,
    BlobNotFound,
    BlobStore,
    BlobStoreConfig,
    BlobStoreUnavailable,
    copy_verified,
    store_for,
)
from burgermelding_shared.contracts import CheckResult, PhotoVerification
from burgermelding_shared.errors import ServiceError
from burgermelding_shared.videos import VideoLimits
from verification.checks import (
    Claim,
    check,
    metadata_checks,
    provenance_check,
    thumbnail_check,
    video_metadata_checks,
)
from verification.exif import PhotoMetadata, read_metadata
from verification.perceptual import (
    ORIENTATION_TAG,
    embedded_thumbnail,
    pdq_hashes,
    sharpness,
    thumbnail_distance,
    upright,
)
from verification.phash import phash
from verification.provenance import read_content_credentials
from verification.vpdq import read_video

try:
    from pillow_heif import register_heif_opener

    register_heif_opener()
except ImportError:  # pragma: no cover
    pass

MIN_HASH_SIDE = 256  # the reduced decode's longest side never drops below this...
HASH_SIDE = 256  # ...and both hashes are made from the image scaled to exactly this longest side


def warm_up(pause_seconds: float) -> int:
    """Run in each image worker as the service starts. A spawned worker imports this module (Pillow and its HEIF
    plugin, numpy, the hash libraries) with its first task: 0.5 to 0.9 s here, which the first reports after
    every start waited for. Hashing a small image also loads what the hashes load lazily. The pause keeps this
    worker busy, so that the pool starts a new worker for the next warm-up. Returns the worker's pid."""
    image = Image.new("RGB", (HASH_SIDE, HASH_SIDE), (90, 120, 150))
    phash(image)
    pdq_hashes(image)
    time.sleep(pause_seconds)
    return os.getpid()


def reduction(size: tuple[int, int]) -> int:
    """The JPEG DCT scale (1, 2, 4 or 8) for the reduced decode: as small as possible (a 12 MP photo decodes at
    1/8, 500x375), keeping the longest side at least MIN_HASH_SIDE. Pillow's draft picks the smallest scale
    whose result is at least the requested size, so the request must be the exact scaled size."""
    scale = 8
    while scale > 1 and max(size) // scale < MIN_HASH_SIDE:
        scale //= 2
    return scale


@dataclass
class PhotoJob:
    blobs: BlobStoreConfig
    photo_id: str
    sha256: str
    claim: Claim
    max_pixels: int
    old_photo_hours: float
    gps_min_distance_m: float
    display_sha256: str | None = None
    kind: str = "photo"  # or "video": analyse_video
    max_video_seconds: float = 300.0


def reduced_decode(im: Image.Image) -> Image.Image:
    """Load the pixels, for a JPEG at the smallest DCT scale that keeps the longest side >= MIN_HASH_SIDE."""
    if im.format == "JPEG":
        scale = reduction(im.size)
        # At least 1: a photo one pixel wide and thousands long asks for 0, and Pillow divides by it.
        im.draft("RGB", (max(1, im.size[0] // scale), max(1, im.size[1] // scale)))
    im.load()
    return im


def upright_pixels(store: BlobStore, job: PhotoJob, original: Image.Image) -> Image.Image:
    """The photo's pixels upright: from the display copy (already upright, no metadata) when there is one,
    else from a reduced decode of the original."""
    if job.display_sha256:
        try:
            with Image.open(io.BytesIO(store.read_verified(job.display_sha256))) as display:
                return reduced_decode(display).copy()
        except (BlobNotFound, BlobCorrupted):
            pass  # made by an older intake, or lost: the original still has everything
    # Not ImageOps.exif_transpose: it also writes the EXIF block again, which raises on hostile tags.
    image = upright(reduced_decode(original), original.getexif().get(ORIENTATION_TAG, 1))
    return image.copy() if image is original else image  # it outlives the `with` that closes the original


def stored_original_fails(problem: BlobNotFound | BlobCorrupted) -> CheckResult:
    if isinstance(problem, BlobNotFound):
        return check(
            "photo_missing",
            "fail",
            "The photo could not be found in storage.",
            "De foto is niet gevonden in de opslag.",
        )
    return check(
        "photo_undecodable",
        "fail",
        "The stored photo does not match its digest.",
        "De opgeslagen foto klopt niet met de vingerafdruk.",
    )


def analyse_media(job: PhotoJob) -> dict[str, Any]:
    """A photo or a video, in a worker process (see analyse_photo, analyse_video)."""
    return analyse_video(job) if job.kind == "video" else analyse_photo(job)


def analyse_video(job: PhotoJob) -> dict[str, Any]:
    """A video's container time and place checked against the report, and its frame hashes (vPDQ), read from
    the original in the limited child process. Returns a PhotoVerification as a dict with the frame hashes
    under "frames" ([[seconds, PDQ hex, quality], ...]); no photo hashes (a video is matched by its frames)."""
    result = PhotoVerification(photo_id=job.photo_id, sha256=job.sha256, checks=[])
    store = store_for(job.blobs)
    with tempfile.TemporaryDirectory(prefix="video-") as folder:
        original = Path(folder) / "original"
        try:
            copy_verified(store, job.sha256, original)
        except (BlobNotFound, BlobCorrupted) as exc:
            result.checks = [stored_original_fails(exc)]
            return result.model_dump(mode="json")
        limits = VideoLimits(max_bytes=original.stat().st_size + 1, max_seconds=job.max_video_seconds)
        try:
            reading = read_video(original, limits)
        except ServiceError:
            result.checks = [
                check(
                    "video_undecodable",
                    "fail",
                    "The video cannot be read.",
                    "De video kan niet worden gelezen.",
                )
            ]
            return result.model_dump(mode="json")
    facts = reading.facts
    meta = PhotoMetadata(
        has_exif=facts.recorded_start is not None or facts.place_lat is not None,
        captured_at=facts.recorded_start,
        gps_lat=facts.place_lat,
        gps_lon=facts.place_lon,
    )
    result.width, result.height = facts.width, facts.height
    result.captured_at = facts.recorded_start
    if facts.place_lat is not None and facts.place_lon is not None:
        result.gps = {"lat": facts.place_lat, "lon": facts.place_lon}
    result.checks = [
        check("video_decodes", "pass", "The video can be read.", "De video is leesbaar."),
        *video_metadata_checks(
            meta, job.claim, old_photo_hours=job.old_photo_hours, gps_min_distance_m=job.gps_min_distance_m
        ),
    ]
    return {
        **result.model_dump(mode="json"),
        "frames": [[frame.at, frame.pdq.hex(), frame.quality] for frame in reading.frames],
    }


def analyse_photo(job: PhotoJob) -> dict[str, Any]:
    """Returns a PhotoVerification as a dict (plain data crosses the process boundary cheaply), with the PDQ
    hashes under "pdq" (hex) and "pdq_dihedral" (8 x hex) and the PDQ quality under "pdq_quality"."""
    undecodable = PhotoVerification(photo_id=job.photo_id, sha256=job.sha256, checks=[])
    store = store_for(job.blobs)
    try:
        data = store.read_verified(job.sha256)
    except (BlobNotFound, BlobCorrupted) as exc:
        undecodable.checks = [stored_original_fails(exc)]
        return undecodable.model_dump(mode="json")
    try:
        with Image.open(io.BytesIO(data)) as im:
            width, height = im.size
            if width * height > job.max_pixels:
                raise ValueError("too many pixels")
            meta = read_metadata(im)
            pillow_format = im.format
            thumbnail = embedded_thumbnail(im)
            orientation = im.getexif().get(ORIENTATION_TAG, 1)
            image = upright_pixels(store, job, im)
        # One size for every photo, whatever its resolution or the decode's scale: the copies of a picture
        # that travel around (resized, recompressed) then hash alike, and PDQ works on a quarter of the
        # pixels (it reduces to 64x64 itself).
        hashable = ImageOps.contain(image, (HASH_SIDE, HASH_SIDE), Image.Resampling.BILINEAR)
        if 0 in hashable.size:  # contain rounds a side under half a pixel to 0 (a photo 1 px wide, 4000 long)
            hashable = image.resize((max(1, hashable.width), max(1, hashable.height)), Image.Resampling.BILINEAR)
        value = phash(hashable)
        pdq, pdq_dihedral, pdq_quality = pdq_hashes(hashable)
        sharp = sharpness(hashable)
        # The thumbnail is stored as the camera held it: turned the way the image is turned, it should
        # show the same picture as the upright image.
        thumb_distance = (
            thumbnail_distance(hashable, upright(thumbnail, orientation)) if thumbnail is not None else None
        )
    except BlobStoreUnavailable:
        raise  # the store failing says nothing about the photo: the job is tried again
    except Exception:
        undecodable.checks = [
            check("photo_undecodable", "fail", "The photo cannot be decoded.", "De foto kan niet worden gelezen.")
        ]
        return undecodable.model_dump(mode="json")
    checks: list[CheckResult] = [
        check("photo_decodes", "pass", "The photo decodes completely.", "De foto is volledig leesbaar.")
    ]  # intake refuses one that does not
    checks += metadata_checks(
        meta,
        job.claim,
        width=width,
        height=height,
        old_photo_hours=job.old_photo_hours,
        gps_min_distance_m=job.gps_min_distance_m,
    )
    checks += thumbnail_check(thumb_distance)
    credentials = read_content_credentials(data, pillow_format)
    checks += provenance_check(credentials)
    result = PhotoVerification(
        photo_id=job.photo_id,
        sha256=job.sha256,
        phash=f"{value:016x}",
        width=width,
        height=height,
        captured_at=meta.captured_at if meta.captured_at and meta.captured_at.tzinfo else None,
        captured_local=meta.captured_at.replace(tzinfo=None) if meta.captured_at else None,
        gps={
            "lat": meta.gps_lat,
            "lon": meta.gps_lon,
            **({"accuracy_m": meta.gps_error_m} if meta.gps_error_m is not None else {}),
        }
        if meta.gps_lat is not None and meta.gps_lon is not None
        else None,
        make=meta.make,
        model=meta.model,
        software=meta.software,
        has_thumbnail=thumbnail is not None,
        sharpness=sharp,
        content_credentials=credentials.state,
        content_credentials_signer=credentials.signer,
        checks=checks,
    )
    return {
        **result.model_dump(mode="json"),
        "pdq": pdq.hex(),
        "pdq_dihedral": [h.hex() for h in pdq_dihedral],
        "pdq_quality": pdq_quality,
    }
