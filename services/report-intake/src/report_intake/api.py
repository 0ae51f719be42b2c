"""The citizen API (`/v1`). Routes only translate HTTP; the work happens in `reports` and `followup`."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Header, Request
from fastapi.responses import JSONResponse, StreamingResponse

from burgermelding_shared import idempotency
from burgermelding_shared.app import Runtime, RuntimeDep
from burgermelding_shared.categories import CATEGORIES
from burgermelding_shared.errors import error_responses, prefers_dutch
from report_intake import followup, reports
from report_intake.config import IntakeSettings
from report_intake.limits import IntakeLimits
from report_intake.schemas import (
    CategoryView,
    MessageIn,
    MessageView,
    PhotosAdded,
    ReportCreated,
    ReportSubmission,
    ReportView,
    Withdrawn,
)
from report_intake.uploads import UploadedForm, UploadLimits, read_multipart

router = APIRouter(prefix="/v1", tags=["citizen"])

AuthorizationHeader = Annotated[str | None, Header(description="`Bearer <access_token>` from the creation answer")]
IdempotencyKeyHeader = Annotated[str | None, Header(alias="Idempotency-Key",
                                                    description="A unique key per logical request (8-128 chars)")]
TOKEN_ERRORS = error_responses(404, 429)


def language(request: Request) -> str:
    return "nl" if prefers_dutch(request) else "en"


def bearer_token(authorization: str | None) -> str | None:
    if not authorization:
        return None
    scheme, _, token = authorization.partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None


def limits_of(runtime: Runtime) -> IntakeLimits:
    return runtime.extras["limits"]  # type: ignore[no-any-return]


def client_address(request: Request) -> str | None:
    """The citizen's address, used only to derive in-memory keys (see ratelimit.AnonymousClientKeys); never
    stored or logged. Behind trusted proxies it is the rightmost X-Forwarded-For hop that is not a proxy."""
    peer = request.client.host if request.client else None
    trusted = set(request.app.state.runtime.settings.trusted_proxies)
    if peer not in trusted:
        return peer
    hops = [hop.strip() for hop in request.headers.get("x-forwarded-for", "").split(",") if hop.strip()]
    for hop in reversed(hops):
        if hop not in trusted:
            return hop[:64]
    return peer


def with_token(request: Request, runtime: Runtime, authorization: str | None) -> str | None:
    limits_of(runtime).using_token(client_address(request))
    return bearer_token(authorization)


async def read_photos(request: Request, runtime: Runtime, require_report: bool) -> UploadedForm:
    settings: IntakeSettings = runtime.settings
    limits = UploadLimits(max_file_bytes=settings.max_photo_bytes, max_files=settings.max_photos_per_report,
                          max_field_bytes=settings.max_report_json_bytes, max_fields=1 if require_report else 0)
    return await read_multipart(request, limits, settings.blob_dir.parent / "uploads")


def multipart_body(with_report: bool) -> dict:
    properties: dict = {"photos": {"type": "array", "items": {"type": "string", "format": "binary"},
                                   "description": "JPEG, PNG, WebP or HEIC photos (type decided by content)."}}
    if with_report:
        properties["report"] = {"type": "string", "contentMediaType": "application/json",
                                "contentSchema": ReportSubmission.model_json_schema(),
                                "description": "The report as JSON (schema ReportSubmission)."}
    return {"requestBody": {"required": True, "content": {"multipart/form-data": {"schema": {
        "type": "object", "required": ["report"] if with_report else ["photos"], "properties": properties}}}}}


@router.post(
    "/reports", status_code=202, response_model=ReportCreated, summary="Send a report with zero or more photos",
    description="Multipart: a `report` part (JSON, see `ReportSubmission`) and zero or more `photos` parts. "
    "`Idempotency-Key` is required: a retry with the same key and content replays the first answer. "
    "When the report is in progress or there is danger to life, the answer tells the citizen to call 112, in "
    "Dutch or English after `Accept-Language`.",
    responses=error_responses(400, 409, 413, 415, 422, 429), openapi_extra=multipart_body(with_report=True),
)
async def create_report(request: Request, runtime: RuntimeDep, idempotency_key: IdempotencyKeyHeader = None
                        ) -> JSONResponse:
    limits_of(runtime).creating(client_address(request))
    key = idempotency.check_key(idempotency_key)
    form = await read_photos(request, runtime, require_report=True)
    try:
        submission = reports.parse_submission(form)
        reports.validate_submission(submission, runtime.settings)
        photos = await reports.check_photos(form, runtime.settings)
        tag = limits_of(runtime).keys.key(client_address(request))
        status_code, body = await reports.create_report(
            runtime, reports.NewReport(submission, photos, key, language(request), submitter_tag=tag))
    finally:
        form.cleanup()
    return JSONResponse(body, status_code=status_code)


@router.get("/reports/{report_id}", response_model=ReportView, summary="Status and timeline of a report",
            description="An unknown report, a wrong token and another report's token all get the same 404.",
            responses=TOKEN_ERRORS)
async def get_report(report_id: str, request: Request, runtime: RuntimeDep,
                     authorization: AuthorizationHeader = None) -> ReportView:
    token = with_token(request, runtime, authorization)
    return await reports.view_report(runtime, report_id, token, language(request))


@router.post("/reports/{report_id}/photos", status_code=202, response_model=PhotosAdded,
             summary="Add photos to an open report", responses=error_responses(400, 404, 409, 413, 415, 422, 429),
             openapi_extra=multipart_body(with_report=False))
async def add_photos(report_id: str, request: Request, runtime: RuntimeDep,
                     authorization: AuthorizationHeader = None,
                     idempotency_key: IdempotencyKeyHeader = None) -> PhotosAdded:
    token = with_token(request, runtime, authorization)
    key = idempotency.check_key(idempotency_key)
    form = await read_photos(request, runtime, require_report=False)
    try:
        photos = await reports.check_photos(form, runtime.settings)
        return await followup.add_photos(runtime, report_id, token, photos, key)
    finally:
        form.cleanup()


@router.get("/reports/{report_id}/messages", response_model=list[MessageView],
            summary="Messages between the dispatcher and you", responses=TOKEN_ERRORS)
async def list_messages(report_id: str, request: Request, runtime: RuntimeDep,
                        authorization: AuthorizationHeader = None) -> list[MessageView]:
    return await followup.list_messages(runtime, report_id, with_token(request, runtime, authorization))


@router.post("/reports/{report_id}/messages", status_code=201, response_model=MessageView,
             summary="Answer a question or send a message to the dispatcher",
             responses=error_responses(400, 404, 409, 422, 429))
async def send_message(report_id: str, message: MessageIn, request: Request, runtime: RuntimeDep,
                       authorization: AuthorizationHeader = None,
                       idempotency_key: IdempotencyKeyHeader = None) -> MessageView:
    token = with_token(request, runtime, authorization)
    key = idempotency.check_key(idempotency_key)
    return await followup.send_message(runtime, report_id, token, message, key)


@router.post("/reports/{report_id}/withdraw", summary="Withdraw the report (the meldkamer is told)",
             response_model=Withdrawn, responses=error_responses(404, 409, 429))
async def withdraw(report_id: str, request: Request, runtime: RuntimeDep,
                   authorization: AuthorizationHeader = None) -> Withdrawn:
    return Withdrawn(status=await followup.withdraw(runtime, report_id, with_token(request, runtime, authorization)))


@router.get("/reports/{report_id}/events", summary="Follow the timeline live (Server-Sent Events)",
            description="`text/event-stream`: one `timeline` event per timeline entry (after `Last-Event-ID`), "
            "then new ones as they happen, with a heartbeat every 15 s. The stream ends after a few minutes; "
            "reconnect with `Last-Event-ID`.",
            response_class=StreamingResponse, responses={200: {"content": {"text/event-stream": {"example": (
                'id: 3\nevent: timeline\ndata: {"event": "accepted", "occurred_at": "2026-11-22T20:10:06+00:00", '
                '"status": "accepted", "text": "The control room has taken up your report."}\n\n'
                ": keep-alive\n\n")}}}, **TOKEN_ERRORS})
async def follow_events(report_id: str, request: Request, runtime: RuntimeDep,
                        authorization: AuthorizationHeader = None,
                        last_event_id: Annotated[str | None, Header(alias="Last-Event-ID")] = None,
                        ) -> StreamingResponse:
    token = with_token(request, runtime, authorization)
    stream = await followup.timeline_stream(runtime, report_id, token, language(request), last_event_id)
    return StreamingResponse(stream, media_type="text/event-stream",
                             headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"})


@router.get("/categories", response_model=list[CategoryView], summary="The categories a report can have")
async def list_categories(request: Request) -> list[CategoryView]:
    nl = language(request) == "nl"
    return [CategoryView(code=c.code, name=c.name_nl if nl else c.name_en, hint=c.hint_nl if nl else c.hint_en,
                         lmc=c.lmc, apco=c.apco) for c in CATEGORIES.values()]
