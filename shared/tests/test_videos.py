"""Videos from outside (burgermelding_shared.videos): every kind a phone or a browser records is read in the
limited child, its container metadata taken out, and a poster and a copy without metadata made; whatever a
phone does not make is refused with a reason, and nothing is left beside the upload when it is."""

from __future__ import annotations

import io
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import av
import pytest
from PIL import Image

from burgermelding_shared.blobstore import sha256_file
from burgermelding_shared.errors import ServiceError
from burgermelding_shared.video_worker import parse_iso6709, parse_time
from burgermelding_shared.videos import VideoLimits, check_video, sniff_video_type
from tests.helpers import make_jpeg
from tests.videos import Sound, phone_clip, write

LIMITS = VideoLimits()
UTRECHT = (52.0907, 5.1214)
STARTED = datetime(2026, 12, 7, 19, 30, 5, tzinfo=UTC)
# What a copy must not carry: the place, the phone, the encoder's settings (x264 writes its own in an SEI).
IDENTIFYING = (b"52.09", b"005.12", b"Apple", b"iPhone", b"x264 - core", b"x265", b"com.apple")


def checked(tmp_path: Path, data: bytes, limits: VideoLimits = LIMITS, name: str = "upload"):
    return check_video(write(tmp_path / name, data), limits=limits, poster_max_side=640)


def frames_in(path: Path) -> int:
    with av.open(str(path)) as container:
        return sum(1 for _ in container.decode(video=0))


@pytest.mark.parametrize(
    ("phone", "container", "codec", "media_type", "source"),
    [
        ("android", "mp4", "h264", "video/mp4", "movie_header_end"),
        ("iphone", "mov", "h264", "video/quicktime", "quicktime_creationdate"),
        ("iphone", "mov", "hevc", "video/quicktime", "quicktime_creationdate"),
        ("android", "mp4", "hevc", "video/mp4", "movie_header_end"),
        ("browser", "webm", "vp9", "video/webm", None),
        ("browser", "webm", "vp8", "video/webm", None),
    ],
)
def test_what_phones_and_browsers_record_is_read_and_copied_without_metadata(
    tmp_path: Path, phone: str, container: str, codec: str, media_type: str, source: str | None
) -> None:
    with_metadata = container != "webm"  # a browser's MediaRecorder writes neither time nor place
    data = phone_clip(
        3,
        seconds=2.0,
        codec=codec,
        container=container,
        phone=phone,
        place=UTRECHT if with_metadata else None,
        recorded_at=STARTED if with_metadata else None,
    )
    video = checked(tmp_path, data)
    assert video.content_type == media_type
    assert video.sha256 == sha256_file(tmp_path / "upload") and (tmp_path / "upload").read_bytes() == data
    facts = video.facts
    assert (facts.video_codec, facts.width, facts.height) == (codec, 640, 360)
    assert facts.duration_seconds == pytest.approx(2.0, abs=0.1)
    assert facts.audio_kept and facts.audio_codec == ("opus" if container == "webm" else "aac")
    assert facts.recorded_source == source
    if with_metadata:
        # Both readings of the movie header (the start on an iPhone, the end on an Android) find the real start.
        assert facts.recorded_start is not None and facts.recorded_end is not None
        assert abs((facts.recorded_start - STARTED).total_seconds()) <= 1
        assert (facts.recorded_end - facts.recorded_start).total_seconds() == pytest.approx(2.0, abs=0.1)
        assert (facts.place_lat, facts.place_lon) == pytest.approx(UTRECHT)
    else:
        assert facts.recorded_start is None and facts.place_lat is None
    # The poster: a JPEG with no metadata at all.
    poster = Image.open(io.BytesIO(video.display_jpeg))
    assert poster.format == "JPEG" and poster.size == (640, 360) and not poster.getexif()
    # The copy: every frame of the original, nothing that names the place, the phone or the encoder.
    copy = video.playable_path.read_bytes()
    assert video.playable_type == ("video/webm" if container == "webm" else "video/mp4")
    assert video.playable_sha256 == sha256_file(video.playable_path)
    assert frames_in(video.playable_path) == frames_in(tmp_path / "upload") == 60
    for marker in IDENTIFYING:
        assert marker not in copy, marker
    assert any(marker in data for marker in IDENTIFYING) == (container != "webm")  # the test can see them
    with av.open(str(video.playable_path)) as played:
        assert not {key for key in played.metadata if "location" in key or "creation" in key or "apple" in key}
        if codec == "hevc":
            assert played.streams.video[0].codec_context.codec_tag == "hvc1"  # what Safari plays
    # Made twice, the copy is the same bytes (bit-exact: the same video is never two pieces of evidence).
    again = checked(tmp_path, data, name="again")
    assert again.playable_sha256 == video.playable_sha256


