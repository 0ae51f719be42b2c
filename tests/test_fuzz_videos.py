"""The video sibling of the photo fuzzer (issue #33): everything that reads the bytes of an uploaded video, which
is `burgermelding_shared.videos.check_video` (intake's check and copy) and verification's frame hashes, both in
the limited child process `video_worker`.

Every input starts from a real clip (H.264 in an Android MP4 with place and time, HEVC and H.264 in an iPhone
MOV with Apple's keys, VP8 and VP9 in a browser's WebM, a portrait clip) and is then broken the way an attacker
or a bad network breaks it: ISO boxes whose sizes say 0, 1 (64-bit), 7, more than the file or a few bytes off;
sample tables (stsz, stco, stts, stsc, stss) claiming billions of entries; movie and track durations of years;
sample entries claiming 65535 x 65535 pixels; WebM elements of unknown or absurd size; the first bytes of one
type with the body of another; then plain byte damage (cut off anywhere, bits flipped, bytes inserted or removed).

The standard:
- `check_video` returns a video whose poster is a JPEG and whose copy plays (at least one frame decodes), or
  refuses it with a `ServiceError`: a 4xx, a reason, English and Dutch. Any other exception would be a 500.
  A refused file leaves nothing beside the upload.
- verification's `read_video` returns hashes or refuses the same way (4xx), never anything else.
- nothing takes long: the child has 10 s of CPU and 20 s of wall time; a hang or a blow-up ends there.

Reproducible (derandomized, as the photo fuzzer); BM_FUZZ_SCALE multiplies the cases.
"""

from __future__ import annotations

import struct
import tempfile
import time
from dataclasses import replace
from functools import cache
from pathlib import Path

import av
import pytest
from hypothesis import event, given
from hypothesis import strategies as st
from PIL import Image

from burgermelding_shared.errors import ServiceError
from burgermelding_shared.videos import CheckedVideo, VideoLimits, check_video
from tests.fuzzing import Sample, byte_damage, fuzz
from tests.videos import phone_clip
from verification.vpdq import read_video

LIMITS = replace(VideoLimits(), cpu_seconds=10, wall_seconds=20.0)
MAX_SECONDS = 25.0  # per example, the child's wall limit and some: only a hang outside the child comes near


@cache
def clips() -> dict[str, bytes]:
    from datetime import UTC, datetime

    when = datetime(2026, 12, 7, 19, 30, tzinfo=UTC)
    place = (52.0907, 5.1214)
    return {
        "android-h264": phone_clip(11, seconds=2.0, size=(320, 240), place=place, recorded_at=when),
        "iphone-hevc": phone_clip(
            12,
            seconds=2.0,
            size=(320, 240),
            codec="hevc",
            container="mov",
            phone="iphone",
            place=place,
            recorded_at=when,
        ),
        "iphone-h264": phone_clip(13, seconds=2.0, size=(320, 240), container="mov", phone="iphone", place=place),
        "browser-vp9": phone_clip(14, seconds=2.0, size=(320, 240), codec="vp9", container="webm"),
        "browser-vp8": phone_clip(15, seconds=2.0, size=(320, 240), codec="vp8", container="webm", audio=False),
        "portrait": phone_clip(16, seconds=1.0, size=(320, 240), rotation=90),
    }


# --- ISO boxes -----------------------------------------------------------------------------------------------

CONTAINERS = {b"moov", b"trak", b"mdia", b"minf", b"stbl", b"udta", b"edts", b"dinf", b"mvex", b"meta"}
TABLES = {b"stsz": 8, b"stco": 4, b"co64": 4, b"stts": 4, b"stsc": 4, b"stss": 4, b"ctts": 4}


def iso_boxes(data: bytes) -> list[tuple[int, int, bytes]]:
    """(offset, size, type) of every box we can find, top level and inside the usual containers."""
    found: list[tuple[int, int, bytes]] = []
    pending = [(0, len(data))]
    while pending and len(found) < 400:
        offset, end = pending.pop()
        while offset + 8 <= end:
            size, kind = struct.unpack(">I4s", data[offset : offset + 8])
            header = 8
            if size == 1 and offset + 16 <= end:
                size, header = struct.unpack(">Q", data[offset + 8 : offset + 16])[0], 16
            elif size == 0:
                size = end - offset
            if size < header or offset + size > end:
                break
            found.append((offset, size, kind))
            if kind in CONTAINERS:
                pending.append((offset + header + (4 if kind == b"meta" else 0), offset + size))
            elif kind == b"stsd":
                pending.append((offset + 16, offset + size))
            offset += size
    return found


def patch(data: bytes, at: int, new: bytes) -> bytes:
    return data[:at] + new + data[at + len(new) :]


