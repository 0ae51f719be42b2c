"""Images from outside, for the whole suite: decide the type from the bytes, decode once, refuse bombs, make a
sanitised copy. The one image sanitiser: intake's display copies of citizens' photos and the bridge's published
copy of a Burgernet photo are both made here, so what the photo fuzzer holds it to holds for both.

The original is stored byte for byte (its SHA-256 is its key) as evidence; only the sanitised copy, with EXIF
and GPS removed, orientation applied and the longest side capped, is ever shown.

One decode per photo, at the scale the display copy needs: a JPEG is decoded at a reduced DCT scale (a 12 MP
photo at 1/2, 43 ms here instead of 82 for the full decode), which still entropy-decodes every byte, so a
truncated or corrupt file fails just as it would in a full decode. Formats without a reduced decode (HEIC, PNG,
WebP) are decoded in full and then reduced by whole factors (a box filter, 14 ms for 12 MP instead of 104 for a
bilinear resize). Verification makes its perceptual hashes from this display copy, so the original's pixels are
decoded once in the whole suite.

A HEIC is the exception to "decoded before the 202" at intake: its HEVC decode is the dearest step of all (0.6
to 0.8 s of CPU for 12 MP here, with no reduced decode), and it decided the 202's p99 under load. Before the 202
a HEIC gets what can be checked without its pixels: the type from its bytes, a container whose boxes fill the
file exactly (a truncated upload fails here), a primary image libheif can open, and the pixel limit. Its display
copy is made afterwards by intake's `display.DisplayCopies`, a retried job that holds the report's messages back
until it is done; a HEIC whose pixels then turn out damaged is kept as evidence, marked unreadable and shown so
to the citizen. `sanitised_copy` (the bridge's) decodes every type at once.
"""

from __future__ import annotations

import functools
import hashlib
import io
import tempfile
from dataclasses import dataclass
from pathlib import Path

from PIL import ExifTags, Image, UnidentifiedImageError

from burgermelding_shared.blobstore import BlobStore, disk_faults, sha256_file
from burgermelding_shared.errors import ServiceError

try:  # iPhones shoot HEIC; pillow-heif teaches Pillow to read it.
    from pillow_heif import register_heif_opener

    register_heif_opener()
    HEIF_SUPPORTED = True
except ImportError:  # pragma: no cover - the dependency is declared; this guards odd platforms
    HEIF_SUPPORTED = False

# Pillow's own guard raises only at twice its limit and warns below; our own check refuses at the limit,
# this makes Pillow's guard a backstop at the same order of magnitude.
Image.MAX_IMAGE_PIXELS = 100_000_000

_HEIF_BRANDS = {b"heic", b"heix", b"hevc", b"hevx", b"heim", b"heis", b"hevm", b"hevs", b"mif1", b"msf1"}
PILLOW_FORMATS = {"image/jpeg": "JPEG", "image/png": "PNG", "image/webp": "WEBP", "image/heic": "HEIF"}
# Types whose display copy is made after the 202 (see the module's docstring).
DISPLAY_LATER = frozenset({"image/heic"})
# EXIF orientation -> the transpose that makes a photo stored that way upright (as ImageOps.exif_transpose).
_UPRIGHT = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}


def sniff_type(head: bytes) -> str | None:
    """The media type the first bytes prove, or None. Declared types and file names are never trusted."""
    if head.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "image/webp"
    if head[4:8] == b"ftyp" and head[8:12] in _HEIF_BRANDS:
        return "image/heic"
    return None


def _refuse(error: str, en: str, nl: str, status: int = 422) -> ServiceError:
    return ServiceError(status, error, en, detail_nl=nl)


class PhotoUnreadable(Exception):
    """The photo's pixels cannot be decoded: the file is damaged or truncated."""


MAX_TOP_LEVEL_BOXES = 64  # a phone's HEIC has three or four (ftyp, meta, mdat, maybe free)


def boxes_fill_file(path: Path) -> bool:
    """Whether the top-level ISO-BMFF boxes of a HEIF file (ftyp, meta, mdat, ...) fill it exactly. An upload
    cut off on the way ends inside its last box (the image data, which comes last) and fails this. A file of
    thousands of tiny boxes fails too, before walking them would cost more than decoding a real photo."""
    size = path.stat().st_size
    offset = 0
    with path.open("rb") as fh:
        for _ in range(MAX_TOP_LEVEL_BOXES):
            if offset >= size:
                break
            fh.seek(offset)
            header = fh.read(16)
            if len(header) < 8:
                return False
            length = int.from_bytes(header[:4], "big")
            if length == 1:  # a 64-bit size follows the type
                if len(header) < 16:
                    return False
                length = int.from_bytes(header[8:16], "big")
                if length < 16:
                    return False
            elif length == 0:  # the box runs to the end of the file
                length = size - offset
            elif length < 8:
                return False
            offset += length
    return offset == size


# Boxes whose children hold a HEIF file's image properties ('meta' is a full box: version and flags first).
_HEIF_PROPERTY_CONTAINERS = {b"meta": 4, b"iprp": 0, b"ipco": 0}
MAX_HEIF_BOXES = 1024  # a phone's HEIC has a few dozen, a 48-tile grid image about a hundred


