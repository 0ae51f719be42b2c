"""The one place a video from outside is opened: a small server process (`python -m
burgermelding_shared.video_worker SOCKET`), started once per service process by `videos.VideoReader` and never
imported into a service's own process, that forks one child per video.

FFmpeg parses containers and bitstreams in C; a hostile file may make it loop, allocate without end or crash.
Each video is read in a child of its own with limits on CPU time, wall time, memory, file size and open files,
set before it touches the file: the worst a file can do is end that child, which the service then answers as
"unreadable" (a 4xx), while the service, this server and every other video go on.

Why a server that forks rather than a fresh interpreter per video: importing PyAV, NumPy and a frame hasher costs
more CPU than hashing a minute of video does (0.7 s against 0.4 s on this project's machine); a forked child has
them already and starts in milliseconds. It still starts from this server's memory, never the service's: no
secret, no other request, and nothing an earlier video did (each child is gone when its video is).

Protocol: the service connects to SOCKET, sends one JSON request ({"op": ..., "limits": {...}}) and closes its
side; the child answers with a line holding its pid, then one JSON answer, {"ok": {...}} or {"refused": {"code":
..., "values": {...}}}. Anything else (no answer, the connection closed early) means the file could not be read
within the limits. The server ends when its standard input closes (the service is gone).

Ops: "inspect" (what intake and the bridge need: streams, limits, container metadata, a poster frame, a
playable copy without metadata), "key_frames" (verification's frame hashes: decodes about one key frame a
second and hands each, reduced, to a hashing function named in the request) and "compatible" (an H.264 copy of
a video whose codec not every browser plays, made after the 202 at a low priority).
"""

from __future__ import annotations

import importlib
import itertools
import json
import os
import re
import resource
import select
import signal
import socket
import sys
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any


class Refused(Exception):
    """A file this reader will not take, by a code and the values that explain it; the words (English and Dutch)
    and the status are the service's (videos.stated_refusal), where every other refusal's are."""

    def __init__(self, code: str, **values: Any) -> None:
        super().__init__(code)
        self.answer = {"code": code, "values": values}


def apply_rlimits(limits: dict[str, Any]) -> None:
    """Cap this process before FFmpeg sees a byte: CPU seconds (SIGXCPU, then SIGKILL), address space, the
    size of any file written (the playable copy can never outgrow the original by much), open files."""
    mb = 1024 * 1024
    caps = {
        resource.RLIMIT_CPU: int(limits["cpu_seconds"]),
        resource.RLIMIT_AS: int(limits["memory_mb"]) * mb,
        resource.RLIMIT_FSIZE: int(limits["max_bytes"]) + 16 * mb,
        resource.RLIMIT_NOFILE: 64,
        resource.RLIMIT_CORE: 0,
    }
    for kind, cap in caps.items():
        _soft, hard = resource.getrlimit(kind)
        new_hard = cap if hard == resource.RLIM_INFINITY else min(cap, hard)
        resource.setrlimit(kind, (min(cap, new_hard), new_hard))


# Codecs a phone or a browser records, and what each plays in as a copy without metadata. HEVC plays in Safari
# and in Chrome and Edge where the device decodes it in hardware; the others everywhere that matters.
VIDEO_CODECS = {"h264": "mp4", "hevc": "mp4", "av1": "mp4", "vp8": "webm", "vp9": "webm"}
AUDIO_IN = {"mp4": {"aac", "mp3", "opus", "alac"}, "webm": {"opus", "vorbis"}}
# A QuickTime file names its dates and places with these keys (mdta, as iPhones write them) or the older
# user-data atoms FFmpeg reports as "location" and "creation_time".
APPLE_LOCATION = "com.apple.quicktime.location.iso6709"
APPLE_CREATED = "com.apple.quicktime.creationdate"
APPLE_MAKE = "com.apple.quicktime.make"
_ISO6709 = re.compile(r"^([+-]\d{2}(?:\.\d+)?)([+-]\d{3}(?:\.\d+)?)([+-]\d+(?:\.\d+)?)?(?:CRS[^/]*)?/?$")


