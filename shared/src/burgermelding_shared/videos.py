"""Videos from outside, for the whole suite: decide the type from the bytes, read the file only in a limited child
process (`video_worker`), and make what may be shown: a poster frame and a playable copy without metadata.

As with photos, the original is kept byte for byte (its SHA-256 is its key) as evidence, and only the copy is
ever shown. The copy is remuxed, not re-encoded: the same coded pictures in a fresh MP4 or WebM without the
container's date, place, device and encoder names, and without the H.264/HEVC SEI messages. Remuxing costs
milliseconds where re-encoding would cost a core for about as long as the clip plays.

Limits come before decoding: the size of the upload (intake's body limit), then in the child the number of
streams, the codec, the picture size, the duration the container declares and the one the packets show, and
CPU time and memory for the whole child. A hostile file therefore ends in a refusal (4xx) within seconds.
"""

from __future__ import annotations

import atexit
import contextlib
import functools
import hashlib
import json
import logging
import os
import select
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime
from pathlib import Path
from typing import Any

from burgermelding_shared.blobstore import BlobStore, copy_verified, sha256_file
from burgermelding_shared.errors import ServiceError
from burgermelding_shared.images import CheckedPhoto

# Major brands of the ISO/QuickTime files phones and cameras record (iPhone: "qt  "; Android: "isom", "mp42";
# older Androids: 3GPP). The HEIF brands (a still image) are images.py's.
_MP4_BRANDS = {
    b"isom", b"iso2", b"iso4", b"iso5", b"iso6", b"mp41", b"mp42", b"avc1", b"M4V ", b"3gp4", b"3gp5", b"3gp6",
    b"3g2a", b"MSNV", b"dash",
}  # fmt: skip
VIDEO_TYPES = ("video/mp4", "video/quicktime", "video/webm")
WORKER_MODULE = "burgermelding_shared.video_worker"
log = logging.getLogger(__name__)


def sniff_video_type(head: bytes) -> str | None:
    """The video type the first bytes prove (at least the first 64), or None."""
    if head[4:8] == b"ftyp":
        brand = head[8:12]
        if brand == b"qt  ":
            return "video/quicktime"
        if brand in _MP4_BRANDS:
            return "video/mp4"
        return None
    if head.startswith(b"\x1a\x45\xdf\xa3") and b"\x42\x82\x84webm" in head[:64]:  # EBML, DocType "webm"
        return "video/webm"
    return None