def test_a_portrait_video_is_shown_upright(tmp_path: Path) -> None:
    data = phone_clip(4, seconds=1.0, rotation=-90, size=(320, 180))
    video = checked(tmp_path, data)
    assert (video.facts.width, video.facts.height, video.facts.rotation) == (180, 320, -90.0)
    assert Image.open(io.BytesIO(video.display_jpeg)).size == (180, 320)
    with av.open(str(video.playable_path)) as played:
        assert next(played.decode(video=0)).rotation == -90  # the player turns it as the phone meant


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("+52.0907+005.1214+003.000/", (52.0907, 5.1214)),
        ("-33.8688+151.2093/", (-33.8688, 151.2093)),
        ("+52.0907+005.1214CRSWGS_84/", (52.0907, 5.1214)),
        ("+00.0000+000.0000/", None),  # a phone without a fix writes zeros
        ("+95.0000+005.0000/", None),
        ("52.09,5.12", None),
        ("+52.09" * 100, None),
    ],
)
def test_places_as_phones_write_them(text: str, expected: tuple[float, float] | None) -> None:
    assert parse_iso6709(text) == (pytest.approx(expected) if expected else None)


def test_dates_that_are_not_recordings_are_ignored() -> None:
    assert parse_time("1904-01-01T00:00:00.000000Z") is None  # QuickTime's zero
    assert parse_time("2026-12-07T21:00:00+0100") == datetime(2026, 12, 7, 20, 0, tzinfo=UTC)
    assert parse_time("2026-12-07T20:00:00") is None  # no offset: whose clock?
    assert parse_time("yesterday") is None


def refused(tmp_path: Path, data: bytes, limits: VideoLimits = LIMITS) -> ServiceError:
    with pytest.raises(ServiceError) as caught:
        checked(tmp_path, data, limits)
    assert 400 <= caught.value.status_code < 500 and caught.value.detail_nl
    assert sorted(p.name for p in tmp_path.iterdir()) == ["upload"], "something was left beside the upload"
    return caught.value


def audio_only() -> bytes:
    buffer = io.BytesIO()
    with av.open(buffer, "w", format="mp4") as out:
        sound = Sound(av, out, "aac")
        sound.until(1.0)
        sound.close()
    return buffer.getvalue()


def old_codec_clip() -> bytes:
    """MPEG-4 Part 2 in an MP4: a real video, but no phone of today records it and no need to accept it."""
    buffer = io.BytesIO()
    with av.open(buffer, "w", format="mp4") as out:
        stream = out.add_stream("mpeg4", rate=10)
        stream.width, stream.height, stream.pix_fmt = 64, 64, "yuv420p"
        for _ in range(10):
            for packet in stream.encode(av.VideoFrame(64, 64, "yuv420p")):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    return buffer.getvalue()


def test_what_no_phone_makes_is_refused_with_a_reason(tmp_path: Path) -> None:
    clip = phone_clip(5, seconds=3.0)
    assert refused(tmp_path, b"").error == "video_empty"
    assert refused(tmp_path, make_jpeg()).status_code == 415
    assert refused(tmp_path, b"\x00\x00\x00\x18ftypheic" + bytes(100)).error == "video_type_not_accepted"
    assert refused(tmp_path, clip[: len(clip) // 3]).error == "video_unreadable"
    assert refused(tmp_path, clip, replace(LIMITS, max_seconds=2.0)).error == "video_too_long"
    too_big = refused(tmp_path, clip, replace(LIMITS, max_side=320))
    assert (too_big.error, too_big.status_code) == ("video_too_many_pixels", 413)
    assert refused(tmp_path, clip, replace(LIMITS, max_bytes=1000)).error == "video_too_large"
    assert refused(tmp_path, audio_only()).error == "video_no_picture"
    assert refused(tmp_path, old_codec_clip()).error == "video_codec_not_accepted"


def test_a_reader_out_of_memory_or_time_is_an_unreadable_video_not_a_crash(tmp_path: Path) -> None:
    clip = phone_clip(6, seconds=1.0)
    # 40 MB of address space: not enough for Python and FFmpeg; the child dies, the caller gets a 422.
    assert refused(tmp_path, clip, replace(LIMITS, memory_mb=40)).error == "video_unreadable"
    assert refused(tmp_path, clip, replace(LIMITS, wall_seconds=0.01)).error == "video_unreadable"


def test_the_type_is_decided_by_the_bytes() -> None:
    assert sniff_video_type(phone_clip(7, seconds=0.5, container="webm", codec="vp8")[:64]) == "video/webm"
    assert sniff_video_type(phone_clip(7, seconds=0.5, container="mov", phone="iphone")[:64]) == "video/quicktime"
    assert sniff_video_type(b"\x1a\x45\xdf\xa3" + b"\x42\x82\x88matroska" + bytes(50)) is None  # not WebM
    assert sniff_video_type(make_jpeg()[:64]) is None
    assert sniff_video_type(b"\x00\x00\x00\x18ftypmif1") is None  # a HEIF still image


def test_android_end_of_recording_is_counted_back(tmp_path: Path) -> None:
    video = checked(tmp_path, phone_clip(8, seconds=2.0, phone="android", recorded_at=STARTED))
    assert video.facts.recorded_end == pytest.approx(STARTED + timedelta(seconds=2), abs=timedelta(seconds=1))
    assert video.facts.recorded_source == "movie_header_end"