def parse_iso6709(text: str) -> tuple[float, float] | None:
    """A place as phones write it (ISO 6709 in decimal degrees: `+52.0907+005.1214+003.000/`), or None."""
    match = _ISO6709.match(text.strip()[:100])
    if match is None:
        return None
    lat, lon = float(match.group(1)), float(match.group(2))
    if not (-90 <= lat <= 90 and -180 <= lon <= 180) or (lat == 0 and lon == 0):
        return None
    return lat, lon


def parse_time(text: str) -> datetime | None:
    """A container date: ISO 8601 with an offset or Z (FFmpeg's rendering of the mvhd time, Apple's key). A
    date before 2000 is a zero field (QuickTime counts from 1904), not a recording."""
    value = text.strip()[:40].replace("Z", "+00:00")
    value = re.sub(r"([+-]\d{2})(\d{2})$", r"\1:\2", value)  # Apple writes +0100
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    if parsed.tzinfo is None or parsed.year < 2000:
        return None
    return parsed.astimezone(UTC)


def recorded_when(metadata: dict[str, str], brand: str, duration: float) -> dict[str, Any] | None:
    """When recording started and ended, and from which field. Apple's creationdate is the start, with the
    phone's offset. The movie header's creation_time is the start on an iPhone (and in a QuickTime file), but
    the *end* on many Android phones (MediaRecorder writes the header when recording stops); for a file that is
    not QuickTime we assume the end and count the duration back, the reading that puts the start earliest and
    so does not flatter a clip that was recorded before the incident."""
    keys = {key.lower(): value for key, value in metadata.items()}
    apple = parse_time(keys.get(APPLE_CREATED, ""))
    if apple is not None:
        return {"start": apple, "end": apple + timedelta(seconds=duration), "source": "quicktime_creationdate"}
    header = parse_time(keys.get("creation_time", ""))
    if header is None:
        return None
    if brand == "qt" or keys.get(APPLE_MAKE, "").lower() == "apple":
        return {"start": header, "end": header + timedelta(seconds=duration), "source": "movie_header_start"}
    return {"start": header - timedelta(seconds=duration), "end": header, "source": "movie_header_end"}


def recorded_where(metadata: dict[str, str]) -> dict[str, Any] | None:
    keys = {key.lower(): value for key, value in metadata.items()}
    for key, source in ((APPLE_LOCATION, "quicktime_iso6709"), ("location", "udta_xyz"), ("location-eng", "udta_xyz")):
        place = parse_iso6709(keys.get(key, ""))
        if place is not None:
            return {"lat": place[0], "lon": place[1], "source": source}
    return None


def open_container(av: Any, path: str, limits: dict[str, Any]) -> Any:
    try:
        # Probing reads at most a few MB; a file that needs more to show its streams is not a phone's.
        return av.open(path, options={"probesize": "5000000", "analyzeduration": "5000000"}, metadata_errors="ignore")
    except (av.FFmpegError, ValueError, UnicodeDecodeError) as exc:
        raise unreadable() from exc


def unreadable() -> Refused:
    return Refused("video_unreadable")


def check_streams(container: Any, limits: dict[str, Any]) -> tuple[Any, Any | None]:
    """The one video stream (the first), an audio stream if any; refuses what a phone does not make."""
    if len(container.streams) > limits["max_streams"]:
        raise Refused("video_too_many_streams", streams=len(container.streams))
    import av

    # A cover picture (an MP4's "attached picture") is a video stream of one frame, not the recording.
    cover = av.stream.Disposition.attached_pic
    videos = [s for s in container.streams if s.type == "video" and not s.disposition & cover]
    if not videos:
        raise Refused("video_no_picture")
    video = videos[0]
    codec = video.codec_context.name
    if codec not in VIDEO_CODECS:
        raise Refused("video_codec_not_accepted", codec=str(codec)[:40])
    width, height = video.codec_context.width, video.codec_context.height
    if width <= 0 or height <= 0:
        raise unreadable()
    if width * height > limits["max_pixels"] or max(width, height) > limits["max_side"]:
        raise Refused("video_too_many_pixels", width=width, height=height)
    audios = [s for s in container.streams if s.type == "audio"]
    return video, audios[0] if audios else None