@st.composite
def box_surgery(draw: st.DrawFn, data: bytes) -> tuple[str, bytes]:
    boxes = iso_boxes(data)
    notes = []
    for _ in range(draw(st.integers(1, 3))):
        offset, size, kind = draw(st.sampled_from(boxes))
        name = kind.decode("latin-1")
        how = draw(st.sampled_from(["size", "table", "duration", "dimensions", "swap", "repeat"]))
        if how == "size":
            new = draw(st.sampled_from([0, 1, 7, 8, 0xFFFFFFFF, size + 1, size - 1, size * 1000]))
            data = patch(data, offset, struct.pack(">I", new & 0xFFFFFFFF))
            notes.append(f"{name}.size={new}")
        elif how == "table" and kind in TABLES:
            entries = draw(st.sampled_from([0, 1, 0x7FFFFFFF, 0xFFFFFFFF, 1_000_000]))
            data = patch(data, offset + 8 + TABLES[kind], struct.pack(">I", entries))
            notes.append(f"{name}.entries={entries}")
        elif how == "duration" and kind in {b"mvhd", b"tkhd", b"mdhd"}:
            # version 0: after version/flags, two dates (and a track id in tkhd), then the duration
            at = offset + 8 + 4 + 8 + (8 if kind == b"tkhd" else 4)
            data = patch(data, at, struct.pack(">I", draw(st.sampled_from([0, 0xFFFFFFFF, 0x7FFFFFFF]))))
            notes.append(f"{name}.duration")
        elif how == "dimensions" and kind in {b"avc1", b"hvc1", b"hev1", b"tkhd"}:
            at = offset + 8 + 24 if kind != b"tkhd" else offset + size - 8
            width = draw(st.sampled_from([0, 1, 0xFFFF, 16384]))
            fmt = ">HH" if kind != b"tkhd" else ">II"
            data = patch(data, at, struct.pack(fmt, width, width))
            notes.append(f"{name}.dimensions={width}")
        elif how == "swap":
            data = patch(data, offset + 4, draw(st.sampled_from([b"moov", b"mdat", b"free", b"stsd", b"trak"])))
            notes.append(f"{name}.type")
        else:
            data = data[: offset + size] + data[offset : offset + size] + data[offset + size :]
            notes.append(f"{name}.repeated")
    return ", ".join(notes), data


@st.composite
def ebml_surgery(draw: st.DrawFn, data: bytes) -> tuple[str, bytes]:
    """WebM: sizes of unknown length (0x01FFFFFFFFFFFFFF), absurd lengths and zeroed lengths, near the headers."""
    notes = []
    for _ in range(draw(st.integers(1, 3))):
        at = draw(st.integers(4, min(len(data) - 8, 400)))
        new = draw(st.sampled_from([b"\x01\xff\xff\xff\xff\xff\xff\xff", b"\x08\x00\x00\x00\x00", b"\x80", b"\xff"]))
        data = patch(data, at, new)
        notes.append(f"ebml@{at}")
    return ", ".join(notes), data


@st.composite
def hostile_videos(draw: st.DrawFn) -> Sample:
    name = draw(st.sampled_from(sorted(clips())))
    data = clips()[name]
    notes = [name]
    if draw(st.booleans()):
        recipe, data = draw(ebml_surgery(data) if "browser" in name else box_surgery(data))
        notes.append(recipe)
    if draw(st.booleans()) or len(notes) == 1:
        recipe, data = draw(byte_damage(data, focus=(0, 4000)))
        if recipe:
            notes.append(recipe)
    if draw(st.integers(0, 9)) == 0:  # another type's first bytes on a video, or a video's on something else
        data = draw(st.sampled_from([b"\xff\xd8\xff\xe0", b"\x1a\x45\xdf\xa3"])) + data[4:]
        notes.append("magic")
    return Sample(", ".join(notes), data)


def judged(sample: Sample) -> None:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "upload"
        path.write_bytes(sample.data)
        started = time.monotonic()
        try:
            video = check_video(path, limits=LIMITS, poster_max_side=320)
        except ServiceError as refusal:
            assert 400 <= refusal.status_code < 500 and refusal.detail and refusal.detail_nl, refusal
            assert sorted(p.name for p in Path(folder).iterdir()) == ["upload"]
            event(f"refused: {refusal.error}")
        else:
            plays(video)
            event("accepted")
        assert time.monotonic() - started < MAX_SECONDS


def plays(video: CheckedVideo) -> None:
    import io

    assert Image.open(io.BytesIO(video.display_jpeg)).format == "JPEG"
    with av.open(str(video.playable_path)) as copy:
        assert next(copy.decode(video=0), None) is not None


@fuzz(examples=60)
@given(sample=hostile_videos())
def test_fuzz_check_video(sample: Sample) -> None:
    judged(sample)


@fuzz(examples=20)
@given(sample=hostile_videos())
def test_fuzz_read_video(sample: Sample) -> None:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "upload"
        path.write_bytes(sample.data)
        started = time.monotonic()
        try:
            frames = read_video(path, LIMITS).frames
        except ServiceError as refusal:
            assert 400 <= refusal.status_code < 500 and refusal.detail_nl
            event(f"refused: {refusal.error}")
        else:
            assert frames and all(len(f.pdq) == 32 and 0 <= f.quality <= 100 for f in frames)
            event("hashed")
        assert time.monotonic() - started < MAX_SECONDS


@pytest.mark.parametrize("name", ["android-h264", "iphone-hevc", "browser-vp9", "portrait"])
def test_the_fuzzers_clips_are_accepted_whole(name: str) -> None:
    """The starting points are valid (else every case would be a refusal and the fuzzer would prove little)."""
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "upload"
        path.write_bytes(clips()[name])
        plays(check_video(path, limits=LIMITS, poster_max_side=320))
