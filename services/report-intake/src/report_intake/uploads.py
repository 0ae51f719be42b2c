"""Streaming multipart reader: every file part goes straight to a temporary file and is cut off at its limit.

Starlette's form parser has no size limit for file parts; here a 100 MB photo never sits in memory and the
upload is refused as soon as a part passes its limit, not after it has all arrived.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from python_multipart.multipart import MultipartParser, parse_options_header
from starlette.exceptions import HTTPException
from starlette.requests import Request

from burgermelding_shared.errors import ServiceError, storage_unavailable
from burgermelding_shared.videos import sniff_video_type


@dataclass
class UploadLimits:
    max_file_bytes: int  # a photo's
    max_files: int  # photos and videos together
    max_field_bytes: int
    max_fields: int = 8
    file_field: str = "photos"
    max_video_bytes: int = 0  # a file whose first bytes prove a video may be this large (0: judged as a photo)
    max_videos: int = 0

    @property
    def max_total_bytes(self) -> int:
        files = self.max_files * self.max_file_bytes + min(self.max_videos, self.max_files) * self.max_video_bytes
        return files + self.max_fields * self.max_field_bytes + 65536


@dataclass
class UploadedFile:
    field_name: str
    filename: str | None
    declared_type: str | None
    path: Path
    size: int = 0
    head: bytes = b""  # the first bytes, which decide whether it is a video (and so its size limit)
    is_video: bool = False


@dataclass
class UploadedForm:
    fields: dict[str, str] = field(default_factory=dict)
    files: list[UploadedFile] = field(default_factory=list)
    made: list[Path] = field(default_factory=list)  # files made from the uploads (a video's playable copy)

    def also_remove(self, path: Path) -> None:
        self.made.append(path)

    def cleanup(self) -> None:
        for path in [*(f.path for f in self.files), *self.made]:
            path.unlink(missing_ok=True)


_PART_NAMES_NL = {
    "a photo": "een foto",
    "a video": "een video",
    "the report part": "het meldingsdeel",
    "the request": "het verzoek",
}
HEAD_BYTES = 64  # what videos.sniff_video_type needs to tell a video


def _too_large(what: str, limit: int) -> ServiceError:
    mb = limit / (1024 * 1024)
    return ServiceError(
        413,
        "upload_too_large",
        f"{what} is larger than the limit of {mb:g} MB",
        detail_nl=f"{_PART_NAMES_NL[what]} is groter dan de limiet van {mb:g} MB",
    )


async def read_multipart(request: Request, limits: UploadLimits, tmp_dir: Path) -> UploadedForm:
    """Parse a multipart/form-data body with per-part limits. The caller must `cleanup()` the result."""
    content_type, params = parse_options_header(request.headers.get("content-type", ""))
    boundary = params.get(b"boundary")
    if content_type != b"multipart/form-data" or not boundary:
        raise ServiceError(
            415,
            "multipart_required",
            "send the report as multipart/form-data",
            detail_nl="Verstuur de melding als multipart/form-data",
        )
    total_limit = limits.max_total_bytes
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > total_limit:
        raise _too_large("the request", total_limit)

    tmp_dir.mkdir(parents=True, exist_ok=True)  # noqa: ASYNC240  (one cheap call)
    form = UploadedForm()
    state: dict = {
        "headers": {},
        "field": b"",
        "value": b"",
        "current": None,
        "buffer": bytearray(),
        "fh": None,
        "error": None,
    }

    def on_part_begin() -> None:
        state["headers"] = {}
        state["buffer"] = bytearray()
        state["current"] = None
        state["fh"] = None

    def on_header_field(data: bytes, start: int, end: int) -> None:
        state["field"] += data[start:end]

    def on_header_value(data: bytes, start: int, end: int) -> None:
        state["value"] += data[start:end]

    def on_header_end() -> None:
        state["headers"][state["field"].lower()] = state["value"]
        state["field"], state["value"] = b"", b""

    def on_headers_finished() -> None:
        disposition, options = parse_options_header(state["headers"].get(b"content-disposition", b""))
        name = options.get(b"name", b"").decode("utf-8", "replace")
        filename = options.get(b"filename")
        if disposition != b"form-data" or not name:
            raise ServiceError(
                400,
                "malformed_multipart",
                "a part lacks a form-data name",
                detail_nl="Een deel van het formulier heeft geen naam",
            )
        if filename is not None or name == limits.file_field:
            if name != limits.file_field:
                raise ServiceError(
                    400,
                    "unexpected_file",
                    f"files are accepted only in the part '{limits.file_field}'",
                    detail_nl=f"Bestanden horen alleen in het deel '{limits.file_field}'",
                )
            if len(form.files) >= limits.max_files:
                raise ServiceError(
                    413,
                    "too_many_photos",
                    f"at most {limits.max_files} photos per report",
                    detail_nl=f"Maximaal {limits.max_files} foto's per melding",
                )
            # The client's file name is kept only as data, never used as a path.
            fd, tmp = tempfile.mkstemp(dir=tmp_dir, prefix="upload-")
            upload = UploadedFile(
                name,
                filename.decode("utf-8", "replace")[:255] if filename else None,
                state["headers"].get(b"content-type", b"").decode("latin-1")[:100] or None,
                Path(tmp),
            )
            form.files.append(upload)
            state["current"] = upload
            state["fh"] = os.fdopen(fd, "wb")
        else:
            if name in form.fields or len(form.fields) >= limits.max_fields:
                raise ServiceError(
                    400,
                    "unexpected_field",
                    f"unexpected or repeated form field '{name[:40]}'",
                    detail_nl=f"Onverwacht of herhaald formulierveld '{name[:40]}'",
                )
            state["current"] = name

    def on_part_data(data: bytes, start: int, end: int) -> None:
        chunk = data[start:end]
        current = state["current"]
        if isinstance(current, UploadedFile):
            if len(current.head) < HEAD_BYTES:
                current.head += chunk[: HEAD_BYTES - len(current.head)]
                if len(current.head) == HEAD_BYTES:
                    judge_head(current, form, limits)
            current.size += len(chunk)
            limit = limits.max_video_bytes if current.is_video else limits.max_file_bytes
            if current.size > limit:
                raise _too_large("a video" if current.is_video else "a photo", limit)
            state["fh"].write(chunk)
        else:
            state["buffer"] += chunk
            if len(state["buffer"]) > limits.max_field_bytes:
                raise _too_large("the report part", limits.max_field_bytes)

    def on_part_end() -> None:
        current = state["current"]
        if isinstance(current, UploadedFile):
            if len(current.head) < HEAD_BYTES:  # a file shorter than the head: judged as it is
                judge_head(current, form, limits)
            state["fh"].close()
            state["fh"] = None
        elif current is not None:
            try:
                form.fields[current] = bytes(state["buffer"]).decode("utf-8")
            except UnicodeDecodeError as exc:
                raise ServiceError(
                    400,
                    "malformed_text",
                    f"form field '{current}' is not UTF-8",
                    detail_nl=f"Formulierveld '{current}' is geen UTF-8",
                ) from exc

    parser = MultipartParser(
        boundary,
        {
            "on_part_begin": on_part_begin,
            "on_part_data": on_part_data,
            "on_part_end": on_part_end,
            "on_header_field": on_header_field,
            "on_header_value": on_header_value,
            "on_header_end": on_header_end,
            "on_headers_finished": on_headers_finished,
        },
    )
    received = 0
    try:
        async for chunk in request.stream():
            received += len(chunk)
            if received > total_limit:
                raise _too_large("the request", total_limit)
            parser.write(chunk)
        parser.finalize()
    except (ServiceError, HTTPException):  # ours, and the body guards' (too large, too slow)
        _abort(state, form)
        raise
    except OSError as exc:  # the upload folder is full or failing: our fault, and worth a retry (503)
        _abort(state, form)
        raise storage_unavailable() from exc
    except Exception as exc:
        _abort(state, form)
        raise ServiceError(
            400,
            "malformed_multipart",
            "the multipart body could not be read",
            detail_nl="De multipart-inhoud kon niet worden gelezen",
        ) from exc
    if state["fh"] is not None:  # body ended inside a part
        _abort(state, form)
        raise ServiceError(
            400,
            "malformed_multipart",
            "the multipart body ended in the middle of a part",
            detail_nl="De multipart-inhoud houdt midden in een deel op",
        )
    return form


def judge_head(upload: UploadedFile, form: UploadedForm, limits: UploadLimits) -> None:
    """Whether the file is a video, by its first bytes (never by its name or declared type): a video may be
    larger than a photo, and a report may carry only so many."""
    if limits.max_video_bytes <= 0 or sniff_video_type(upload.head) is None:
        return
    upload.is_video = True
    if sum(f.is_video for f in form.files) > limits.max_videos:
        raise too_many_videos(limits.max_videos)


def judge_whole_file(upload: UploadedFile, form: UploadedForm, limits: UploadLimits) -> None:
    """`judge_head` for a file already on disk whole (fetched from a `media_url`, or resumed over tus; its `size`
    known), and then its size limit, which a multipart part meets while it streams in. One rule for every way a
    file arrives."""
    with upload.path.open("rb") as fh:
        upload.head = fh.read(HEAD_BYTES)
    judge_head(upload, form, limits)
    limit = limits.max_video_bytes if upload.is_video else limits.max_file_bytes
    if upload.size > limit:
        raise _too_large("a video" if upload.is_video else "a photo", limit)


def too_many_videos(limit: int) -> ServiceError:
    return ServiceError(
        413,
        "too_many_videos",
        f"at most {limit} videos per report",
        detail_nl=f"Maximaal {limit} video's per melding",
    )


def _abort(state: dict, form: UploadedForm) -> None:
    if state["fh"] is not None:
        with contextlib.suppress(OSError):
            state["fh"].close()
    form.cleanup()