def too_long(limits: dict[str, Any]) -> Refused:
    return Refused("video_too_long")


def within_limits(packets: Iterable[Any], limits: dict[str, Any]) -> Iterator[Any]:
    """The demuxer's packets (its flush packets left out), refused as too long once there are more than a video
    of the longest accepted length has, or one lies past that length by its own timestamp: a container's
    declared duration can lie, its packets are what gets decoded."""
    count = 0
    for packet in packets:
        if packet.dts is None:
            continue
        count += 1
        if count > limits["max_packets"]:
            raise too_long(limits)
        timed = packet.pts is not None and packet.time_base is not None
        if timed and float((packet.pts + (packet.duration or 0)) * packet.time_base) > limits["max_seconds"] + 1:
            raise too_long(limits)
        yield packet


def upright(image: Any, rotation: float) -> Any:
    """The decoded picture as it is meant to be seen. FFmpeg's rotation is counterclockwise, as PIL's."""
    turns = round(rotation / 90) % 4
    return image.rotate(90 * turns, expand=True) if turns else image


def inspect(request: dict[str, Any]) -> dict[str, Any]:
    import av

    limits = request["limits"]
    source, copy_path, poster_path = request["path"], request["copy_path"], request["poster_path"]
    av.logging.set_level(None)
    container = open_container(av, source, limits)
    with container:
        video, audio = check_streams(container, limits)
        declared = (container.duration or 0) / 1_000_000
        if declared > limits["max_seconds"]:
            raise too_long(limits)
        kind = VIDEO_CODECS[video.codec_context.name]
        keep_audio = audio is not None and audio.codec_context.name in AUDIO_IN[kind]
        # The copy: the same coded pictures (and sound) in a fresh container with no metadata at all (no date,
        # place, device or encoder name), bit-exact so the same video always gives the same copy. H.264's and
        # HEVC's SEI messages (an encoder's settings, a phone's own notes) are dropped from the bitstream too;
        # the display matrix (rotation) is kept so the copy plays upright.
        options = {"fflags": "+bitexact"}
        if kind == "mp4":
            options["movflags"] = "+faststart"
        muxed = 0
        poster = None
        end = 0.0
        with av.open(copy_path, "w", format=kind, options=options) as out:
            out_video = out.add_stream_from_template(video)
            streams = {video.index: out_video}
            codec = video.codec_context.name
            length_size = nal_length_size(codec, video.codec_context.extradata or b"")
            if codec == "hevc":
                out_video.codec_context.codec_tag = "hvc1"  # Safari plays HEVC in MP4 only under this tag
                # x265 and phones keep SEI messages in the configuration record too (x265 its command line).
                out_video.codec_context.extradata = hvcc_without_sei(video.codec_context.extradata or b"")
            if keep_audio and audio is not None:
                streams[audio.index] = out.add_stream_from_template(audio)
            video.codec_context.thread_count = 1  # one core per video, as one per photo
            try:
                for packet in within_limits(container.demux(*[s for s in (video, audio) if s is not None]), limits):
                    if packet.stream.index not in streams:
                        continue  # sound the copy cannot carry
                    if packet.pts is not None and packet.time_base is not None:
                        end = max(end, float((packet.pts + (packet.duration or 0)) * packet.time_base))
                    out_packet = packet
                    if packet.stream.index == video.index:
                        if poster is None and packet.is_keyframe:
                            poster = first_picture(video, packet)
                        if length_size:
                            out_packet = without_sei(av, packet, codec, length_size)
                    out_packet.stream = streams[packet.stream.index]
                    out.mux(out_packet)
                    muxed += 1
            except (av.FFmpegError, ValueError, OverflowError) as exc:
                raise unreadable() from exc
        if poster is None or muxed == 0:
            raise unreadable()
        frame, rotation = poster
        width, height = reduced(frame, request["poster_max_side"])
        image = upright(frame.reformat(width=width, height=height, format="rgb24").to_image(), rotation)
        image.save(poster_path, "JPEG", quality=85)
        return {
            **facts(container, video, audio, max(declared, end), rotation),
            "audio_kept": keep_audio,
            "copy_type": "video/mp4" if kind == "mp4" else "video/webm",
            "codecs": codecs_of(codec, out_video.codec_context.extradata or b""),
        }


