"""Near-duplicate video by frame hashes, after Meta's vPDQ: a PDQ hash of about one frame a second, and two videos
compared by the share of each one's frames that have a close frame in the other.

Only key frames are decoded (phones put one every second or two), each alone, in the limited child process
that reads every video (`burgermelding_shared.video_worker`); every other frame is skipped undecoded, which
is what keeps the cost near the bare decode of those key frames.

Matching as vPDQ does: frames of quality below 50 (flat, dark, blurred) are left out on both sides, a frame
matches when some frame of the other video is within Hamming distance 31 of it, and each side's share of
matching frames is reported. A re-upload matches about 100% both ways; a trimmed copy matches about 100% of
its own frames but only its part of the original's, so containment (the shorter clip's share) is the test:
at least 80% of the frames of either one found in the other.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from burgermelding_shared.videos import VideoFacts, VideoLimits, run_worker

QUALITY_FLOOR = 50
MATCH_DISTANCE = 31
CONTAINED_SHARE = 0.8
FRAME_INTERVAL_SECONDS = 1.0
HASH_SIDE = 256  # PDQ reduces to 64x64 itself: four times that is plenty, at a sixteenth of 1080p's pixels


@dataclass(frozen=True)
class FrameHash:
    at: float  # seconds into the video
    pdq: bytes  # 32 bytes
    quality: int


@dataclass(frozen=True)
class VideoMatch:
    share_of_first: float  # of the first video's usable frames, the share found in the second
    share_of_second: float

    @property
    def near_duplicate(self) -> bool:
        return max(self.share_of_first, self.share_of_second) >= CONTAINED_SHARE

    @property
    def trimmed(self) -> bool:
        """One is (about) a part of the other, not the same length."""
        return self.near_duplicate and min(self.share_of_first, self.share_of_second) < CONTAINED_SHARE


@dataclass(frozen=True)
class VideoReading:
    facts: VideoFacts
    frames: list[FrameHash]


def read_video(path: Path, limits: VideoLimits) -> VideoReading:
    """What the container says about the video at `path`, and about one PDQ hash a second of its pictures.
    Raises ServiceError (4xx) for a video that cannot be read within the limits, as intake's check does.
    Blocking: run it in a worker thread or process."""
    request = {
        "op": "key_frames",
        "path": str(path.resolve()),
        "hasher": "verification.frame_pdq:frame_pdq",
        "interval_seconds": FRAME_INTERVAL_SECONDS,
        "side": HASH_SIDE,
    }
    answer = run_worker(request, limits)
    frames = [
        FrameHash(at=float(frame["at"]), pdq=bytes.fromhex(frame["value"][0]), quality=int(frame["value"][1]))
        for frame in answer["frames"]
    ]
    return VideoReading(VideoFacts.from_worker(answer["facts"]), frames)


def pack(frames: list[FrameHash]) -> bytes:
    """Frame hashes as stored: per frame its PDQ (32 bytes) and its quality (1 byte), in order."""
    return b"".join(frame.pdq + bytes([max(0, min(100, frame.quality))]) for frame in frames)


def unpack(data: bytes) -> list[FrameHash]:
    return [
        FrameHash(at=float(i), pdq=data[o : o + 32], quality=data[o + 32])
        for i, o in enumerate(range(0, len(data) - 32, 33))
    ]


def _usable(frames: list[FrameHash]) -> np.ndarray:
    kept = [np.frombuffer(f.pdq, dtype=np.uint8) for f in frames if f.quality >= QUALITY_FLOOR]
    return np.unpackbits(np.array(kept, dtype=np.uint8), axis=1) if kept else np.zeros((0, 256), dtype=np.uint8)


def _share_found(query: np.ndarray, other: np.ndarray) -> float:
    if len(query) == 0 or len(other) == 0:
        return 0.0
    distances = (query[:, None, :] != other[None, :, :]).sum(axis=2)  # every pair: 300 x 300 frames is 23 MB
    return float((distances.min(axis=1) <= MATCH_DISTANCE).mean())


def compare(first: list[FrameHash], second: list[FrameHash]) -> VideoMatch:
    a, b = _usable(first), _usable(second)
    return VideoMatch(share_of_first=round(_share_found(a, b), 3), share_of_second=round(_share_found(b, a), 3))