def heif_extents(path: Path) -> list[tuple[int, int]]:
    """The sizes a HEIF file's images declare in their 'ispe' properties (image spatial extents): what libheif
    allocates to decode them. The size Pillow reports is the one after a crop ('clap'), which can be far smaller:
    checked alone, a file that shows 16x16 pixels may decode to millions. Raises PhotoUnreadable for a box tree
    too large to walk."""
    extents: list[tuple[int, int]] = []
    pending = [(0, path.stat().st_size, 0)]  # (start, end, depth) of box sequences to walk
    visited = 0
    with path.open("rb") as fh:
        while pending:
            offset, end, depth = pending.pop()
            while offset + 8 <= end:
                visited += 1
                if visited > MAX_HEIF_BOXES:
                    raise PhotoUnreadable("too many HEIF boxes")
                fh.seek(offset)
                header = fh.read(16)
                length, kind, header_size = int.from_bytes(header[:4], "big"), header[4:8], 8
                if length == 1 and len(header) == 16:
                    length, header_size = int.from_bytes(header[8:16], "big"), 16
                elif length == 0:
                    length = end - offset
                if length < header_size or offset + length > end:
                    break  # malformed: libheif cannot read past it either
                if kind == b"ispe":  # a full box: version and flags, then width and height
                    fh.seek(offset + header_size + 4)
                    size = fh.read(8)
                    if len(size) == 8:
                        extents.append((int.from_bytes(size[:4], "big"), int.from_bytes(size[4:], "big")))
                elif kind in _HEIF_PROPERTY_CONTAINERS and depth < 4:
                    pending.append((offset + header_size + _HEIF_PROPERTY_CONTAINERS[kind], offset + length, depth + 1))
                offset += length
    return extents


@dataclass
class CheckedPhoto:
    path: Path
    sha256: str
    content_type: str
    size_bytes: int
    width: int
    height: int
    display_jpeg: bytes | None  # None: made after the 202 (DISPLAY_LATER)
    kind: str = "photo"  # beside videos.CheckedVideo ("video"), which answers to the same names

    @functools.cached_property
    def display_sha256(self) -> str | None:  # asked for by the store, the guard and the row: hashed once
        return hashlib.sha256(self.display_jpeg).hexdigest() if self.display_jpeg is not None else None


def display_scale(size: tuple[int, int], display_max_side: int) -> int:
    """The whole reduction factor (1, 2, 4 or 8) to decode at: the smallest that brings the longest side within
    one and a half times the cap. A 12 MP phone photo (4000 or 4032 px) then becomes its display copy at 1/2
    without any resampling (2000 or 2016 px); only a photo still longer than the cap is resized, from a
    reduced image. Display copies therefore lie between about two thirds of the cap and the cap."""
    scale = 1
    while scale < 8 and max(size) / scale > display_max_side * 1.5:
        scale *= 2
    return scale


def check_photo(
    path: Path,
    *,
    max_pixels: int,
    display_max_side: int,
    index: int | None = None,
    display_later: frozenset[str] = DISPLAY_LATER,
) -> CheckedPhoto:
    """Validate one uploaded file and make its display copy (for the types in `display_later` it comes later,
    see the module's docstring). Its SHA-256 is taken here, off the event loop, once: the photo store takes the
    file with it (`adopt_file`) instead of hashing and copying it again. `index` names the photo in a request
    of several. Blocking: run it in a worker thread."""
    label_en, label_nl = (f"photo {index + 1}", f"foto {index + 1}") if index is not None else ("the photo", "de foto")
    size = path.stat().st_size
    if size == 0:
        raise _refuse("photo_empty", f"{label_en} is empty", f"{label_nl} is leeg")
    with path.open("rb") as fh:
        head = fh.read(32)
    content_type = sniff_type(head)
    if content_type is None:
        raise _refuse(
            "photo_type_not_accepted",
            f"{label_en} is not a JPEG, PNG, WebP or HEIC image",
            f"{label_nl} is geen JPEG-, PNG-, WebP- of HEIC-afbeelding",
            415,
        )
    unreadable = _refuse(
        "photo_unreadable",
        f"{label_en} is damaged or truncated and cannot be decoded",
        f"{label_nl} is beschadigd of onvolledig en kan niet worden gelezen",
    )
    if content_type == "image/heic" and not boxes_fill_file(path):
        raise unreadable
    try:
        with Image.open(path) as im:
            if im.format != PILLOW_FORMATS[content_type]:
                raise _refuse(
                    "photo_type_mismatch",
                    f"{label_en}: content does not decode as {content_type}",
                    f"{label_nl}: de inhoud is geen geldige {content_type}",
                    415,
                )
            width, height = im.size
            # A HEIC is decoded at the sizes its 'ispe' properties declare, whatever its crop shows.
            extents = heif_extents(path) if content_type == "image/heic" else []
            most_w, most_h = max([(width, height), *extents], key=lambda extent: extent[0] * extent[1])
            if most_w * most_h > max_pixels:
                raise _refuse(
                    "photo_too_many_pixels",
                    f"{label_en} has {most_w}x{most_h} pixels, more than the limit of {max_pixels:,}",
                    f"{label_nl} heeft {most_w}x{most_h} pixels, meer dan de limiet van {max_pixels:,}",
                    413,
                )
            display_jpeg = None if content_type in display_later else display_copy(im, display_max_side, path.parent)
    except ServiceError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise _refuse(
            "photo_too_many_pixels", f"{label_en} is a decompression bomb", f"{label_nl} is een decompressiebom", 413
        ) from exc
    except (PhotoUnreadable, UnidentifiedImageError, OSError, ValueError, SyntaxError, EOFError) as exc:
        raise unreadable from exc
    return CheckedPhoto(path, sha256_file(path), content_type, size, width, height, display_jpeg)


