"""The caller's page: `/c/{token}` on intake's public host, the link in the caller's SMS.

Plain HTML in the caller's language (the dispatcher's choice; a link switches), no script needed, nothing from
another host (a Content-Security-Policy says so to the browser too). First the consent screen: what will be
shared, with whom, for how long. A refusal is recorded and the dispatcher sees it; so is consent. A link that is
unknown, ended by the dispatcher or out of time gets a page saying so, and nothing is stored for it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Awaitable, Callable
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse, HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates
from pydantic import ValidationError

from burgermelding_shared.app import RuntimeDep
from burgermelding_shared.contracts import Location, RefusalSaid
from burgermelding_shared.errors import ServiceError
from burgermelding_shared.timeutil import utcnow
from report_intake.callers import links, resumable
from report_intake.callers.texts import TEXTS
from report_intake.config import IntakeSettings
from report_intake.models import CallerLink
from report_intake.reports import creation
from report_intake.reports import photos as report_photos
from report_intake.schemas import ReportSubmission
from report_intake.uploads import UploadedForm, UploadLimits, read_multipart

router = APIRouter(include_in_schema=False)
templates = Jinja2Templates(directory=Path(__file__).parent / "templates")
AMSTERDAM = ZoneInfo("Europe/Amsterdam")
HEADERS = {
    "Cache-Control": "no-store",
    "Referrer-Policy": "no-referrer",  # the token is in the path: never sent on to anyone
    "X-Robots-Tag": "noindex",
    "Content-Security-Policy": "default-src 'none'; script-src 'self'; connect-src 'self'; style-src 'unsafe-inline'; "
    "img-src 'self'; "
    "form-action 'self'; base-uri 'none'; frame-ancestors 'none'",
}
ENDED_STATUS = {links.Standing.UNKNOWN: 404, links.Standing.REVOKED: 410, links.Standing.EXPIRED: 410}


def language_of(asked: str | None, link: CallerLink | None) -> str:
    if asked in TEXTS:
        return str(asked)
    return link.language if link is not None and link.language in TEXTS else "nl"


def kept_days(settings: IntakeSettings) -> int:
    """How long a caller's images are kept at most, as the retention rules say (the first rule that removes a
    report's images whatever became of it)."""
    days = [r.after_days for r in settings.retention_rules if r.outcome == "any" and r.action in ("anonymise", "purge")]
    return round(min(days)) if days else 365


def clock(moment: datetime) -> str:
    return moment.astimezone(AMSTERDAM).strftime("%H:%M")


def render(request: Request, name: str, lang: str, heading_key: str, *, status: int = 200, **context: Any) -> Response:
    texts = TEXTS[lang]
    values = {"lang": lang, "other": "en" if lang == "nl" else "nl", "t": texts, "heading": texts[heading_key]}
    return templates.TemplateResponse(
        request, name, {**values, **context}, status_code=status, headers=HEADERS, media_type="text/html"
    )


def ended(request: Request, standing: links.Standing, lang: str) -> Response:
    key = standing.value
    return render(
        request, "ended.html", lang, f"{key}_title", status=ENDED_STATUS[standing], text=TEXTS[lang][f"{key}_text"]
    )


@router.get("/c/{token}", response_class=HTMLResponse)
async def caller_page(token: str, request: Request, runtime: RuntimeDep, lang: str | None = None) -> Response:
    async with runtime.db.transaction() as session:
        link = await links.find(session, token)
        standing = links.standing(link)
        language = language_of(lang, link)
        if standing != links.Standing.LIVE or link is None:
            return ended(request, standing, language)
        if link.opened_at is None:
            link.opened_at = utcnow()
            await links.tell_bridge(session, link, "opened")
        common = page_values(token, link, language)
    if link.consent == "given":
        return await share_page(request, token, language)
    if link.consent == "refused":
        return render(request, "refused.html", language, "refused_title", **common)
    how_long = TEXTS[language]["how_long_text"].format(days=kept_days(runtime.settings))
    return render(request, "consent.html", language, "title", how_long=how_long, **common)


@router.post("/c/{token}/consent", response_class=HTMLResponse)
async def consent(token: str, request: Request, runtime: RuntimeDep) -> Response:
    form = await request.form()
    decision, asked = str(form.get("decision", "")), str(form.get("lang", ""))
    async with runtime.db.transaction() as session:
        link = await links.find(session, token)
        standing = links.standing(link)
        language = language_of(asked, link)
        if standing != links.Standing.LIVE or link is None:
            return ended(request, standing, language)
        answer = {"give": "given", "refuse": "refused"}.get(decision)
        if answer is not None and link.consent != answer:
            link.consent, link.consent_at = answer, utcnow()
            await links.tell_bridge(session, link, "consent_given" if answer == "given" else "consent_refused")
    # After a POST, the page itself (a reload then asks nothing again).
    return RedirectResponse(f"/c/{token}?lang={language}", status_code=303, headers={"Cache-Control": "no-store"})


