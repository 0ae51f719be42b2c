"""A fuzzer on everything that parses the bytes of an upload (issue #11): intake's photo checks and the metadata,
thumbnail and content-credential readers of verification.

Every input starts from a real photo (a JPEG with camera EXIF, GPS, an orientation and an embedded thumbnail; a
PNG; a WebP; an iPhone-style HEIC; a JPEG signed with C2PA content credentials) and is then broken the way an
attacker or a bad network breaks it: EXIF written from a model whose every field can lie (entry counts, value
counts, types, pointers past the end or back into themselves, GPS rationals over zero, dates in year 1, a
thumbnail inside a thumbnail inside a thumbnail), JPEG and PNG headers claiming zero or absurd sizes, HEIF boxes
of size 0, 1 (64-bit) or larger than the file, a truncated 'ispe', a 'meta' inside a 'meta', a file whose magic
bytes say one type and whose body is another, and finally plain byte damage (cut off anywhere, bits flipped,
bytes inserted or removed).

The standard each parser is held to:
- intake's `check_photo` accepts a photo with real pixels (and a display copy that decodes), or refuses it with a
  `ServiceError`: a 4xx, a machine-readable reason and English and Dutch text. Any other exception is a 500.
  It leaves nothing next to the upload (nothing half-stored). After the 202 a HEIC's display copy is made by
  `display_copy_of_blob`, which either makes one or raises `PhotoUnreadable` (anything else is retried forever).
- verification's `read_metadata` never raises, and what it returns is something the checks can compute with;
  a file Pillow cannot open (whose metadata verification never reads) is refused by intake as above and called
  undecodable by verification; `analyse_photo` never raises and never calls a photo intake accepted undecodable;
  `read_content_credentials` never raises.
- nothing takes long: a generous per-example bound catches a hang or a blow-up, not a slow machine.

Reproducible: `derandomize=True` (the examples follow from each test's name) and no example database. Each fuzz
test fails unless all the cases it asked for really ran (`fuzz`); `--hypothesis-show-statistics` prints how many
each ran and what became of them (the `event`s below), for the closing note of an issue.
"""

from __future__ import annotations

import io
import struct
import tempfile
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from functools import cache
from pathlib import Path
from typing import Any

import pytest
from hypothesis import currently_in_test_context, event, given
from hypothesis import strategies as st
from PIL import Image

from burgermelding_shared.blobstore import BlobStoreConfig, LocalBlobStore
from burgermelding_shared.contracts import PhotoVerification
from burgermelding_shared.errors import ServiceError
from burgermelding_shared.images import (
    PhotoUnreadable,
    boxes_fill_file,
    check_photo,
    display_copy_of_blob,
    sanitised_copy,
    sniff_type,
)
from tests.fuzzing import Sample, byte_damage, fuzz
from tests.helpers import exif_time, heic_photo, make_jpeg, sign_with_content_credentials
from verification.analysis import PhotoJob, analyse_photo
from verification.checks import Claim, metadata_checks
from verification.exif import PhotoMetadata, read_metadata
from verification.provenance import read_content_credentials

# Pillow warns about every corrupt EXIF entry it skips, and the fuzzer makes hundreds of them on purpose.
pytestmark = pytest.mark.filterwarnings("ignore::UserWarning:PIL.TiffImagePlugin")

MAX_SECONDS = 10.0  # per example; a small photo takes milliseconds, so only a hang or a blow-up comes near this
MAX_PIXELS = 50_000_000  # intake's and verification's default
CLAIM_LAT, CLAIM_LON = 52.0907, 5.1214
WHEN = datetime(2025, 3, 14, 9, 26, 53, tzinfo=UTC)


# --- EXIF from a model in which every field may lie --------------------------------------------------------

BYTE, ASCII, SHORT, LONG, RATIONAL, SBYTE, UNDEFINED, SSHORT, SLONG, SRATIONAL, FLOAT, DOUBLE = range(1, 13)
UNIT = {
    BYTE: 1,
    ASCII: 1,
    SHORT: 2,
    LONG: 4,
    RATIONAL: 8,
    SBYTE: 1,
    UNDEFINED: 1,
    SSHORT: 2,
    SLONG: 4,
    SRATIONAL: 8,
    FLOAT: 4,
    DOUBLE: 8,
    13: 4,
}
MAKE, MODEL, ORIENTATION, SOFTWARE, DATETIME = 0x010F, 0x0110, 0x0112, 0x0131, 0x0132
THUMB_OFFSET, THUMB_LENGTH = 0x0201, 0x0202
DATETIME_ORIGINAL, OFFSET_ORIGINAL, PIXEL_X, PIXEL_Y = 0x9003, 0x9011, 0xA002, 0xA003
GPS_LAT_REF, GPS_LAT, GPS_LON_REF, GPS_LON, GPS_TIMESTAMP, GPS_DATESTAMP, GPS_H_ERROR = 1, 2, 3, 4, 7, 29, 31


@dataclass(frozen=True)
class Entry:
    """One IFD entry: its values as a struct format and values ("" and bytes for raw data), packed in the byte
    order of the file it ends up in. `count` None is the truthful count; anything else is a lie."""

    tag: int
    type: int
    fmt: str
    values: tuple[Any, ...] | bytes
    count: int | None = None

    def payload(self, order: str) -> bytes:
        if isinstance(self.values, bytes):
            return self.values
        return struct.pack(order + self.fmt, *self.values)

    def declared_count(self, order: str) -> int:
        return self.count if self.count is not None else len(self.payload(order)) // UNIT.get(self.type, 1)


def text(tag: int, value: str | bytes) -> Entry:
    return Entry(tag, ASCII, "", (value.encode() if isinstance(value, str) else value) + b"\x00")


def short(tag: int, *values: int) -> Entry:
    return Entry(tag, SHORT, f"{len(values)}H", values)


def rationals(tag: int, *pairs: tuple[int, int]) -> Entry:
    return Entry(tag, RATIONAL, f"{2 * len(pairs)}I", tuple(v for pair in pairs for v in pair))


def dms(value: float) -> tuple[tuple[int, int], ...]:
    degrees, rest = divmod(abs(value) * 3600 * 1000, 3600 * 1000)
    minutes, millis = divmod(rest, 60 * 1000)
    return (int(degrees), 1), (int(minutes), 1), (int(millis), 1000)


LINK = (0,)  # the value of a link entry until the layout is known (compared by identity)