def facts(container: Any, video: Any, audio: Any | None, duration: float, rotation: float) -> dict[str, Any]:
    """What the container says about the recording (videos.VideoFacts), for intake's check and verification's."""
    brand = str(container.metadata.get("major_brand", "")).strip()
    width, height = video.codec_context.width, video.codec_context.height
    turned = round(rotation / 90) % 2 == 1
    return {
        "container": "quicktime" if brand == "qt" else VIDEO_CODECS[video.codec_context.name],
        "video_codec": video.codec_context.name,
        "audio_codec": audio.codec_context.name if audio is not None else None,
        "audio_kept": False,
        "width": height if turned else width,
        "height": width if turned else height,
        "rotation": rotation,
        "duration_seconds": round(duration, 3),
        "frame_rate": float(video.average_rate) if video.average_rate else None,
        "recorded": jsonable(recorded_when(dict(container.metadata), brand, duration)),
        "place": recorded_where(dict(container.metadata)),
    }


def codecs_of(codec: str, record: bytes) -> str | None:
    """The picture's codec as RFC 6381 names it in a MIME type's `codecs` (ISO/IEC 14496-15 Annex E), from the
    configuration record: a browser asked `canPlayType('video/mp4; codecs="..."')` then says whether it can play
    this profile and level, before fetching a byte. None where the record does not tell."""
    if codec == "h264" and len(record) >= 4 and record[0] == 1:
        return f"avc1.{record[1:4].hex()}"
    if codec == "hevc" and len(record) >= 13 and record[0] == 1:
        space, tier, profile = record[1] >> 6, (record[1] >> 5) & 1, record[1] & 0x1F
        compatibility = int("{:032b}".format(int.from_bytes(record[2:6], "big"))[::-1], 2)
        constraints = record[6:12].rstrip(b"\0")
        level = f"{'H' if tier else 'L'}{record[12]}"
        parts = [f"hvc1.{'' if space == 0 else 'ABC'[space - 1]}{profile}", f"{compatibility:X}", level]
        return ".".join(parts + [f"{byte:X}" for byte in constraints])
    return None


HEVC_SEI_TYPES = {39, 40}
H264_SEI_TYPE = 6


def nal_length_size(codec: str, record: bytes) -> int:
    """The size of the length before each NAL unit in an MP4's H.264 ('avcC') or HEVC ('hvcC') samples, from the
    stream's configuration record; 0 when there is none to go by (then the packets are copied as they are)."""
    if codec == "h264" and len(record) >= 7 and record[0] == 1:
        return (record[4] & 3) + 1
    if codec == "hevc" and len(record) >= 23 and record[0] == 1:
        return (record[21] & 3) + 1
    return 0


def without_sei(av: Any, packet: Any, codec: str, length_size: int) -> Any:
    """The packet without its SEI NAL units (an encoder's settings, a phone's own notes). Done here rather than
    with FFmpeg's filter_units, whose packets stopped decoding once the configuration record lost its SEI too.
    A packet whose lengths do not add up is copied as it is: the copy plays as the original does."""
    data = bytes(packet)
    kept = bytearray()
    offset = 0
    while offset + length_size <= len(data):
        size = int.from_bytes(data[offset : offset + length_size], "big")
        unit = data[offset + length_size : offset + length_size + size]
        if size == 0 or len(unit) < size:
            return packet
        kind = (unit[0] >> 1) & 0x3F if codec == "hevc" else unit[0] & 0x1F
        if not (kind in HEVC_SEI_TYPES if codec == "hevc" else kind == H264_SEI_TYPE):
            kept += data[offset : offset + length_size + size]
        offset += length_size + size
    if offset != len(data) or len(kept) == len(data) or not kept:
        return packet
    stripped = av.Packet(bytes(kept))
    stripped.pts, stripped.dts, stripped.duration = packet.pts, packet.dts, packet.duration
    stripped.time_base, stripped.is_keyframe = packet.time_base, packet.is_keyframe
    return stripped