def caller_location(fields: dict[str, str], link: CallerLink) -> Location:
    """The caller's place if the page got it (Geolocation, which the caller allowed separately), else the
    incident's centre, said so in the place's description."""
    try:
        lat, lon = float(fields.get("lat", "")), float(fields.get("lon", ""))
        accuracy = float(fields["accuracy"]) if fields.get("accuracy") else None
        return Location(lat=lat, lon=lon, accuracy_m=min(accuracy, 100_000) if accuracy else None)
    except (ValueError, ValidationError):
        return Location(lat=link.lat, lon=link.lon, description="the incident's place (the caller shared none)")


@router.post("/c/{token}/files", response_class=HTMLResponse)
async def send_files(token: str, request: Request, runtime: RuntimeDep) -> Response:
    """The caller's photos and videos: checked like the app's (by content; a video in its limited reader), made a
    report of the link's incident, which the bridge joins to that incident at once. Refused files store nothing
    and the page says why; what was taken is told to the dispatcher."""
    settings: IntakeSettings = runtime.settings
    found = await consenting_link(request, runtime, token)
    if isinstance(found, Response):
        return found
    link, language = found
    limits = UploadLimits(
        max_file_bytes=settings.max_photo_bytes,
        max_files=max(0, settings.max_photos_per_report - link.files),
        max_field_bytes=64,
        max_fields=3,
        file_field="files",
        max_video_bytes=settings.max_video_bytes,
        max_videos=max(0, settings.max_videos_per_report - link.videos),
    )
    await tell_uploading(runtime, link)
    return await report_from(
        request,
        runtime,
        token,
        link,
        language,
        lambda: read_multipart(request, limits, settings.blob_dir.parent / "uploads"),
    )


@router.post("/c/{token}/uploads/done", response_class=HTMLResponse)
async def uploads_done(token: str, request: Request, runtime: RuntimeDep) -> Response:
    """The page's resumable uploads (resumable.py) are all in: they become the caller's report as the form's do."""
    found = await consenting_link(request, runtime, token)
    if isinstance(found, Response):
        return found
    link, language = found
    posted = await request.form()
    ids = [str(i) for i in posted.getlist("upload")][:50]
    fields = {k: str(posted.get(k, "")) for k in ("lat", "lon", "accuracy") if posted.get(k)}

    async def finished() -> UploadedForm:
        return resumable.finished_form(runtime.settings, link, ids, fields)

    return await report_from(request, runtime, token, link, language, finished)


async def consenting_link(request: Request, runtime: Any, token: str) -> tuple[CallerLink, str] | Response:
    """The link files may be sent through now (it lives, and the caller consented) and the page's language; else
    the page to show instead: the ended link's, or the consent screen (consent comes first, on its own)."""
    async with runtime.db.sessions() as session:
        link = await links.find(session, token)
    standing = links.standing(link)
    language = language_of(request.query_params.get("lang"), link)
    if standing != links.Standing.LIVE or link is None:
        return ended(request, standing, language)
    if link.consent != "given":
        return RedirectResponse(f"/c/{token}?lang={language}", status_code=303, headers={"Cache-Control": "no-store"})
    return link, language


async def report_from(
    request: Request,
    runtime: Any,
    token: str,
    link: CallerLink,
    language: str,
    read: Callable[[], Awaitable[UploadedForm]],
) -> Response:
    """Read the caller's files (`read`: the form's, or the finished resumable uploads) and make them the report;
    a refusal is the page again, saying why, with nothing stored. The files are removed either way."""
    form = None
    try:
        form = await read()
        sent = await files_to_report(runtime, link, form, language)
    except ServiceError as refusal:
        await tell_refused(runtime, link, refusal)
        return await share_page(request, token, language, problem=refusal, status=refusal.status_code)
    finally:
        if form is not None:
            form.cleanup()
    return RedirectResponse(
        f"/c/{token}?lang={language}&sent={sent}", status_code=303, headers={"Cache-Control": "no-store"}
    )