@dataclass(frozen=True)
class ExifModel:
    """An EXIF block: IFD0, the EXIF and GPS sub-IFDs, IFD1 with a JPEG thumbnail. The pointers between them
    can be sent elsewhere ("past_end", "loop" back to IFD0, "zero", "odd", "huge") and the entry counts lie."""

    order: str = "<"
    ifd0: tuple[Entry, ...] = ()
    exif: tuple[Entry, ...] = ()
    gps: tuple[Entry, ...] = ()
    ifd1: tuple[Entry, ...] = ()
    thumbnail: bytes | None = None
    thumbnail_length: int | None = None  # a lie about the thumbnail's length
    entry_counts: tuple[tuple[str, int], ...] = ()  # IFD name -> the number of entries it claims
    pointers: tuple[tuple[str, str], ...] = ()  # "exif", "gps", "ifd1", "thumbnail" -> where it points

    def tiff(self) -> bytes:
        o = self.order
        names = ["ifd0"] + [
            n for n in ("exif", "gps", "ifd1") if getattr(self, n) or (n == "ifd1" and self.thumbnail is not None)
        ]
        entries = {n: list(getattr(self, n)) for n in names}
        # The links between the blocks: placeholders until the layout is known (a LONG never moves the layout).
        links = {"exif": 0x8769, "gps": 0x8825}
        for name in ("exif", "gps"):
            if name in names:
                entries["ifd0"].append(Entry(links[name], LONG, "I", LINK))
        if self.thumbnail is not None:
            entries["ifd1"] += [Entry(THUMB_OFFSET, LONG, "I", LINK), Entry(THUMB_LENGTH, LONG, "I", LINK)]

        def data_size(es: list[Entry]) -> int:
            return sum(len(p) + len(p) % 2 for p in (e.payload(o) for e in es) if len(p) > 4)

        offsets, at = {}, 8
        for name in names:
            offsets[name] = at
            at += 2 + 12 * len(entries[name]) + 4 + data_size(entries[name])
        thumbnail_at, total = at, at + len(self.thumbnail or b"")
        hostile = {"past_end": total + 4096, "loop": 8, "zero": 0, "huge": 2**32 - 1}
        pointers = dict(self.pointers)

        def target(name: str, honest: int) -> int:
            where = pointers.get(name, "ok")
            return honest + 1 if where == "odd" else hostile.get(where, honest)

        resolved = {
            0x8769: target("exif", offsets.get("exif", 0)),
            0x8825: target("gps", offsets.get("gps", 0)),
            THUMB_OFFSET: target("thumbnail", thumbnail_at),
            THUMB_LENGTH: self.thumbnail_length if self.thumbnail_length is not None else len(self.thumbnail or b""),
        }
        counts = dict(self.entry_counts)
        out = bytearray((b"II*\x00" if o == "<" else b"MM\x00*") + struct.pack(o + "I", 8))
        for name in names:
            assert len(out) == offsets[name]
            es = sorted(
                (replace(e, values=(resolved[e.tag],)) if e.values is LINK else e for e in entries[name]),
                key=lambda e: e.tag,
            )
            data_at = offsets[name] + 2 + 12 * len(es) + 4
            head, data = bytearray(struct.pack(o + "H", counts.get(name, len(es)) & 0xFFFF)), bytearray()
            for e in es:
                payload = e.payload(o)
                head += struct.pack(o + "HHI", e.tag, e.type, e.declared_count(o) & 0xFFFFFFFF)
                if len(payload) <= 4:
                    head += payload.ljust(4, b"\x00")
                else:
                    head += struct.pack(o + "I", data_at + len(data))
                    data += payload + b"\x00" * (len(payload) % 2)
            next_ifd = target("ifd1", offsets["ifd1"]) if name == "ifd0" and "ifd1" in names else 0
            out += head + struct.pack(o + "I", next_ifd) + data
        return bytes(out + (self.thumbnail or b""))

    def app1(self) -> bytes:
        return b"Exif\x00\x00" + self.tiff()


def with_app1(jpeg: bytes, exif: bytes) -> bytes:
    """The JPEG with this EXIF block as an APP1 segment right after its SOI (a block too long for a segment gets a
    length that lies)."""
    segment = b"Exif\x00\x00" + exif if not exif.startswith(b"Exif") else exif
    return jpeg[:2] + b"\xff\xe1" + struct.pack(">H", min(len(segment) + 2, 0xFFFF)) + segment + jpeg[2:]


@cache
def plain_jpeg(width: int, height: int, pattern: int = 0) -> bytes:
    return make_jpeg(width, height, pattern=pattern, quality=80)


@cache
def nested_thumbnail(depth: int) -> bytes:
    """A thumbnail JPEG that carries EXIF with its own thumbnail, `depth` levels deep (an edited photo's
    thumbnail that still holds the camera's, and so on)."""
    size = (40 - 8 * depth, 30 - 6 * depth)
    if depth <= 0:
        return plain_jpeg(*size, pattern=1)
    inner = ExifModel(ifd0=(text(MAKE, "Thumb"),), thumbnail=nested_thumbnail(depth - 1))
    return with_app1(plain_jpeg(*size, pattern=1), inner.app1())


def camera_model(thumbnail_depth: int = 1) -> ExifModel:
    """What a phone writes: make, model, firmware, orientation, times with an offset, size, GPS with accuracy
    and time, and a thumbnail (which here holds one of its own)."""
    return ExifModel(
        ifd0=(
            text(MAKE, "Google"),
            text(MODEL, "Pixel 8"),
            short(ORIENTATION, 6),
            text(SOFTWARE, "HDR+ 1.0"),
            text(DATETIME, exif_time(WHEN)),
        ),
        exif=(
            text(DATETIME_ORIGINAL, exif_time(WHEN)),
            text(OFFSET_ORIGINAL, "+00:00"),
            Entry(PIXEL_X, LONG, "I", (96,)),
            Entry(PIXEL_Y, LONG, "I", (72,)),
        ),
        gps=(
            text(GPS_LAT_REF, "N"),
            rationals(GPS_LAT, *dms(CLAIM_LAT)),
            text(GPS_LON_REF, "E"),
            rationals(GPS_LON, *dms(CLAIM_LON)),
            rationals(GPS_TIMESTAMP, (9, 1), (26, 1), (53, 1)),
            text(GPS_DATESTAMP, "2025:03:14"),
            rationals(GPS_H_ERROR, (5, 1)),
        ),
        ifd1=(short(0x0103, 6),),  # Compression: JPEG
        thumbnail=nested_thumbnail(thumbnail_depth),
    )


