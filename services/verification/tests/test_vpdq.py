"""Near-duplicate video by frame hashes (verification.vpdq) on real clips made with PyAV: the same recording
passed on (encoded again, smaller) is found, a trimmed copy is found and called trimmed, another recording is not."""

from __future__ import annotations

from pathlib import Path

import pytest

from burgermelding_shared.videos import VideoLimits
from tests.videos import phone_clip, re_encoded, write
from verification.vpdq import compare, read_video

LIMITS = VideoLimits()


@pytest.fixture(scope="module")
def original() -> bytes:
    return phone_clip(21, seconds=10.0, size=(640, 360))


def hashes(tmp_path: Path, name: str, data: bytes):
    return read_video(write(tmp_path / name, data), LIMITS).frames


def test_about_one_key_frame_a_second_is_hashed(tmp_path: Path, original: bytes) -> None:
    frames = hashes(tmp_path, "original", original)
    assert [round(f.at) for f in frames] == list(range(10))
    assert all(f.quality >= 50 for f in frames)  # a recording of a scene, not a dark pocket
    # Key frames twice a second: still one hash a second. Every two seconds: one each two seconds.
    dense = hashes(tmp_path, "dense", phone_clip(21, seconds=10.0, size=(640, 360), key_frame_seconds=0.5))
    assert [round(f.at) for f in dense] == list(range(10))
    sparse = hashes(tmp_path, "sparse", phone_clip(21, seconds=10.0, size=(640, 360), key_frame_seconds=2.0))
    assert [round(f.at) for f in sparse] == [0, 2, 4, 6, 8]


def test_the_same_recording_passed_on_is_a_near_duplicate(tmp_path: Path, original: bytes) -> None:
    passed_on = re_encoded(original, size=(480, 270))
    match = compare(hashes(tmp_path, "original", original), hashes(tmp_path, "passed-on", passed_on))
    assert match.near_duplicate and not match.trimmed
    assert match.share_of_first >= 0.9 and match.share_of_second >= 0.9


def test_a_trimmed_copy_is_found_and_called_trimmed(tmp_path: Path, original: bytes) -> None:
    trimmed = re_encoded(original, start=3.0, end=7.0)
    match = compare(hashes(tmp_path, "trimmed", trimmed), hashes(tmp_path, "original", original))
    assert match.near_duplicate and match.trimmed
    assert match.share_of_first >= 0.8  # the trimmed clip's frames are all in the original
    assert match.share_of_second <= 0.6  # the original's are not all in the trimmed clip


def test_another_recording_is_not_a_near_duplicate(tmp_path: Path, original: bytes) -> None:
    other = phone_clip(22, seconds=10.0, size=(640, 360))
    match = compare(hashes(tmp_path, "original", original), hashes(tmp_path, "other", other))
    assert not match.near_duplicate
    assert match.share_of_first < 0.3 and match.share_of_second < 0.3