async def tell_uploading(runtime: Any, link: CallerLink) -> None:
    async with runtime.db.transaction() as session:
        fresh = await session.get(CallerLink, link.link_id)
        if fresh is not None:
            await links.tell_bridge(session, fresh, "uploading", fresh.files)


async def tell_refused(runtime: Any, link: CallerLink, refusal: ServiceError) -> None:
    """The dispatcher sees why the caller's files were not taken (and no longer "uploading")."""
    said = RefusalSaid(error=refusal.error[:64], detail_en=refusal.detail[:300], detail_nl=refusal.detail_nl[:300])
    async with runtime.db.transaction() as session:
        fresh = await session.get(CallerLink, link.link_id)
        if fresh is not None:
            await links.tell_bridge(session, fresh, "upload_refused", fresh.files, said)


async def files_to_report(runtime: Any, link: CallerLink, form: UploadedForm, language: str) -> int:
    """The caller's files, checked like the app's (a photo decoded, a video read in its limited child), as one
    report of the link's incident; the link's count goes up and the dispatcher is told. Returns how many."""
    if not form.files:
        raise ServiceError(
            422, "no_files", "choose at least one photo or video", detail_nl="kies minstens één foto of video"
        )
    media = await report_photos.check_photos(runtime, form, urgent=True)
    submission = ReportSubmission(
        category=link.category,
        description=TEXTS["nl"]["report_from_caller"].format(ask=link.ask)[:2000],
        location=caller_location(form.fields, link),
        observed_at=utcnow(),
        in_progress=False,
    )
    # The same files again (a retry of a request whose answer was lost) are the same report.
    key = "caller:" + link.link_id + ":" + hashlib.sha256("".join(m.sha256 for m in media).encode()).hexdigest()
    await creation.create_report(
        runtime, creation.NewReport(submission, media, key, language, caller_link_id=link.link_id)
    )
    videos = sum(m.kind == "video" for m in media)
    async with runtime.db.transaction() as session:
        fresh = await session.get(CallerLink, link.link_id, with_for_update=True)
        if fresh is not None:
            fresh.files, fresh.videos = fresh.files + len(media), fresh.videos + videos
            await links.tell_bridge(session, fresh, "received", fresh.files)
    return len(media)


async def share_page(
    request: Request, token: str, language: str, *, problem: ServiceError | None = None, status: int = 200
) -> Response:
    runtime = runtime_of(request)
    settings: IntakeSettings = runtime.settings
    async with runtime.db.sessions() as session:
        link = await links.find(session, token)
    if link is None:
        return ended(request, links.Standing.UNKNOWN, language)
    return render(
        request,
        "share.html",
        language,
        "share_title",
        status=status,
        **page_values(token, link, language),
        problem=(problem.detail_nl if language == "nl" else problem.detail) if problem else None,
        sent=request.query_params.get("sent"),
        max_files=max(0, settings.max_photos_per_report - link.files),
        max_video_bytes=settings.max_video_bytes,
        max_photo_bytes=settings.max_photo_bytes,
    )


def runtime_of(request: Request) -> Any:
    return request.app.state.runtime


def page_values(token: str, link: CallerLink, language: str) -> dict[str, Any]:
    return {
        "ask": link.ask,
        "link_lang": link.language,
        "action": f"/c/{token}/consent",
        "files_action": f"/c/{token}/files?lang={language}",
        "uploads_endpoint": f"/c/{token}/uploads",
        "uploads_done": f"/c/{token}/uploads/done?lang={language}",
        "valid_until": TEXTS[language]["valid_until"].format(until=clock(link.expires_at)),
        "files_sent": link.files,
    }


STATIC = {"location.js", "upload.js", "tus.min.js"}  # the page's scripts, from this host: nothing from anyone else


@router.get("/c-static/{name}")
async def static_script(name: str) -> Response:
    """The page's scripts: the location on request, and the resumable upload (with tus-js-client 4.3.1, MIT,
    vendored from npm; its licence is beside it)."""
    if name not in STATIC:
        return Response(status_code=404)
    return FileResponse(
        Path(__file__).parent / "static" / name,
        media_type="text/javascript",
        headers={"Cache-Control": "public, max-age=3600"},
    )


@router.api_route("/c/{anything:path}", methods=["GET", "POST"], response_class=HTMLResponse)
async def not_a_link(anything: str, request: Request, lang: str | None = None) -> Response:
    """Whatever else is asked under /c/ (a link cut off or pasted wrong, a path someone tries): the page for a
    link that does not work, in HTML like the rest, never the API's JSON."""
    return ended(request, links.Standing.UNKNOWN, language_of(lang, None))