def one_in(n: int, draw: st.DrawFn) -> bool:
    """True about one time in n. (Not `integers(0, n - 1) == 0`: Hypothesis favours the simplest value, 0, and the
    rare branch would be taken most of the time.)"""
    return draw(st.integers(1, n)) == n


# The values that break parsers: zero, one, the edges of 16, 31 and 32 bits.
EDGE_INTS = [0, 1, 2, 59, 60, 3600, 2**15, 2**16 - 1, 2**31 - 1, 2**31, 2**32 - 1]
u32 = st.one_of(st.sampled_from(EDGE_INTS), st.integers(0, 2**32 - 1))
HOSTILE_DATES = [
    "0001:01:01 00:00:00",
    "0001:01:01 13:59:59",
    "9999:12:31 23:59:59",
    "9999:12:31 10:00:00",
    "2025:02:30 12:00:00",
    "2025:13:01 00:00:00",
    "1970:01:01 00:00:00",
    "2025:03:14 24:00:00",
    "    :  :     :  :  ",
    "2025:03:14",
    "0001:01:01",
    "9999:12:31",
    "",
    "2025:03:14 09:26:53.123+01:00",
]
# Dates and offsets in EXIF's own form, the edges of the calendar first: datetime stops at years 1 and 9999.
exif_dates = st.builds(
    "{:04d}:{:02d}:{:02d} {:02d}:{:02d}:{:02d}".format,
    st.one_of(st.sampled_from([1, 2, 1970, 2025, 9998, 9999]), st.integers(0, 9999)),
    st.one_of(st.sampled_from([1, 12]), st.integers(0, 13)),
    st.one_of(st.sampled_from([1, 31]), st.integers(0, 32)),
    st.integers(0, 25),
    st.integers(0, 61),
    st.integers(0, 61),
)
exif_offsets = st.builds("{}{:02d}:{:02d}".format, st.sampled_from("+- "), st.integers(0, 99), st.integers(0, 99))
HOSTILE_OFFSETS = ["+14:00", "-14:00", "+99:99", "+1:00", "++1:00", "-00:00", "+14:59", "x", "+٠١:٠٠"]
# The kind of value each tag that verification reads normally has.
NATURAL_KIND = {
    MAKE: "text",
    MODEL: "text",
    SOFTWARE: "text",
    ORIENTATION: "shorts",
    DATETIME: "date",
    DATETIME_ORIGINAL: "date",
    OFFSET_ORIGINAL: "offset",
    PIXEL_X: "longs",
    PIXEL_Y: "longs",
    GPS_LAT_REF: "text",
    GPS_LON_REF: "text",
    GPS_LAT: "rationals",
    GPS_LON: "rationals",
    GPS_TIMESTAMP: "rationals",
    GPS_DATESTAMP: "date",
    GPS_H_ERROR: "rationals",
}
HOSTILE_TAGS = [
    MAKE,
    MODEL,
    ORIENTATION,
    SOFTWARE,
    DATETIME,
    DATETIME_ORIGINAL,
    OFFSET_ORIGINAL,
    PIXEL_X,
    PIXEL_Y,
    GPS_LAT_REF,
    GPS_LAT,
    GPS_LON_REF,
    GPS_LON,
    GPS_TIMESTAMP,
    GPS_DATESTAMP,
    GPS_H_ERROR,
    0x8769,
    0x8825,
    THUMB_OFFSET,
    THUMB_LENGTH,
    0x927C,
    0xA005,
    0x0000,
    0xFFFF,
]


@st.composite
def hostile_value(draw: st.DrawFn, tag: int) -> Entry:
    """An entry for `tag`: half the time of the tag's own kind with absurd values (a date in year 1, a rational
    over zero), else of any type; its count lies now and then."""
    kinds = [
        "text",
        "date",
        "offset",
        "rationals",
        "srationals",
        "shorts",
        "longs",
        "floats",
        "doubles",
        "raw",
        "bad_type",
    ]
    own = NATURAL_KIND.get(tag)
    kind = own if own is not None and draw(st.booleans()) else draw(st.sampled_from(kinds))
    n = draw(st.integers(0, 4)) if kind != own or kind not in ("rationals", "srationals") else 3
    if kind == "text":
        entry = text(tag, draw(st.binary(max_size=40)))
    elif kind == "date":
        entry = text(tag, draw(st.one_of(st.sampled_from(HOSTILE_DATES), exif_dates)))
    elif kind == "offset":
        entry = text(tag, draw(st.one_of(st.sampled_from(HOSTILE_OFFSETS), exif_offsets)))
    elif kind in ("rationals", "srationals"):
        pairs = draw(st.lists(st.tuples(u32, u32), min_size=n, max_size=n))
        entry = Entry(
            tag, RATIONAL if kind == "rationals" else SRATIONAL, f"{2 * n}I", tuple(v for pair in pairs for v in pair)
        )
    elif kind == "shorts":
        entry = Entry(
            tag,
            draw(st.sampled_from([SHORT, SSHORT])),
            f"{n}H",
            tuple(draw(st.lists(st.integers(0, 2**16 - 1), min_size=n, max_size=n))),
        )
    elif kind == "longs":
        entry = Entry(
            tag, draw(st.sampled_from([LONG, SLONG])), f"{n}I", tuple(draw(st.lists(u32, min_size=n, max_size=n)))
        )
    elif kind in ("floats", "doubles"):
        values = tuple(
            draw(
                st.lists(
                    st.floats(allow_nan=True, allow_infinity=True, width=32 if kind == "floats" else 64),
                    min_size=n,
                    max_size=n,
                )
            )
        )
        entry = Entry(tag, FLOAT if kind == "floats" else DOUBLE, f"{n}{'f' if kind == 'floats' else 'd'}", values)
    elif kind == "raw":
        entry = Entry(tag, draw(st.sampled_from([BYTE, UNDEFINED, SBYTE])), "", draw(st.binary(max_size=40)))
    else:  # a type the TIFF specification does not have
        entry = Entry(tag, draw(st.sampled_from([0, 13, 14, 255, 0xFFFF])), "", draw(st.binary(max_size=12)))
    if one_in(6, draw):  # now and then the count lies: zero, one too many, or far past the end
        entry = replace(entry, count=draw(st.sampled_from([0, 1, 2, 3, 1000, 65535, 2**28, 2**32 - 1])))
    return entry


def home_ifd(tag: int) -> str:
    if tag in (DATETIME_ORIGINAL, OFFSET_ORIGINAL, PIXEL_X, PIXEL_Y):
        return "exif"
    return "gps" if tag < 0x100 else "ifd0"


