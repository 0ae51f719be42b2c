"""Resumable uploads for the caller's page: tus 1.0 (core, with the creation, expiration and termination
extensions), spoken by tus-js-client on the page (vendored, served from here).

Why tus and not the IETF "Resumable Uploads for HTTP" draft: tus 1.0 is a finished protocol with a well-kept
browser client that handles the cases a caller's phone meets (a dropped connection, a page reloaded during an
upload, a network that changes from Wi-Fi to 4G), while the draft is still changing and no browser or library
ships it. Why our own server and not tuspyserver: an upload here belongs to one caller's link, its size limit
depends on what the first bytes prove (a video may be larger than a photo), and it must end in the same checks
and the same report as any other upload; tuspyserver brings its own storage layout and hooks around that.

The protocol, as a caller's phone meets it:
- `POST /c/{token}/uploads` with `Upload-Length`: a new upload (`201`, `Location`), while the link lives, after
  consent, within the link's file count and the largest file a video may be;
- `HEAD .../uploads/{id}`: how far it got (`Upload-Offset`); after a dropped connection the client asks this and
  goes on from there;
- `PATCH .../uploads/{id}` with `Upload-Offset` and `application/offset+octet-stream`: the next bytes. A connection
  that drops mid-way keeps every byte that arrived;
- `DELETE .../uploads/{id}`: the caller changed their mind;
- `POST /c/{token}/uploads/done` with the finished uploads' ids (and the location, if shared): they are checked
  and become the caller's report exactly as the plain form's files do.

Uploads live in a folder of their own per link (`caller-uploads/<link>/<id>`, a data file and a small JSON
record) until they are done, deleted or their link ends. One replica serves a link's uploads (the folder is
local):
behind a load balancer, route `/c/` by path or put the folder on shared storage.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import secrets
import shutil
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response
from sqlmodel import col, select
from starlette.requests import ClientDisconnect

from burgermelding_shared.app import RuntimeDep
from burgermelding_shared.background import BackgroundLoop
from burgermelding_shared.errors import ServiceError
from report_intake.callers import links
from report_intake.config import IntakeSettings
from report_intake.models import CallerLink
from report_intake.uploads import UploadedFile, UploadedForm, UploadLimits, judge_whole_file

router = APIRouter(include_in_schema=False)
TUS = "1.0.0"
UPLOAD_ID = re.compile(r"^[A-Za-z0-9_-]{16,32}$")
CHUNK_FLUSH = 1024 * 1024


def tus_headers(**more: str) -> dict[str, str]:
    """tus's headers, given as keywords (`Upload_Offset=` is `Upload-Offset`)."""
    return {"Tus-Resumable": TUS, "Cache-Control": "no-store", **{k.replace("_", "-"): v for k, v in more.items()}}


def answer(status: int, text: str = "", **headers: str) -> Response:
    """A tus answer: the status says what happened (the client acts on it); the text is for a person reading."""
    return Response(text, status_code=status, headers=tus_headers(**headers), media_type="text/plain")


def folder_of(settings: IntakeSettings, link_id: str) -> Path:
    return settings.blob_dir.parent / "caller-uploads" / link_id


def record_of(folder: Path, upload_id: str) -> dict[str, Any] | None:
    if not UPLOAD_ID.match(upload_id):
        return None
    try:
        return dict(json.loads((folder / f"{upload_id}.json").read_text()))
    except (OSError, ValueError):
        return None


def offset_of(folder: Path, upload_id: str) -> int:
    with contextlib.suppress(OSError):
        return (folder / upload_id).stat().st_size
    return 0


async def live_link(runtime: Any, token: str) -> CallerLink | Response:
    """The link, if an upload may go on now: it lives and the caller consented; else the tus answer why not."""
    async with runtime.db.sessions() as session:
        link = await links.find(session, token)
    standing = links.standing(link)
    if standing == links.Standing.UNKNOWN or link is None:
        return answer(404, "this link does not work")
    if standing != links.Standing.LIVE:
        remove_all(runtime.settings, link.link_id)
        return answer(410, "this link has ended")
    if link.consent != "given":
        return answer(403, "consent first")
    return link


def remove_all(settings: IntakeSettings, link_id: str) -> None:
    shutil.rmtree(folder_of(settings, link_id), ignore_errors=True)


class UnfinishedUploadSweep(BackgroundLoop):
    """Removes the unfinished uploads of links that ended (revoked, expired, or unknown here): a caller who walked
    away half-way leaves a part of their video on this replica's disk, which nothing else would ever touch. Each
    replica sweeps its own folder (uploads are local to the replica that took them)."""

    name = "caller-upload-sweep"
    poll_seconds = 60.0

    def __init__(self, runtime: Any) -> None:
        super().__init__()
        self.runtime = runtime

    async def run_once(self) -> int:
        base = self.runtime.settings.blob_dir.parent / "caller-uploads"
        folders = [f.name for f in base.iterdir() if f.is_dir()] if base.is_dir() else []
        if not folders:
            return 0
        async with self.runtime.db.sessions() as session:
            rows = (await session.execute(select(CallerLink).where(col(CallerLink.link_id).in_(folders)))).scalars()
            live = {link.link_id for link in rows if links.standing(link) == links.Standing.LIVE}
        ended = [name for name in folders if name not in live]
        for link_id in ended:
            remove_all(self.runtime.settings, link_id)
        return len(ended)