def hvcc_without_sei(record: bytes) -> bytes:
    """An HEVC decoder configuration record (ISO/IEC 14496-15 'hvcC') with its arrays of SEI NAL units left out.
    A record that does not parse is returned unchanged (the copy then plays as the original does)."""
    if len(record) < 23 or record[0] != 1:
        return record
    out = bytearray(record[:22])
    kept = 0
    offset, arrays = 23, record[22]
    body = bytearray()
    for _ in range(arrays):
        if offset + 3 > len(record):
            return record
        nal_type, count = record[offset] & 0x3F, int.from_bytes(record[offset + 1 : offset + 3], "big")
        end = offset + 3
        for _ in range(count):
            if end + 2 > len(record):
                return record
            end += 2 + int.from_bytes(record[end : end + 2], "big")
        if end > len(record):
            return record
        if nal_type not in HEVC_SEI_TYPES:
            body += record[offset:end]
            kept += 1
        offset = end
    return bytes(out + bytes([kept]) + body)


def first_picture(video: Any, packet: Any) -> tuple[Any, float] | None:
    """The first key frame's picture (an FFmpeg frame), decoded alone, and its rotation; None when it does not
    decode (the copy goes on; a file with no decodable key frame at all is refused)."""
    import av

    try:
        frames = list(video.codec_context.decode(packet)) + list(video.codec_context.decode(None))
        video.codec_context.flush_buffers()
    except (av.FFmpegError, ValueError):
        return None
    if not frames:
        return None
    frame = frames[0]
    return frame, float(getattr(frame, "rotation", 0) or 0)


def reduced(frame: Any, side: int) -> tuple[int, int]:
    """The size that fits a frame within `side` pixels, keeping its shape (even numbers, as scalers like)."""
    scale = min(1.0, side / max(frame.width, frame.height))
    return max(2, round(frame.width * scale / 2) * 2), max(2, round(frame.height * scale / 2) * 2)


def jsonable(value: dict[str, Any] | None) -> dict[str, Any] | None:
    if value is None:
        return None
    return {key: item.isoformat() if isinstance(item, datetime) else item for key, item in value.items()}


def key_frames(request: dict[str, Any]) -> dict[str, Any]:
    """About one key frame a second, each decoded alone, reduced to at most `side` pixels and handed to the
    function `hasher` names ("module:function", called with an upright RGB array (height x width x 3),
    returning a JSON-able value). The hasher's module is imported in the child: keep it light.
    Decoding only key frames is what makes this cheap: every other frame is skipped without being decoded."""
    import av
    import numpy

    limits = request["limits"]
    hasher = hasher_of(request["hasher"])
    interval = float(request.get("interval_seconds", 1.0))
    side = int(request.get("side", 512))
    av.logging.set_level(None)
    results = []
    rotation, end = 0.0, 0.0
    container = open_container(av, request["path"], limits)
    with container:
        video, audio = check_streams(container, limits)
        context = video.codec_context
        context.thread_count = 1
        next_at = 0.0
        try:
            for packet in within_limits(container.demux(video), limits):
                if not packet.is_keyframe or packet.pts is None or packet.time_base is None:
                    continue
                at = float(packet.pts * packet.time_base)
                end = max(end, at)
                if at + 1e-6 < next_at:
                    continue
                picture = first_picture(video, packet)
                if picture is None:
                    continue
                frame, rotation = picture
                # Scaled and turned to RGB in one pass by FFmpeg's scaler: a 1080p frame never becomes a
                # full-size RGB image (that, and then shrinking it, cost more than decoding it).
                width, height = reduced(frame, side)
                pixels = frame.reformat(width=width, height=height, format="rgb24", interpolation="AREA").to_ndarray()
                turns = round(rotation / 90) % 4
                results.append({"at": round(at, 3), "value": hasher(numpy.rot90(pixels, turns) if turns else pixels)})
                next_at = at + interval
        except (av.FFmpegError, ValueError, OverflowError) as exc:
            raise unreadable() from exc
        if not results:
            raise unreadable()
        declared = (container.duration or 0) / 1_000_000
        return {"frames": results, "facts": facts(container, video, audio, max(declared, end), rotation)}