@st.composite
def hostile_exif(draw: st.DrawFn, one_field_in: int = 4) -> tuple[str, ExifModel]:
    """The camera's EXIF with fields replaced (each one in `one_field_in`), pointers redirected, counts
    falsified."""
    depth = draw(st.integers(0, 3))
    model = replace(camera_model(depth), order=draw(st.sampled_from(["<", ">"])))
    notes = [f"{'II' if model.order == '<' else 'MM'}", f"thumbnail depth {depth}"]
    # Each field verification reads, in its own IFD, may be hostile; then any tag anywhere.
    hostile = [(home_ifd(tag), tag) for tag in sorted(NATURAL_KIND) if one_in(one_field_in, draw)]
    for _ in range(draw(st.integers(0, 2))):
        hostile.append((draw(st.sampled_from(["ifd0", "exif", "gps", "ifd1"])), draw(st.sampled_from(HOSTILE_TAGS))))
    for ifd, tag in hostile:
        entry = draw(hostile_value(tag))
        kept = tuple(e for e in getattr(model, ifd) if e.tag != tag)
        model = replace(model, **{ifd: (*kept, entry)})
        notes.append(
            f"{ifd}[{tag:#06x}]={entry.type}:{entry.values!r:.40}"
            + (f" count={entry.count}" if entry.count is not None else "")
        )
    if one_in(4, draw):
        pointer = draw(st.sampled_from(["exif", "gps", "ifd1", "thumbnail"]))
        where = draw(st.sampled_from(["past_end", "loop", "zero", "odd", "huge"]))
        model = replace(model, pointers=((pointer, where),))
        notes.append(f"{pointer} -> {where}")
    if one_in(4, draw):
        ifd = draw(st.sampled_from(["ifd0", "exif", "gps", "ifd1"]))
        claimed = draw(st.sampled_from([0, 1, 1000, 65535]))
        model = replace(model, entry_counts=((ifd, claimed),))
        notes.append(f"{ifd} claims {claimed} entries")
    if one_in(6, draw):
        claimed_length = draw(u32)
        model = replace(model, thumbnail_length=claimed_length)
        notes.append(f"thumbnail length {claimed_length}")
    return ", ".join(notes), model


# --- whole files: JPEG, PNG, WebP and their structural damage ------------------------------------------------


def png_chunk(kind: bytes, data: bytes, crc: int | None = None) -> bytes:
    crc = zlib.crc32(kind + data) & 0xFFFFFFFF if crc is None else crc
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)


@cache
def plain_png(width: int = 48, height: int = 36) -> bytes:
    buffer = io.BytesIO()
    Image.open(io.BytesIO(plain_jpeg(width, height))).save(buffer, "PNG")
    return buffer.getvalue()


def png_with(
    exif: bytes | None = None,
    width: int | None = None,
    height: int | None = None,
    extra: bytes = b"",
    base: tuple[int, int] = (48, 36),
) -> bytes:
    """The plain PNG with an eXIf chunk, other chunks and/or an IHDR claiming another size (CRC made right,
    so the claim is what gets checked, not the checksum)."""
    data = plain_png(*base)
    ihdr = bytearray(data[16:29])
    if width is not None:
        ihdr[0:4] = struct.pack(">I", width)
    if height is not None:
        ihdr[4:8] = struct.pack(">I", height)
    body = png_chunk(b"IHDR", bytes(ihdr)) + (png_chunk(b"eXIf", exif) if exif is not None else b"") + extra
    return data[:8] + body + data[33:]


def jpeg_segments(data: bytes) -> list[tuple[int, int]]:
    """(offset, marker) of the segments before the scan."""
    found, at = [], 2
    while at + 4 <= len(data) and data[at] == 0xFF and data[at + 1] not in (0xD9, 0xDA):
        found.append((at, data[at + 1]))
        at += 2 + int.from_bytes(data[at + 2 : at + 4], "big")
    return found


def jpeg_claiming(data: bytes, width: int, height: int) -> bytes:
    """The JPEG with its frame header (SOF) claiming another size: 0 for height is legal JPEG (a DNL marker
    should give it later), 0 for width is not."""
    out = bytearray(data)
    for at, marker in jpeg_segments(data):
        if marker in (0xC0, 0xC1, 0xC2):
            out[at + 5 : at + 9] = struct.pack(">HH", height, width)
    return bytes(out)


MAGIC = {
    "jpeg": b"\xff\xd8\xff\xe0",
    "png": b"\x89PNG\r\n\x1a\n",
    "webp": b"RIFF\x00\x10\x00\x00WEBPVP8 ",
    "heic": b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic",
    "gif": b"GIF89a",
    "pdf": b"%PDF-1.7\n",
}


@st.composite
def still_photos(draw: st.DrawFn) -> Sample:
    """A JPEG, PNG or WebP with hostile EXIF, a false size, a false type and/or byte damage."""
    recipe, exif = draw(hostile_exif())
    kind = draw(st.sampled_from(["jpeg", "jpeg", "jpeg", "png", "webp"]))
    # Mostly a small photo; now and then a sliver, whose reduced sizes round to nothing.
    size = draw(st.sampled_from([(96, 72), (96, 72), (96, 72), (1, 700), (700, 1)]))
    recipe += f", {size[0]}x{size[1]}"
    block = exif.app1()
    if kind == "jpeg":
        data = with_app1(plain_jpeg(*size), block)
        if one_in(5, draw):
            width, height = draw(st.sampled_from([0, 1, 8, 65535])), draw(st.sampled_from([0, 1, 8, 65535]))
            data = jpeg_claiming(data, width, height)
            recipe += f", SOF {width}x{height}"
    elif kind == "png":
        width = height = None
        if one_in(5, draw):
            width, height = draw(st.sampled_from([0, 1, 2**31 - 1])), draw(st.sampled_from([0, 1, 2**31 - 1]))
            recipe += f", IHDR {width}x{height}"
        extra = draw(
            st.sampled_from(
                [
                    b"",
                    png_chunk(b"tEXt", b"Raw profile type exif\x00\nexif\n  8\nzz\n"),
                    png_chunk(b"iTXt", b'XML:com.adobe.xmp\x00\x00\x00\x00\x00<x tiff:Orientation="6"/>'),
                    png_chunk(b"zTXt", b"k\x00\x00" + zlib.compress(b"x" * 2_000_000)),
                ]
            )
        )
        data = png_with(
            block[6:], width, height, extra, base=size
        )  # the eXIf chunk holds the TIFF data without "Exif\0\0"
    else:
        buffer = io.BytesIO()
        Image.open(io.BytesIO(plain_jpeg(*size))).save(buffer, "WEBP", exif=block, quality=60)
        data = buffer.getvalue()
    if one_in(6, draw):  # the magic of one type on the body of another
        magic = draw(st.sampled_from(sorted(MAGIC)))
        prepend = draw(st.booleans())
        data = MAGIC[magic] + data if prepend else MAGIC[magic] + data[len(MAGIC[magic]) :]
        recipe += f", {magic} magic {'prepended' if prepend else 'over the start'}"
    damage, data = draw(byte_damage(data))
    return Sample(f"{kind}: {recipe}" + (f", {damage}" if damage else ""), data)


