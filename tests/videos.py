"""Video clips as phones record them, made with PyAV (FFmpeg's encoders) for the tests: a camera panning over a
scene of its own with sensor-like grain (so no two seeds are near-duplicates, and the codec works as on a real
recording), sound, a key frame every second, and the container metadata phones write: an iPhone's QuickTime
keys (`com.apple.quicktime.creationdate`, `...location.ISO6709`, make and model) or an Android's movie-header
time (the end of the recording) and `©xyz` place."""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta
from fractions import Fraction
from pathlib import Path
from typing import Any

from tests.helpers import make_scene

# What the container is called, the format FFmpeg writes it with, and the encoder for each codec.
ENCODERS = {"h264": "libx264", "hevc": "libx265", "vp8": "libvpx", "vp9": "libvpx-vp9", "av1": "libaom-av1"}
FORMATS = {"mp4": "mp4", "mov": "mov", "webm": "webm"}


def iso6709(lat: float, lon: float) -> str:
    return f"{lat:+08.4f}{lon:+09.4f}/"


def phone_clip(
    seed: int,
    *,
    seconds: float = 3.0,
    fps: int = 30,
    size: tuple[int, int] = (640, 360),
    codec: str = "h264",
    container: str = "mp4",
    phone: str = "android",
    place: tuple[float, float] | None = None,
    recorded_at: datetime | None = None,
    rotation: int = 0,
    audio: bool = True,
    key_frame_seconds: float = 1.0,
    preset: str = "ultrafast",
) -> bytes:
    """A clip as `phone` ("iphone" or "android") records it. `recorded_at` is when recording *started*; an
    Android writes the end in the movie header, an iPhone the start (and its own creationdate key). `preset`:
    x264's and x265's; "ultrafast" for the tests, slower ones code as a phone's encoder does (CABAC, B-frames)."""
    import av
    import numpy as np

    width, height = size
    scene = np.asarray(make_scene(seed, (width * 2, height)), dtype=np.int16)
    rng = np.random.default_rng(seed + 7)
    grain = rng.normal(0.0, 4.0, (height, width, 3)).astype(np.int16)
    frames = max(1, int(seconds * fps))
    options = {"movflags": "use_metadata_tags"} if container == "mov" else {}
    buffer = io.BytesIO()
    with av.open(buffer, "w", format=FORMATS[container], options=options) as out:
        if recorded_at is not None:
            if phone == "iphone":
                local = recorded_at.astimezone(datetime.now().astimezone().tzinfo)
                out.metadata["com.apple.quicktime.creationdate"] = local.strftime("%Y-%m-%dT%H:%M:%S%z")
                out.metadata["creation_time"] = _zulu(recorded_at)
            else:
                out.metadata["creation_time"] = _zulu(recorded_at + timedelta(seconds=seconds))
        if place is not None:
            key = "com.apple.quicktime.location.ISO6709" if phone == "iphone" and container == "mov" else "location"
            out.metadata[key] = iso6709(*place)
        if phone == "iphone" and container == "mov":
            out.metadata["com.apple.quicktime.make"] = "Apple"
            out.metadata["com.apple.quicktime.model"] = "iPhone 15"
        video = out.add_stream(ENCODERS[codec], rate=fps)
        video.width, video.height, video.pix_fmt = width, height, "yuv420p"
        video.codec_context.gop_size = max(1, int(key_frame_seconds * fps))
        if codec == "h264":
            video.codec_context.options = {"preset": preset}
        elif codec == "hevc":
            video.codec_context.options = {"preset": preset, "x265-params": "log-level=none"}
        elif codec in {"vp8", "vp9"}:
            video.codec_context.options = {"deadline": "realtime", "cpu-used": "8"}
        if rotation:
            video.set_display_rotation(rotation)
        sound = Sound(av, out, "libopus" if container == "webm" else "aac") if audio else None
        for index in range(frames):
            shift = int(index * width / max(frames, 1))  # the camera pans across the scene once
            picture = np.clip(scene[:, shift : shift + width] + np.roll(grain, index * 13, axis=1), 0, 255)
            frame = av.VideoFrame.from_ndarray(picture.astype(np.uint8), format="rgb24")
            for packet in video.encode(frame):
                out.mux(packet)
            if sound is not None:
                sound.until((index + 1) / fps)
        for packet in video.encode():
            out.mux(packet)
        if sound is not None:
            sound.close()
    return buffer.getvalue()


def _zulu(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.000000Z")


class Sound:
    """A quiet tone, encoded alongside the picture (interleaved, as a phone writes it)."""

    rate, chunk = 48000, 960

    def __init__(self, av: Any, out: Any, encoder: str) -> None:
        self.av, self.out, self.written = av, out, 0
        self.stream = out.add_stream(encoder, rate=self.rate)

    def until(self, seconds: float) -> None:
        import numpy as np

        while self.written + self.chunk <= seconds * self.rate:
            t = (np.arange(self.chunk) + self.written) / self.rate
            samples = (0.1 * np.sin(2 * np.pi * 440 * t)).astype(np.float32).reshape(1, -1)
            frame = self.av.AudioFrame.from_ndarray(samples, format="fltp", layout="mono")
            frame.sample_rate, frame.pts = self.rate, self.written
            self.written += self.chunk
            for packet in self.stream.encode(frame):
                self.out.mux(packet)

    def close(self) -> None:
        for packet in self.stream.encode():
            self.out.mux(packet)


def re_encoded(
    clip: bytes, *, start: float = 0.0, end: float | None = None, size: tuple[int, int] | None = None
) -> bytes:
    """The clip as someone passes it on: cut to [start, end) seconds, maybe scaled, encoded again (a phone's
    editor or a messaging app), without its metadata."""
    import av

    buffer = io.BytesIO()
    with av.open(io.BytesIO(clip)) as source, av.open(buffer, "w", format="mp4") as out:
        stream = source.streams.video[0]
        width, height = size or (stream.codec_context.width, stream.codec_context.height)
        fps = round(float(stream.average_rate or 30))
        video = out.add_stream("libx264", rate=fps)
        video.width, video.height, video.pix_fmt = width, height, "yuv420p"
        video.codec_context.options = {"preset": "ultrafast", "crf": "30"}
        video.codec_context.gop_size = fps
        written = 0
        for frame in source.decode(stream):
            moment = float(frame.time or 0.0)
            if moment < start or (end is not None and moment >= end):
                continue
            picture = frame.reformat(width=width, height=height, format="yuv420p")
            picture.pts, picture.time_base = written, Fraction(1, fps)
            written += 1
            for packet in video.encode(picture):
                out.mux(packet)
        for packet in video.encode():
            out.mux(packet)
    return buffer.getvalue()


def write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path