@router.options("/c/{token}/uploads")
async def capabilities(token: str) -> Response:
    return Response(
        status_code=204,
        headers=tus_headers(Tus_Version=TUS, Tus_Extension="creation,expiration,termination"),
    )


@router.post("/c/{token}/uploads")
async def create(token: str, request: Request, runtime: RuntimeDep) -> Response:
    settings: IntakeSettings = runtime.settings
    if request.headers.get("tus-resumable") != TUS:
        return answer(412, "Tus-Resumable: 1.0.0 only", Tus_Version=TUS)
    link = await live_link(runtime, token)
    if isinstance(link, Response):
        return link
    length = request.headers.get("upload-length", "")
    if not length.isdigit() or int(length) == 0:
        return answer(400, "Upload-Length: the file's size in bytes")
    if int(length) > max(settings.max_video_bytes, settings.max_photo_bytes):
        return answer(413, "the file is larger than any photo or video may be")
    folder = folder_of(settings, link.link_id)
    folder.mkdir(parents=True, exist_ok=True)
    waiting = len(list(folder.glob("*.json")))
    if link.files + waiting >= settings.max_photos_per_report:
        return answer(413, f"at most {settings.max_photos_per_report} files")
    upload_id = secrets.token_urlsafe(12)
    (folder / upload_id).touch()
    (folder / f"{upload_id}.json").write_text(json.dumps({"length": int(length)}))
    expires = link.expires_at.strftime("%a, %d %b %Y %H:%M:%S GMT")
    return answer(201, Location=f"/c/{token}/uploads/{upload_id}", Upload_Expires=expires)


async def upload_of(runtime: Any, token: str, upload_id: str) -> tuple[Path, dict[str, Any]] | Response:
    """An upload of a live link the caller consented on: its folder and record, or the tus answer why not."""
    link = await live_link(runtime, token)
    if isinstance(link, Response):
        return link
    folder = folder_of(runtime.settings, link.link_id)
    record = record_of(folder, upload_id)
    return answer(404) if record is None else (folder, record)


@router.head("/c/{token}/uploads/{upload_id}")
async def progress(token: str, upload_id: str, runtime: RuntimeDep) -> Response:
    found = await upload_of(runtime, token, upload_id)
    if isinstance(found, Response):
        return found
    folder, record = found
    return answer(200, Upload_Offset=str(offset_of(folder, upload_id)), Upload_Length=str(record["length"]))


@router.patch("/c/{token}/uploads/{upload_id}")
async def append(token: str, upload_id: str, request: Request, runtime: RuntimeDep) -> Response:
    """The next bytes, from the offset the client says it is at (which must be ours). Everything that arrives is
    kept, also when the connection drops before the end: the client asks how far it got and goes on."""
    if request.headers.get("content-type") != "application/offset+octet-stream":
        return answer(415, "Content-Type: application/offset+octet-stream")
    found = await upload_of(runtime, token, upload_id)
    if isinstance(found, Response):
        return found
    folder, record = found
    offset = offset_of(folder, upload_id)
    if request.headers.get("upload-offset") != str(offset):
        return answer(409, "Upload-Offset does not match", Upload_Offset=str(offset))
    length = int(record["length"])
    fd = os.open(folder / upload_id, os.O_WRONLY | os.O_APPEND)
    try:
        async for chunk in request.stream():
            if offset + len(chunk) > length:
                return answer(413, "more bytes than Upload-Length", Upload_Offset=str(offset))
            os.write(fd, chunk)  # a local file: as the multipart reader writes its parts
            offset += len(chunk)
    except ClientDisconnect:
        pass  # the phone lost its connection: what arrived stays, and HEAD says how much
    finally:
        os.close(fd)
    return answer(204, Upload_Offset=str(offset))


@router.delete("/c/{token}/uploads/{upload_id}")
async def terminate(token: str, upload_id: str, runtime: RuntimeDep) -> Response:
    found = await upload_of(runtime, token, upload_id)
    if isinstance(found, Response):
        return found
    folder, _record = found
    for path in (folder / upload_id, folder / f"{upload_id}.json"):
        path.unlink(missing_ok=True)
    return answer(204)


def finished_form(settings: IntakeSettings, link: CallerLink, ids: list[str], fields: dict[str, str]) -> UploadedForm:
    """The finished uploads named, as the multipart reader would have given them: each judged a video or not by
    its first bytes, a photo held to the photo size limit. Raises ServiceError for one that is not finished."""
    folder = folder_of(settings, link.link_id)
    form = UploadedForm(fields=fields)
    limits = UploadLimits(
        max_file_bytes=settings.max_photo_bytes,
        max_files=settings.max_photos_per_report,
        max_field_bytes=0,
        max_video_bytes=settings.max_video_bytes if settings.max_videos_per_report > 0 else 0,
        max_videos=max(0, settings.max_videos_per_report - link.videos),
    )
    for upload_id in dict.fromkeys(ids):  # each once, in the order sent
        record = record_of(folder, upload_id)
        if record is None or offset_of(folder, upload_id) != int(record["length"]):
            raise ServiceError(
                409,
                "upload_not_finished",
                "a file has not arrived completely: send it again",
                detail_nl="een bestand is niet helemaal aangekomen: stuur het opnieuw",
            )
        upload = UploadedFile("files", None, None, folder / upload_id, size=int(record["length"]))
        form.files.append(upload)
        form.also_remove(folder / f"{upload_id}.json")
        judge_whole_file(upload, form, limits)
    return form