# --- HEIF: odd boxes ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Box:
    offset: int
    size: int
    kind: bytes
    header: int  # 8, or 16 with a 64-bit size
    parents: tuple[int, ...]  # indexes of the enclosing boxes in the list


CONTAINERS = {b"meta": 4, b"iprp": 0, b"ipco": 0, b"dinf": 0}  # children start this far after the header


def heif_boxes(data: bytes) -> list[Box]:
    boxes: list[Box] = []

    def walk(start: int, end: int, parents: tuple[int, ...]) -> None:
        at = start
        while at + 8 <= end:
            size, kind, header = int.from_bytes(data[at : at + 4], "big"), data[at + 4 : at + 8], 8
            if size == 1:
                size, header = int.from_bytes(data[at + 8 : at + 16], "big"), 16
            elif size == 0:
                size = end - at
            if size < header or at + size > end:
                return
            boxes.append(Box(at, size, kind, header, parents))
            if kind in CONTAINERS:
                walk(at + header + CONTAINERS[kind], at + size, (*parents, len(boxes) - 1))
            at += size

    walk(0, len(data), ())
    return boxes


def splice(data: bytes, boxes: list[Box], owner: int | None, at: int, remove: int, insert: bytes) -> bytes:
    """Replace `remove` bytes at `at` by `insert` inside box `owner` (None: at the top level), and correct the
    sizes of that box and all that enclose it, so the container stays consistent and the damage is inside."""
    out = bytearray(data[:at] + insert + data[at + remove :])
    delta = len(insert) - remove
    chain = [] if owner is None else [owner, *boxes[owner].parents]
    for index in chain:
        box = boxes[index]
        if box.header == 16:
            out[box.offset + 8 : box.offset + 16] = struct.pack(">Q", box.size + delta)
        elif int.from_bytes(data[box.offset : box.offset + 4], "big") != 0:
            out[box.offset : box.offset + 4] = struct.pack(">I", box.size + delta)
    return bytes(out)


def width_height(data: bytes, ispe: Box) -> int:
    width, height = struct.unpack(">II", data[ispe.offset + ispe.header + 4 : ispe.offset + ispe.header + 12])
    return int(width * height)


@cache
def heic_seed() -> bytes:
    return heic_photo(plain_jpeg(64, 48), CLAIM_LAT, CLAIM_LON, WHEN)


@st.composite
def odd_heics(draw: st.DrawFn) -> Sample:
    data, notes = heic_seed(), []
    for _ in range(draw(st.integers(1, 3))):
        boxes = heif_boxes(data)
        if not boxes:
            break
        index = draw(st.integers(0, len(boxes) - 1))
        box = boxes[index]
        ispe = [i for i, b in enumerate(boxes) if b.kind == b"ispe"]
        meta = [i for i, b in enumerate(boxes) if b.kind == b"meta"]
        kind = draw(
            st.sampled_from(
                ["size", "largesize", "truncate", "truncate_ispe", "ispe", "nest_meta", "insert_box", "brand", "swap"]
            )
        )
        name = box.kind.decode("latin-1")
        if kind == "size":  # the box's own size lies: 0 (to the end), 1 (64-bit follows), too small or too large
            value = draw(st.sampled_from([0, 1, 7, 8, 9, box.size - 1, box.size + 1, 2**31, 2**32 - 1]))
            data = data[: box.offset] + struct.pack(">I", value & 0xFFFFFFFF) + data[box.offset + 4 :]
            notes.append(f"{name} size {value}")
        elif kind == "largesize" and box.header == 8:  # the same box with a 64-bit size, true or not
            honest = draw(st.booleans())
            large = box.size + 8 if honest else draw(st.sampled_from([0, 8, 15, 16, 2**63, 2**64 - 1]))
            header = struct.pack(">I", 1) + box.kind + struct.pack(">Q", large)
            owner = box.parents[-1] if box.parents else None
            data = splice(data, boxes, owner, box.offset, 8, header)
            notes.append(f"{name} largesize {large}")
        elif kind in ("truncate", "truncate_ispe"):
            if kind == "truncate_ispe" and ispe:
                index = draw(st.sampled_from(ispe))
                box = boxes[index]
            cut = draw(st.integers(1, max(1, box.size - box.header)))
            data = splice(data, boxes, index, box.offset + box.size - cut, cut, b"")
            notes.append(f"{box.kind.decode('latin-1')} cut by {cut}")
        elif kind == "ispe" and ispe:
            target = boxes[draw(st.sampled_from(ispe))]
            width, height = draw(st.sampled_from([0, 1, 2**31, 2**32 - 1])), draw(st.sampled_from([0, 1, 64]))
            at = target.offset + target.header + 4
            data = data[:at] + struct.pack(">II", width, height) + data[at + 8 :]
            notes.append(f"ispe {width}x{height}")
        elif kind == "nest_meta" and meta:
            outer = boxes[meta[0]]
            inner = (
                data[outer.offset : outer.offset + outer.size]
                if draw(st.booleans())
                else (
                    struct.pack(">I", 12 + 33)
                    + b"meta\x00\x00\x00\x00"
                    + struct.pack(">I", 33)
                    + b"hdlr"
                    + b"\x00" * 8
                    + b"pict"
                    + b"\x00" * 13
                )
            )
            at = outer.offset + outer.header + 4 if draw(st.booleans()) else outer.offset + outer.size
            data = splice(data, boxes, meta[0], at, 0, inner)
            notes.append(f"meta inside meta ({len(inner)} bytes)")
        elif kind == "insert_box":
            kind4 = draw(
                st.sampled_from(
                    [
                        b"free",
                        b"meta",
                        b"ispe",
                        b"iloc",
                        b"iinf",
                        b"pitm",
                        b"mdat",
                        b"ftyp",
                        b"uuid",
                        b"\x00\x00\x00\x00",
                    ]
                )
            )
            payload = draw(st.binary(max_size=48))
            declared = draw(st.sampled_from([None, 0, 1, 7, 2**32 - 1]))
            blob = struct.pack(">I", 8 + len(payload) if declared is None else declared) + kind4 + payload
            if box.kind in CONTAINERS:
                at = box.offset + box.header + CONTAINERS[box.kind]
                data = splice(data, boxes, index, at, 0, blob)
            else:
                owner = box.parents[-1] if box.parents else None
                data = splice(data, boxes, owner, box.offset + box.size, 0, blob)
            notes.append(f"inserted {kind4!r} size {declared} after/in {name}")
        elif kind == "brand" and data[4:8] == b"ftyp":
            brand = draw(st.sampled_from([b"heic", b"mif1", b"avif", b"jpeg", b"msf1", b"\x00\x00\x00\x00"]))
            data = data[:8] + brand + data[12:]
            notes.append(f"brand {brand!r}")
        elif kind == "swap":
            top = [b for b in boxes if not b.parents]
            if len(top) >= 2:
                i = draw(st.integers(0, len(top) - 2))
                a, b = top[i], top[i + 1]
                data = (
                    data[: a.offset]
                    + data[b.offset : b.offset + b.size]
                    + data[a.offset : a.offset + a.size]
                    + data[b.offset + b.size :]
                )
                notes.append(f"swapped {a.kind!r} and {b.kind!r}")
    damage, data = draw(byte_damage(data)) if one_in(3, draw) else ("", data)
    return Sample("heic: " + ", ".join(notes) + (f", {damage}" if damage else ""), data)