COMPATIBLE_PRESET = "superfast"  # x264: a 1080p HEVC clip's copy in about two thirds of its length on one core here
COMPATIBLE_CRF = "23"  # x264's default quality: a dispatcher's view, the original stays the evidence


def compatible(request: dict[str, Any]) -> dict[str, Any]:
    """For `videos.make_compatible_copy`: an H.264 copy (MP4, High profile, at most `max_side` pixels a side,
    upright, no metadata) of a video whose codec not every browser plays, with its AAC sound copied as it is.
    Made after the 202, at a low priority: decoding every frame and encoding it again costs a core for a good
    part of the clip's length."""
    import av

    limits = request["limits"]
    av.logging.set_level(None)
    container = open_container(av, request["path"], limits)
    with container:
        video, audio = check_streams(container, limits)
        if (container.duration or 0) / 1_000_000 > limits["max_seconds"]:
            raise too_long(limits)
        keep_audio = audio is not None and audio.codec_context.name == "aac"
        video.codec_context.thread_count = 1
        rate = video.average_rate or video.guessed_rate or 30
        with av.open(
            request["copy_path"], "w", format="mp4", options={"fflags": "+bitexact", "movflags": "+faststart"}
        ) as out:
            # The graph and the encoder need the picture's size and turn, which only a decoded frame tells: the
            # first key frame's, read before the copy's first packet (the container's header) is written.
            first = first_key_frame(av, request["path"], limits)
            graph, encoder = upright_scaler(av, video, first, out, rate, int(request["max_side"]))
            sound = out.add_stream_from_template(audio) if keep_audio and audio is not None else None

            def encode(frames: list[Any]) -> None:
                for frame in frames:
                    graph.push(frame)
                    for turned in pulled(av, graph):
                        out.mux(encoder.encode(turned))

            try:
                for packet in within_limits(
                    container.demux(*[s for s in (video, sound and audio) if s is not None]), limits
                ):
                    if sound is not None and packet.stream.index != video.index:
                        packet.stream = sound
                        out.mux(packet)
                    else:
                        encode(list(video.codec_context.decode(packet)))
                encode(list(video.codec_context.decode(None)))
            except (av.FFmpegError, ValueError, OverflowError) as exc:
                raise unreadable() from exc
            out.mux(encoder.encode(None))
        return {"audio_kept": keep_audio}


def first_key_frame(av: Any, path: str, limits: dict[str, Any]) -> Any:
    """The first key frame that decodes (an FFmpeg frame, its rotation with it)."""
    with open_container(av, path, limits) as container:
        video, _audio = check_streams(container, limits)
        video.codec_context.thread_count = 1
        try:
            for packet in container.demux(video):
                if packet.dts is not None and packet.is_keyframe:
                    picture = first_picture(video, packet)
                    if picture is not None:
                        return picture[0]
        except (av.FFmpegError, ValueError, OverflowError) as exc:
            raise unreadable() from exc
    raise unreadable()


# The filters that show a picture as it is meant to be seen, by its quarter turns (FFmpeg's rotation counts them
# counterclockwise, as `upright` turns the poster).
TURNED_UPRIGHT: dict[int, list[tuple[str, str]]] = {
    0: [],
    1: [("transpose", "cclock")],
    2: [("hflip", ""), ("vflip", "")],
    3: [("transpose", "clock")],
}


def upright_scaler(av: Any, video: Any, first: Any, out: Any, rate: Any, max_side: int) -> tuple[Any, Any]:
    """A filter graph that turns each decoded frame upright (the display matrix's rotation, in the pixels: the
    copy needs no matrix) and scales it to at most `max_side`, and the H.264 encoder that takes its frames."""
    turns = round(float(getattr(first, "rotation", 0) or 0) / 90) % 4
    width, height = reduced(first, max_side)
    graph = av.filter.Graph()
    chain = [graph.add_buffer(template=video), graph.add("scale", f"{width}:{height}")]
    chain += [graph.add(name, args) for name, args in TURNED_UPRIGHT[turns]]
    chain.append(graph.add("format", "yuv420p"))
    chain.append(graph.add("buffersink"))
    for source, target in itertools.pairwise(chain):
        source.link_to(target)
    graph.configure()
    encoder = out.add_stream("libx264", rate=rate)
    encoder.width, encoder.height = (height, width) if turns % 2 else (width, height)
    encoder.pix_fmt = "yuv420p"
    encoder.time_base = video.time_base
    # Two frames at a time: the dispatcher waits on the wall clock; the child is niced, so requests go first.
    encoder.codec_context.thread_count = 2
    encoder.options = {"preset": COMPATIBLE_PRESET, "crf": COMPATIBLE_CRF, "profile": "high", "level": "4.0"}
    return graph, encoder