@dataclass(frozen=True)
class VideoLimits:
    max_bytes: int = 200 * 1024 * 1024
    max_seconds: float = 300.0  # five minutes: what a witness films of an incident, not a stream
    max_side: int = 4096  # a phone's 4K is 3840 x 2160
    max_pixels: int = 4096 * 2304
    max_streams: int = 8  # an iPhone adds a few timed-metadata tracks to the picture and the sound
    max_packets: int = 300 * 240 * 2  # five minutes at 240 frames a second, and the sound's packets
    cpu_seconds: int = 60
    memory_mb: int = 2048
    wall_seconds: float = 120.0

    def for_worker(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class VideoFacts:
    """What the container says (never trusted as proof: checked against the report like a photo's EXIF)."""

    container: str  # mp4, quicktime or webm
    video_codec: str
    audio_codec: str | None
    audio_kept: bool
    width: int  # as shown (after the rotation)
    height: int
    rotation: float
    duration_seconds: float
    frame_rate: float | None
    recorded_start: datetime | None = None
    recorded_end: datetime | None = None
    recorded_source: str | None = None  # which field the times come from (see video_worker.recorded_when)
    place_lat: float | None = None
    place_lon: float | None = None
    place_source: str | None = None

    @classmethod
    def from_worker(cls, answer: dict[str, Any]) -> VideoFacts:
        recorded = answer.get("recorded") or {}
        place = answer.get("place") or {}
        return cls(
            container=answer["container"],
            video_codec=answer["video_codec"],
            audio_codec=answer["audio_codec"],
            audio_kept=answer["audio_kept"],
            width=int(answer["width"]),
            height=int(answer["height"]),
            rotation=float(answer["rotation"]),
            duration_seconds=float(answer["duration_seconds"]),
            frame_rate=answer["frame_rate"],
            recorded_start=datetime.fromisoformat(recorded["start"]) if recorded else None,
            recorded_end=datetime.fromisoformat(recorded["end"]) if recorded else None,
            recorded_source=recorded.get("source"),
            place_lat=place.get("lat"),
            place_lon=place.get("lon"),
            place_source=place.get("source"),
        )


@dataclass
class CheckedVideo:
    """A video that passed intake's check. It answers to a checked photo's names (sha256, content_type,
    size_bytes, width, height, display_jpeg, display_sha256), the poster being its display copy, so that the
    code storing and recording media takes both; `playable_*` is what only a video has."""

    path: Path  # the original, unaltered
    sha256: str
    content_type: str
    size_bytes: int
    facts: VideoFacts
    display_jpeg: bytes  # the poster: a JPEG of the first key frame, upright, no metadata
    playable_path: Path  # the playable copy without metadata (in the same folder as the original)
    playable_type: str
    playable_sha256: str = field(default="")
    playable_codecs: str | None = None  # RFC 6381, for a player to ask the browser (video_worker.codecs_of)
    kind: str = "video"

    @property
    def needs_compatible_copy(self) -> bool:
        return needs_compatible_copy(self.facts.video_codec)

    @property
    def width(self) -> int:
        return self.facts.width

    @property
    def height(self) -> int:
        return self.facts.height

    @functools.cached_property
    def display_sha256(self) -> str:
        return hashlib.sha256(self.display_jpeg).hexdigest()


# What a report's files become once checked: a photo, or a video (its poster standing in as the display copy).
CheckedMedia = CheckedPhoto | CheckedVideo


def refusal(code: str, en: str, nl: str, status: int = 422) -> ServiceError:
    return ServiceError(status, code, en, detail_nl=nl)


def unreadable(label_en: str, label_nl: str) -> ServiceError:
    return refusal(
        "video_unreadable",
        f"{label_en} is damaged or truncated and cannot be read",
        f"{label_nl} is beschadigd of onvolledig en kan niet worden gelezen",
    )


def stated_refusal(
    code: str, values: dict[str, Any], limits: VideoLimits, label_en: str = "the video", label_nl: str = "de video"
) -> ServiceError:
    """The refusal the reader stated (by a code and values), in words. Every video refusal's text is here."""
    match code:
        case "video_too_long":
            minutes = f"{limits.max_seconds / 60:g}"
            return refusal(
                "video_too_long",
                f"{label_en} is longer than {minutes} minutes",
                f"{label_nl} is langer dan {minutes} minuten",
                413,
            )
        case "video_too_many_pixels":
            size = f"{int(values.get('width', 0))}x{int(values.get('height', 0))}"
            return refusal(
                "video_too_many_pixels",
                f"{label_en} is {size} pixels, more than the limit of {limits.max_side} pixels a side",
                f"{label_nl} is {size} pixels, meer dan de limiet van {limits.max_side} pixels per zijde",
                413,
            )
        case "video_codec_not_accepted":
            codec = str(values.get("codec", "?"))[:40]
            return refusal(
                "video_codec_not_accepted",
                f"{label_en} is coded as {codec}; accepted are H.264, HEVC, AV1, VP8 and VP9",
                f"{label_nl} is gecodeerd als {codec}; toegestaan zijn H.264, HEVC, AV1, VP8 en VP9",
                415,
            )
        case "video_too_many_streams":
            streams = int(values.get("streams", 0))
            return refusal(
                "video_too_many_streams",
                f"{label_en} has {streams} streams, more than the {limits.max_streams} accepted",
                f"{label_nl} heeft {streams} stromen, meer dan de {limits.max_streams} toegestane",
            )
        case "video_no_picture":
            return refusal(
                "video_no_picture", f"{label_en} has no moving picture", f"{label_nl} bevat geen bewegend beeld"
            )
    return unreadable(label_en, label_nl)


class VideoReader:
    """This process's video reader (`video_worker`'s server), started on first use and again after it ended;
    each video is read in a child it forks, under the limits of that request. Safe to use from many threads."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._process: subprocess.Popen[bytes] | None = None
        self._folder: str | None = None
        self._owner = 0  # the pid that started it: a forked service process starts its own

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    def socket_path(self, restart: bool = False) -> str:
        with self._lock:
            running = self._process is not None and self._process.poll() is None and self._owner == os.getpid()
            if running and not restart:
                assert self._folder is not None
                return os.path.join(self._folder, "reader.sock")
            self._stop()
            self._folder = tempfile.mkdtemp(prefix="bm-video-")  # mode 0700: only this user reaches the socket
            path = os.path.join(self._folder, "reader.sock")
            # Only what the reader needs from the environment: never a service's secrets.
            env = {key: value for key, value in os.environ.items() if key in {"PATH", "LANG", "LC_ALL", "TMPDIR"}}
            env |= {"OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1"}  # one core per video, and fork-safe
            self._process = subprocess.Popen(  # noqa: S603 - our own module
                [sys.executable, "-m", WORKER_MODULE, path],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.DEVNULL,
                env=env,
                cwd=self._folder,
            )
            self._owner = os.getpid()
            assert self._process.stdout is not None
            ready, _, _ = select.select([self._process.stdout], [], [], READER_START_SECONDS)
            if not ready or self._process.stdout.readline().strip() != b"ready":
                self._stop()
                raise RuntimeError("the video reader did not start")
            return path

    def ask(self, request: dict[str, Any], wall_seconds: float) -> dict[str, Any] | None:
        """One request to a child of its own; its answer, or None when it ended without one (crashed, killed at
        a limit, out of time). Blocking."""
        payload = json.dumps(request).encode()
        for attempt in range(2):
            try:
                connection = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                connection.connect(self.socket_path(restart=attempt > 0))
                break
            except (ConnectionRefusedError, FileNotFoundError):
                connection.close()
                if attempt:
                    raise
        with connection:
            connection.sendall(payload)
            connection.shutdown(socket.SHUT_WR)
            connection.settimeout(wall_seconds + 10)  # the child's own timer ends it first; this is a backstop
            received, pid = b"", None
            try:
                while chunk := connection.recv(65536):
                    received += chunk
                    if pid is None and b"\n" in received:
                        line, received = received.split(b"\n", 1)
                        pid = int(line)
            except TimeoutError:
                if pid is not None:
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(pid, signal.SIGKILL)
                return None
        try:
            answer = json.loads(received)
        except ValueError:
            return None
        return answer if isinstance(answer, dict) else None

    def _stop(self) -> None:
        if self._process is not None and self._owner == os.getpid():
            with contextlib.suppress(OSError):
                assert self._process.stdin is not None
                self._process.stdin.close()  # the reader ends when its input closes
            with contextlib.suppress(subprocess.TimeoutExpired):
                self._process.wait(timeout=5)
        if self._folder is not None:
            shutil.rmtree(self._folder, ignore_errors=True)
        self._process, self._folder = None, None

    def close(self) -> None:
        with self._lock:
            self._stop()


READER_START_SECONDS = 60.0  # importing PyAV and NumPy: under a second, unless the machine is very busy
reader = VideoReader()
atexit.register(reader.close)


def run_worker(
    request: dict[str, Any], limits: VideoLimits, label_en: str = "the video", label_nl: str = "de video"
) -> dict[str, Any]:
    """Run one op of `video_worker` in a child of the reader under `limits`. Returns the op's answer; raises a
    ServiceError (4xx) for a refusal the child stated, and for a child that ended any other way (crashed,
    killed at a limit, out of time): such a file is unreadable to us. Blocking: run it in a worker thread."""
    answer = reader.ask({**request, "limits": limits.for_worker()}, limits.wall_seconds)
    if answer is None:
        log.info("video reader: no answer for %s", request.get("op"))
        raise unreadable(label_en, label_nl)
    if "refused" in answer:
        stated = answer["refused"]
        raise stated_refusal(str(stated["code"]), dict(stated.get("values") or {}), limits, label_en, label_nl)
    return dict(answer["ok"])


def check_video(
    path: Path,
    *,
    limits: VideoLimits,
    poster_max_side: int,
    index: int | None = None,
) -> CheckedVideo:
    """Validate one uploaded video and make its poster and playable copy (beside the original, which stays
    unaltered). Refusals are ServiceErrors (4xx, Dutch and English) naming the file by `index` in a request of
    several. Blocking: run it in a worker thread."""
    label_en, label_nl = (
        (f"file {index + 1}", f"bestand {index + 1}") if index is not None else ("the video", "de video")
    )
    size = path.stat().st_size
    if size == 0:
        raise refusal("video_empty", f"{label_en} is empty", f"{label_nl} is leeg")
    if size > limits.max_bytes:
        mb = limits.max_bytes // (1024 * 1024)
        raise refusal(
            "video_too_large",
            f"{label_en} is larger than {mb} MB",
            f"{label_nl} is groter dan {mb} MB",
            413,
        )
    with path.open("rb") as fh:
        content_type = sniff_video_type(fh.read(64))
    if content_type is None:
        raise refusal(
            "video_type_not_accepted",
            f"{label_en} is not an MP4, MOV or WebM video",
            f"{label_nl} is geen MP4-, MOV- of WebM-video",
            415,
        )
    copy_path = path.with_name(path.name + ".copy")
    poster_path = path.with_name(path.name + ".poster.jpg")
    request = {
        "op": "inspect",
        "path": str(path.resolve()),
        "copy_path": str(copy_path.resolve()),
        "poster_path": str(poster_path.resolve()),
        "poster_max_side": poster_max_side,
    }
    try:
        answer = run_worker(request, limits, label_en, label_nl)
    except ServiceError:
        copy_path.unlink(missing_ok=True)
        raise
    finally:
        poster = poster_path.read_bytes() if poster_path.exists() else b""
        poster_path.unlink(missing_ok=True)
    facts = VideoFacts.from_worker(answer)
    return CheckedVideo(
        path=path,
        sha256=sha256_file(path),
        content_type=content_type,
        size_bytes=size,
        facts=facts,
        display_jpeg=poster,
        playable_path=copy_path,
        playable_type=answer["copy_type"],
        playable_sha256=sha256_file(copy_path),
        playable_codecs=answer.get("codecs"),
    )


# Codecs every browser a meldkamer uses plays (Chrome, Edge, Firefox, Safari), so the remuxed copy is enough. HEVC,
# what iPhones record by default, plays in Safari, in Chrome and Edge only where the device decodes it in hardware,
# and not in Firefox: such a video also gets a compatible copy (`make_compatible_copy`).
PLAYS_EVERYWHERE = frozenset({"h264", "vp8", "vp9", "av1"})
COMPATIBLE_TYPE = "video/mp4"
COMPATIBLE_CODECS = "avc1.640028"  # H.264 High profile, level 4.0 (the encoder's settings in video_worker)
COMPATIBLE_MAX_SIDE = 1280  # 720p: a dispatcher's view; the original, at its full size, stays the evidence


def needs_compatible_copy(video_codec: str) -> bool:
    return video_codec not in PLAYS_EVERYWHERE


def compatible_limits(duration_seconds: float, limits: VideoLimits) -> VideoLimits:
    """Decoding every frame and encoding it again costs about two thirds of a core per second of 1080p video on
    this project's machine: the child may use twice that, and four times the clip's length on the clock (it runs
    niced, behind requests)."""
    seconds = max(1.0, duration_seconds)
    return replace(limits, cpu_seconds=int(60 + 2 * seconds), wall_seconds=120 + 4 * seconds)


def make_compatible_copy(original: Path, copy_path: Path, duration_seconds: float, limits: VideoLimits) -> str:
    """An H.264 copy (MP4, upright, at most COMPATIBLE_MAX_SIDE, no metadata, the AAC sound kept) of a video whose
    codec not every browser plays, made at a low priority in a child of the reader; returns its SHA-256. Raises
    ServiceError when the video cannot be read again within the limits. Blocking: run it in a worker thread."""
    request = {
        "op": "compatible",
        "path": str(original.resolve()),
        "copy_path": str(copy_path.resolve()),
        "max_side": COMPATIBLE_MAX_SIDE,
        "nice": 10,
    }
    try:
        run_worker(request, compatible_limits(duration_seconds, limits))
    except ServiceError:
        copy_path.unlink(missing_ok=True)
        raise
    return sha256_file(copy_path)


def compatible_copy_of_blob(
    store: BlobStore, digest: str, duration_seconds: float, limits: VideoLimits, scratch: Path
) -> str:
    """The compatible copy of a stored original video, put in the store; returns its digest. The original is
    copied out checked against its digest (a storage fault raises, worth retrying); a video that cannot be read
    again within the limits raises ServiceError (it never will be). Blocking: run it in a worker thread."""
    scratch.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=scratch) as folder:
        original, copy = Path(folder) / "original", Path(folder) / "compatible.mp4"
        copy_verified(store, digest, original)
        made = make_compatible_copy(original, copy, duration_seconds, limits)
        store.adopt_file(copy, made)
    return made