# --- running the code under test ------------------------------------------------------------------------------


@dataclass
class Outcome:
    photo: Any = None  # CheckedPhoto
    refused: ServiceError | None = None


def timed(call: Callable[[], Any]) -> Any:
    started = time.perf_counter()
    result = call()
    elapsed = time.perf_counter() - started
    assert elapsed < MAX_SECONDS, f"took {elapsed:.1f} s"
    return result


def check_upload(data: bytes, display_max_side: int = 2048) -> Outcome:
    """check_photo on the bytes as an upload file, held to intake's standard (see the module's docstring)."""
    with tempfile.TemporaryDirectory() as scratch:
        upload = Path(scratch) / "upload"
        upload.write_bytes(data)
        outcome = Outcome()
        try:
            outcome.photo = timed(
                lambda: check_photo(upload, max_pixels=MAX_PIXELS, display_max_side=display_max_side, index=0)
            )
        except ServiceError as exc:
            outcome.refused = exc
        if currently_in_test_context():
            event(f"check_photo: {outcome.refused.error if outcome.refused else 'accepted'}")
        # Nothing half-made remains beside the upload, which is left as it came (the caller removes it).
        assert [p.name for p in Path(scratch).iterdir()] == ["upload"]
        assert upload.read_bytes() == data
    if outcome.refused is not None:
        exc = outcome.refused
        assert 400 <= exc.status_code < 500, (exc.status_code, exc.error)
        assert exc.error and exc.error.isidentifier() and exc.detail and exc.detail_nl
        assert exc.detail != exc.detail_nl  # two languages, not one text twice
        return outcome
    photo = outcome.photo
    assert photo.width > 0 and photo.height > 0 and photo.width * photo.height <= MAX_PIXELS
    assert photo.content_type == sniff_type(data[:32]) and photo.size_bytes == len(data)
    if photo.display_jpeg is not None:  # a display copy is a clean JPEG with pixels and nothing else
        with Image.open(io.BytesIO(photo.display_jpeg)) as display:
            display.load()
            assert display.format == "JPEG" and min(display.size) > 0
            assert max(display.size) <= display_max_side and not display.getexif()
    return outcome


class BytesStore:
    """The one method of the blob store that `display_copy_of_blob` uses, over bytes in memory."""

    def __init__(self, data: bytes) -> None:
        self.data = data

    def read_verified(self, digest: str) -> bytes:
        return self.data


def later_display_copy(data: bytes) -> None:
    """After the 202, a HEIC's display copy: made, or PhotoUnreadable (marked and shown so); nothing else."""
    with tempfile.TemporaryDirectory() as scratch:
        try:
            jpeg = timed(
                lambda: display_copy_of_blob(
                    BytesStore(data),
                    "digest",
                    2048,  # type: ignore[arg-type]
                    Path(scratch),
                )
            )
        except PhotoUnreadable:
            return
    with Image.open(io.BytesIO(jpeg)) as display:
        display.load()
        assert display.format == "JPEG" and min(display.size) > 0


def published_copy_holds(data: bytes) -> None:
    """The bridge's copy for Burgernet (`sanitised_copy`, the same sanitiser decoding every type, HEIC too, at
    once): a clean JPEG without metadata, or a 4xx ServiceError in two languages; nothing left behind."""
    with tempfile.TemporaryDirectory() as scratch:
        try:
            jpeg = timed(lambda: sanitised_copy(data, max_pixels=MAX_PIXELS, max_side=1600, scratch=Path(scratch)))
        except ServiceError as exc:
            assert 400 <= exc.status_code < 500, (exc.status_code, exc.error)
            assert exc.error and exc.detail and exc.detail_nl and exc.detail != exc.detail_nl
            jpeg = None
        assert list(Path(scratch).iterdir()) == []
    if currently_in_test_context():
        event(f"sanitised_copy: {'accepted' if jpeg is not None else 'refused'}")
    if jpeg is not None:
        with Image.open(io.BytesIO(jpeg)) as copy:
            copy.load()
            assert copy.format == "JPEG" and 0 < max(copy.size) <= 1600 and not copy.getexif()


def metadata_holds(data: bytes) -> PhotoMetadata | None:
    """read_metadata on whatever Pillow opens, held to verification's standard: never raises, and the
    checks can compute with what it returns."""
    try:
        image = Image.open(io.BytesIO(data))
    except Exception:
        not_an_image_holds(data)
        return None
    with image:
        meta = timed(lambda: read_metadata(image))
    assert isinstance(meta, PhotoMetadata)
    for name in ("make", "model", "software"):
        value = getattr(meta, name)
        assert value is None or (isinstance(value, str) and 0 < len(value) <= 200 and "\x00" not in value)
    for value in (meta.gps_lat, meta.gps_lon, meta.gps_error_m):
        assert value is None or (isinstance(value, float) and abs(value) < float("inf"))
    for moment in (meta.captured_at, meta.modified_at, meta.gps_time):
        assert moment is None or isinstance(moment, datetime)
    claim = Claim(observed_at=WHEN, received_at=WHEN, lat=CLAIM_LAT, lon=CLAIM_LON, accuracy_m=20)
    for width, height in ((96, 72), (1, 1)):
        results = metadata_checks(
            meta, claim, width=width, height=height, old_photo_hours=24.0, gps_min_distance_m=500.0
        )
        assert all(r.detail_en and r.detail_nl for r in results)
    return meta