def pulled(av: Any, graph: Any) -> list[Any]:
    """The frames the graph has ready (none while it waits for more)."""
    frames = []
    while True:
        try:
            frames.append(graph.pull())
        except (av.BlockingIOError, av.EOFError):
            return frames


OPS = {"inspect": inspect, "key_frames": key_frames, "compatible": compatible}
_HASHER = re.compile(r"^[A-Za-z_][\w.]{0,100}:[A-Za-z_]\w{0,60}$")
MAX_REQUEST_BYTES = 64 * 1024


def hasher_of(name: str) -> Any:
    """The frame hasher "module:function"; its module is imported in the server the first time it is named (so
    every later child has it), the function looked up in the child."""
    if not _HASHER.match(name):
        raise ValueError(f"not a hasher: {name[:80]!r}")
    module_name, function_name = name.split(":")
    return getattr(importlib.import_module(module_name), function_name)


def answer_one(connection: socket.socket, request: dict[str, Any]) -> None:
    """In the forked child: limit this process, read the one video, answer, and end."""
    limits = request["limits"]
    connection.sendall(f"{os.getpid()}\n".encode())
    apply_rlimits(limits)
    if request.get("nice"):
        os.nice(int(request["nice"]))  # a copy made in the background yields the core to requests
    signal.signal(signal.SIGALRM, signal.SIG_DFL)
    signal.setitimer(signal.ITIMER_REAL, float(limits["wall_seconds"]))  # its default action ends the child
    try:
        answer: dict[str, Any] = {"ok": OPS[request["op"]](request)}
    except Refused as refusal:
        answer = {"refused": refusal.answer}
    except MemoryError:
        answer = {"refused": unreadable().answer}
    connection.sendall(json.dumps(answer).encode())


def read_request(connection: socket.socket) -> dict[str, Any] | None:
    connection.settimeout(5.0)
    data = b""
    try:
        while len(data) <= MAX_REQUEST_BYTES:
            chunk = connection.recv(65536)
            if not chunk:
                request = json.loads(data)
                if isinstance(request, dict) and request.get("op") in OPS:
                    if request.get("hasher"):
                        hasher_of(str(request["hasher"]))  # imported here, once, for every later child
                    return request
                return None
            data += chunk
    except (OSError, ValueError, ImportError, AttributeError):
        return None
    return None


def serve(socket_path: str) -> int:
    """Listen on `socket_path` (in a folder only this user reads) and fork a child per request."""
    import av
    import numpy  # noqa: F401 - imported once here, for every child
    import PIL.Image  # noqa: F401

    av.logging.set_level(None)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # a terminal's Ctrl-C is for the service, which closes our stdin
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(socket_path)
    listener.listen(64)
    print("ready", flush=True)
    while True:
        readable, _, _ = select.select([listener, sys.stdin], [], [], 0.5)
        reap()
        if sys.stdin in readable and not os.read(sys.stdin.fileno(), 1024):
            return 0  # the service is gone
        if listener not in readable:
            continue
        connection, _ = listener.accept()
        with connection:
            request = read_request(connection)
            if request is None:
                continue
            if os.fork() == 0:  # the child: never returns into this loop
                code = 1
                try:
                    listener.close()
                    answer_one(connection, request)
                    code = 0
                finally:
                    os._exit(code)


def reap() -> None:
    """Collect the children that ended (their CPU time then counts in this server's, as a benchmark reads it)."""
    while True:
        try:
            pid, _status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return


if __name__ == "__main__":
    sys.exit(serve(sys.argv[1]))