def display_copy(im: Image.Image, display_max_side: int, tmp_dir: Path) -> bytes:
    """Decode an opened photo (the one decode) and return its display copy: upright, at most `display_max_side`
    long, a JPEG without any metadata. Raises PhotoUnreadable when the pixels do not decode."""
    width, height = im.size
    scale = display_scale(im.size, display_max_side)
    try:
        if im.format == "JPEG" and scale > 1:
            # Pillow picks the smallest DCT scale whose result is at least the requested size.
            # At least 1: a photo one pixel wide and thousands long asks for 0, and Pillow divides by it.
            im.draft("RGB", (max(1, width // scale), max(1, height // scale)))
        im.load()  # the one decode: truncated and corrupt files fail here
    # pillow-heif raises libheif's other errors (a security limit, an unsupported feature) as RuntimeError.
    except (OSError, ValueError, SyntaxError, EOFError, RuntimeError) as exc:
        raise PhotoUnreadable(str(exc)) from exc
    # Upright by its EXIF orientation. Not ImageOps.exif_transpose: besides turning the pixels it writes the EXIF
    # block again without the orientation, which raises on hostile tags (a date stored as a fraction, a thumbnail
    # offset as a fraction), and the display copy carries no EXIF anyway.
    method = _UPRIGHT.get(im.getexif().get(ExifTags.Base.Orientation, 1))
    upright = im.transpose(method) if method is not None else im
    display = upright.reduce(scale) if im.format != "JPEG" and scale > 1 else upright
    display = display if display.mode == "RGB" else display.convert("RGB")
    # Bilinear: Pillow's is antialiased when shrinking, 2.5 times faster than Lanczos, and differs from it by
    # less than a tenth of a grey level on average. Only photos longer than 1.5 x the cap get here.
    display.thumbnail((display_max_side, display_max_side), Image.Resampling.BILINEAR)
    # Into a real (anonymous) file, not a BytesIO: Pillow's encoder releases the GIL only when it writes to a
    # file descriptor, and holding it here stalls the event loop for every other request (measured: two threads
    # encoding to BytesIO take twice as long as one; to files, no longer).
    # A full disk is the store's fault, not the photo's: BlobStoreUnavailable (503, or the job tries again later),
    # never "unreadable".
    with disk_faults(tmp_dir), tempfile.TemporaryFile(dir=tmp_dir) as out:
        # No exif= argument: the display copy carries no metadata at all. Without optimize: 8 instead of 16 ms
        # for 2000 px, for a file about 12% larger (300 instead of 265 KB).
        display.save(out, "JPEG", quality=85)
        out.seek(0)
        return out.read()


def display_copy_of_blob(store: BlobStore, digest: str, display_max_side: int, scratch: Path) -> bytes:
    """The display copy of a stored original (for a HEIC, after the 202). Blocking: run it in a worker thread.
    A photo the store cannot give (it is down, or the bytes no longer match their digest) raises, a storage
    fault worth retrying; one that is read but does not decode raises PhotoUnreadable (it never will)."""
    data = store.read_verified(digest)
    scratch.mkdir(parents=True, exist_ok=True)  # a replica may make copies before it has taken any upload
    try:
        with Image.open(io.BytesIO(data)) as im:
            return display_copy(im, display_max_side, scratch)
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError, EOFError) as exc:
        raise PhotoUnreadable(str(exc)) from exc


def sanitised_copy(data: bytes, *, max_pixels: int, max_side: int, scratch: Path) -> bytes:
    """A copy of an image from outside fit to publish: checked as an upload is, decoded, upright, at most
    `max_side` long, a JPEG without any metadata (a photo from a family's phone carries their place and device).
    Every type, HEIC too, is decoded here and now. Refusals are ServiceErrors (4xx, Dutch and English).
    Blocking: run it in a worker thread."""
    scratch.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=scratch) as folder:
        path = Path(folder) / "upload"
        path.write_bytes(data)
        checked = check_photo(path, max_pixels=max_pixels, display_max_side=max_side, display_later=frozenset())
    assert checked.display_jpeg is not None  # nothing is left for later here
    return checked.display_jpeg