def not_an_image_holds(data: bytes) -> None:
    """A file Pillow cannot open: verification never reads its metadata, so it is held to something else. Intake
    refuses it (a 4xx with a machine-readable reason, nothing stored: `check_upload`), and verification, given
    it all the same, calls it undecodable."""
    refused = check_upload(data).refused
    assert refused is not None, "intake accepted a file that Pillow cannot open"
    with tempfile.TemporaryDirectory() as store:
        codes = {c["code"] for c in analysis_holds(Path(store), data, accepted=False)["checks"]}
    assert "photo_undecodable" in codes, codes
    if currently_in_test_context():
        event(f"not an image: refused ({refused.error}) and undecodable")


@pytest.fixture(scope="module")
def store_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("fuzz-blobs")


def analysis_holds(store_dir: Path, data: bytes, accepted: bool) -> dict[str, Any]:
    """analyse_photo on the stored original (no display copy: the path that decodes the original itself)."""
    digest = LocalBlobStore(store_dir).put_bytes(data)
    claim = Claim(observed_at=WHEN, received_at=WHEN, lat=CLAIM_LAT, lon=CLAIM_LON, accuracy_m=20)
    job = PhotoJob(BlobStoreConfig(str(store_dir)), "photo-1", digest, claim, MAX_PIXELS, 24.0, 500.0)
    result = timed(lambda: analyse_photo(job))
    PhotoVerification.model_validate({k: v for k, v in result.items() if k != "pdq_dihedral"})
    codes = {c["code"] for c in result["checks"]}
    if accepted:  # intake decoded it completely: verification must not call it undecodable
        assert "photo_undecodable" not in codes, result["checks"]
    return result


# --- the properties -------------------------------------------------------------------------------------------


@fuzz(examples=300)
@given(sample=still_photos(), display_max_side=st.sampled_from([2048, 40, 16]))
def test_fuzz_check_photo_on_jpeg_png_webp(sample: Sample, display_max_side: int) -> None:
    check_upload(sample.data, display_max_side)


@fuzz(examples=400)
@given(sample=odd_heics())
def test_fuzz_check_photo_on_heic_boxes(sample: Sample) -> None:
    outcome = check_upload(sample.data)
    if outcome.photo is not None and outcome.photo.content_type == "image/heic":
        # Within the pixel limit is what will be decoded, not only what the crop shows.
        assert all(
            b.size < 20 or width_height(sample.data, b) <= MAX_PIXELS
            for b in heif_boxes(sample.data)
            if b.kind == b"ispe"
        )
        later_display_copy(sample.data)


@fuzz(examples=150)
@given(sample=still_photos())
def test_fuzz_the_published_copy_on_jpeg_png_webp(sample: Sample) -> None:
    published_copy_holds(sample.data)


@fuzz(examples=150)
@given(sample=odd_heics())
def test_fuzz_the_published_copy_on_heic_boxes(sample: Sample) -> None:
    published_copy_holds(sample.data)


@fuzz(examples=300)
@given(sample=still_photos())
def test_fuzz_read_metadata_never_raises(sample: Sample) -> None:
    metadata_holds(sample.data)


@fuzz(examples=400)
@given(exif=hostile_exif(one_field_in=2))
def test_fuzz_read_metadata_on_hostile_values(exif: tuple[str, ExifModel]) -> None:
    """Denser: half of the fields verification reads are hostile, in a JPEG that is otherwise whole."""
    metadata_holds(with_app1(plain_jpeg(96, 72), exif[1].app1()))


@fuzz(examples=60)
@given(sample=odd_heics())
def test_fuzz_read_metadata_on_heic(sample: Sample) -> None:
    metadata_holds(sample.data)


@fuzz(examples=120)
@given(sample=still_photos())
def test_fuzz_analyse_photo_never_raises(store_dir: Path, sample: Sample) -> None:
    accepted = check_upload(sample.data).photo is not None
    analysis_holds(store_dir, sample.data, accepted)


@cache
def signed_seed() -> bytes:
    return sign_with_content_credentials(with_app1(plain_jpeg(96, 72), camera_model().app1()))


@fuzz(examples=150)
@given(data=st.data())
def test_fuzz_content_credentials_never_raise(data: st.DataObject) -> None:
    seed = signed_seed()
    manifest = next(at for at, marker in jpeg_segments(seed) if marker == 0xEB)  # APP11: the C2PA manifest store
    damage, mutated = data.draw(byte_damage(seed, focus=(manifest, manifest + 2000)))
    found = timed(lambda: read_content_credentials(mutated, "JPEG"))
    assert found.state in ("absent", "valid", "invalid", "unchecked"), damage
    event(f"content credentials: {found.state}")
    if mutated == signed_seed():
        assert found.state == "valid"


@fuzz(examples=300)
@given(
    sizes=st.lists(
        st.tuples(
            st.one_of(st.sampled_from([0, 1, 2, 7, 8, 9, 16, 2**31, 2**32 - 1]), st.integers(0, 64)),
            st.one_of(st.none(), st.sampled_from([0, 1, 15, 16, 17, 2**63, 2**64 - 1])),
        ),
        max_size=80,
    ),
    tail=st.binary(max_size=64),
)
def test_fuzz_heif_box_walk(sizes: list[tuple[int, int | None]], tail: bytes) -> None:
    """boxes_fill_file on box headers of every odd size: it answers (it never raises or reads on forever)."""
    data = (
        b"".join(
            struct.pack(">I", size) + b"free" + (struct.pack(">Q", large) if large is not None else b"")
            for size, large in sizes
        )
        + tail
    )
    with tempfile.TemporaryDirectory() as scratch:
        path = Path(scratch) / "upload"
        path.write_bytes(data)
        assert timed(lambda: boxes_fill_file(path)) in (True, False)


# --- what the fuzzer found, kept as plain regression tests ---------------------------------------------------


def analyse_bytes(tmp_path: Path, data: bytes) -> dict[str, Any]:
    return analysis_holds(tmp_path, data, accepted=True)


@pytest.mark.parametrize(
    "hostile",
    [
        rationals(DATETIME, (1, 0)),  # a date stored as a fraction: AttributeError
        rationals(THUMB_OFFSET, (0, 0), (0, 0)),  # a thumbnail offset as fractions: struct.error
    ],
)
def test_a_turned_photo_with_oddly_typed_tags_is_accepted_and_turned(tmp_path: Path, hostile: Entry) -> None:
    """Found: Pillow's exif_transpose writes the EXIF block again without the orientation, and that raises on
    these tags; intake answered 500 and verification called the photo undecodable. The display copy carries no
    EXIF, so only the pixels are turned now."""
    model = camera_model(0)
    data = with_app1(plain_jpeg(96, 72), replace(model, ifd0=(*model.ifd0, hostile)).app1())
    photo = check_upload(data).photo
    assert photo is not None
    with Image.open(io.BytesIO(photo.display_jpeg)) as display:
        assert display.size == (72, 96)  # orientation 6: turned upright
    assert "photo_decodes" in {c["code"] for c in analyse_bytes(tmp_path, data)["checks"]}


@pytest.mark.parametrize("orientation", range(1, 9))
def test_the_display_copy_is_turned_as_pillow_would(orientation: int) -> None:
    """The turn that replaced ImageOps.exif_transpose gives the same picture for every orientation."""
    from PIL import ImageChops, ImageOps

    image = Image.new("RGB", (96, 72), (200, 30, 30))
    image.paste((30, 200, 30), (0, 0, 48, 36))
    image.paste((30, 30, 200), (48, 36, 96, 72))
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=95, exif=ExifModel(ifd0=(short(ORIENTATION, orientation),)).app1())
    photo = check_upload(buffer.getvalue()).photo
    with Image.open(io.BytesIO(buffer.getvalue())) as original:
        expected = ImageOps.exif_transpose(original).convert("RGB")
    with Image.open(io.BytesIO(photo.display_jpeg)) as display:
        assert display.size == expected.size
        difference = ImageChops.difference(display.convert("RGB"), expected).getextrema()
    assert max(high for _, high in difference) < 40  # the same picture, up to JPEG's noise at the edges


def test_a_photo_one_pixel_wide_is_accepted(tmp_path: Path) -> None:
    """Found: a 1x4000 JPEG made intake ask Pillow for a reduced decode 0 pixels wide (ZeroDivisionError, a 500),
    and verification call it undecodable for the same reason and then for its hash image, 0 pixels wide too."""
    buffer = io.BytesIO()
    Image.new("RGB", (1, 4000), (90, 120, 150)).save(buffer, "JPEG")
    photo = check_upload(buffer.getvalue()).photo
    assert photo is not None and (photo.width, photo.height) == (1, 4000)
    assert "photo_decodes" in {c["code"] for c in analyse_bytes(tmp_path, buffer.getvalue())["checks"]}


def heic_cropped_to(width: int, height: int, ispe: tuple[int, int] | None = None) -> bytes:
    """The seed HEIC (64x48 coded) with its clean aperture ('clap') cropping it to width x height, and maybe
    its 'ispe' claiming another coded size."""
    data = bytearray(heic_seed())
    at = data.find(b"clap")
    data[at + 4 : at + 20] = struct.pack(">4I", width, 1, height, 1)
    if ispe is not None:
        at = data.find(b"ispe")
        data[at + 8 : at + 16] = struct.pack(">II", *ispe)
    return bytes(data)


def test_a_heic_cropped_small_is_held_to_the_pixels_it_decodes() -> None:
    """Found: the pixel limit was checked against the size after the crop, which is what Pillow reports; libheif
    decodes the whole coded image first. 16x16 shown, 64x64 decoded: over a limit of 1,000 pixels."""
    with tempfile.TemporaryDirectory() as scratch:
        upload = Path(scratch) / "upload"
        upload.write_bytes(heic_cropped_to(16, 16))
        with Image.open(upload) as im:
            assert im.size == (16, 16)
        with pytest.raises(ServiceError) as refused:
            check_photo(upload, max_pixels=1000, display_max_side=2048, index=0)
    assert refused.value.status_code == 413 and refused.value.error == "photo_too_many_pixels"
    assert "64x64" in refused.value.detail and "64x64" in refused.value.detail_nl
    assert check_upload(heic_cropped_to(64, 48, ispe=(2**31, 1))).refused.error == "photo_too_many_pixels"


def test_a_heic_over_libheifs_own_limit_is_unreadable_not_an_error() -> None:
    """Found: libheif's security limit (a coded size of 2^31 x 1) came out of pillow-heif as RuntimeError,
    which the display-copy job does not expect: it would have retried the photo for ever."""
    with pytest.raises(PhotoUnreadable):
        display_copy_of_blob(
            BytesStore(heic_cropped_to(64, 48, ispe=(2**31, 1))),
            "digest",  # type: ignore[arg-type]
            2048,
            Path(tempfile.gettempdir()),
        )


@pytest.mark.parametrize(
    ("taken", "offset"),
    [("0001:01:01 00:00:00", None), ("0001:01:01 00:00:00", "+14:00"), ("9999:12:31 23:59:59", "-14:00")],
)
def test_a_capture_time_at_the_end_of_the_calendar_is_no_time(tmp_path: Path, taken: str, offset: str | None) -> None:
    """Found: a capture time in year 1 (or 9999 with an offset) overflowed in the time checks, outside
    analyse_photo's guard: the verification job failed until it was given up."""
    model = camera_model(0)
    exif = tuple(e for e in model.exif if e.tag not in (DATETIME_ORIGINAL, OFFSET_ORIGINAL))
    exif += (text(DATETIME_ORIGINAL, taken), *((text(OFFSET_ORIGINAL, offset),) if offset else ()))
    data = with_app1(plain_jpeg(96, 72), replace(model, exif=exif).app1())
    meta = metadata_holds(data)
    assert meta is not None and meta.captured_at is None and meta.make == "Google"
    assert "capture_time_plausible" not in {c["code"] for c in analyse_bytes(tmp_path, data)["checks"]}


# --- the seeds themselves are sound, so the fuzzer mutates real photos ------------------------------------------


def test_the_unmutated_seeds_are_accepted_and_read() -> None:
    for data in (
        with_app1(plain_jpeg(96, 72), camera_model(3).app1()),
        png_with(camera_model().app1()[6:]),
        heic_seed(),
    ):
        assert check_upload(data).photo is not None
    meta = metadata_holds(with_app1(plain_jpeg(96, 72), camera_model().app1()))
    assert meta is not None and meta.make == "Google" and meta.captured_at is not None
    assert meta.gps_lat is not None and abs(meta.gps_lat - CLAIM_LAT) < 1e-6 and meta.gps_time is not None
    assert heif_boxes(heic_seed()) and any(b.kind == b"ispe" for b in heif_boxes(heic_seed()))
