"""Routes of the citizen API for reports: send, follow, add to, talk about, withdraw; the categories."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated

from fastapi import APIRouter, Header, Request
from fastapi.responses import JSONResponse, StreamingResponse

from burgermelding_shared import idempotency
from burgermelding_shared.app import Runtime, RuntimeDep
from burgermelding_shared.burgernet import PublishedAction, is_live_search
from burgermelding_shared.categories import CATEGORIES
from burgermelding_shared.errors import error_responses
from burgermelding_shared.ratelimit import Reservation
from report_intake.conversation import messages
from report_intake.installations.senders import Sender
from report_intake.models import idempotency_keys
from report_intake.records import citizen_rights
from report_intake.reports import changes, creation, submission, timeline, views
from report_intake.reports import photos as report_photos
from report_intake.request_parts import (
    CREDENTIAL_ERRORS,
    TOKEN_ERRORS,
    AccessDep,
    ChangeAccessDep,
    IdempotencyKeyHeader,
    SenderDep,
    language,
    limits_of,
    multipart_body,
    read_photos,
)
from report_intake.schemas import (
    CategoryView,
    ContactRemoved,
    MessageIn,
    MessageView,
    PhotosAdded,
    ReportCreated,
    ReportSubmission,
    ReportView,
    StoredData,
    Withdrawn,
)
from report_intake.uploads import UploadedForm

router = APIRouter(prefix="/v1", tags=["citizen"])


@router.post(
    "/reports",
    status_code=202,
    response_model=ReportCreated,
    summary="Send a report with zero or more photos",
    description="Multipart: a `report` part (JSON, see `ReportSubmission`) and zero or more `photos` parts. "
    "`Idempotency-Key` is required: a retry with the same key and content replays the first answer. "
    "When the report is in progress or there is danger to life, the answer tells the citizen to call 112, in "
    "Dutch or English after `Accept-Language`. Send the app's `Installation-Credential`: without one, the "
    "report counts against the network address, which thousands of phones may share.",
    responses=error_responses(400, 401, 409, 413, 415, 422, 429, examples=CREDENTIAL_ERRORS),
    openapi_extra=multipart_body(with_report=True),
)
async def create_report(
    request: Request, runtime: RuntimeDep, sender: SenderDep, idempotency_key: IdempotencyKeyHeader = None
) -> JSONResponse:
    return await receive_new_report(
        request, runtime, sender, idempotency.check_key(idempotency_key), submission.parse_submission
    )


async def receive_new_report(
    request: Request,
    runtime: Runtime,
    sender: Sender,
    key: str,
    parse: Callable[[UploadedForm], ReportSubmission],
    appeal: PublishedAction | None = None,
) -> JSONResponse:
    """A new report (or an answer to a Burgernet action or witness call, `appeal`): counted against its limits
    before the upload is read, then the form parsed, checked and stored; the upload's files are gone afterwards,
    whatever happened."""
    if await idempotency.answered(runtime.db, idempotency_keys, creation.CREATE_REPORT, key):
        # A retry of an answered report costs none of the report quota, but is counted like a status poll:
        # it still sends its whole upload, which must not be free without bound.
        await limits_of(runtime).using_token(sender)
        reservation = Reservation()
    else:
        # Counted now, in one step with the check, so that a flood is refused before its uploads are read and a
        # burst sent in parallel gets exactly the limit through.
        reservation = await limits_of(runtime).new_report(sender)
    async with reservation:  # given back if the request fails: a refused photo, a storage error
        form = await read_photos(request, runtime, require_report=True)
        try:
            new = creation.NewReport(
                parse(form),
                [],
                key,
                language(request),
                sender=sender,
                appeal_id=appeal.action_id if appeal is not None else None,
                answers_live_search=appeal is not None and is_live_search(appeal.kind),
                reservation=reservation,
            )
            submission.validate_submission(new.submission, runtime.settings)
            new.photos = await report_photos.check_photos(runtime, form, urgent=new.urgent)
            status_code, body = await creation.create_report(runtime, new)
        finally:
            form.cleanup()
    return JSONResponse(body, status_code=status_code)


@router.get(
    "/reports/{report_id}",
    response_model=ReportView,
    summary="Status and timeline of a report",
    description="An unknown report, a wrong token and another report's token all get the same 404.",
    responses=TOKEN_ERRORS,
)
async def get_report(report_id: str, request: Request, runtime: RuntimeDep, access: AccessDep) -> ReportView:
    return await views.view_report(runtime, report_id, access, language(request))


@router.post(
    "/reports/{report_id}/photos",
    status_code=202,
    response_model=PhotosAdded,
    summary="Add photos to an open report",
    responses=error_responses(400, 401, 403, 404, 409, 413, 415, 422, 429, examples=CREDENTIAL_ERRORS),
    openapi_extra=multipart_body(with_report=False),
)
async def add_photos(
    report_id: str,
    request: Request,
    runtime: RuntimeDep,
    access: ChangeAccessDep,
    idempotency_key: IdempotencyKeyHeader = None,
) -> PhotosAdded:
    key = idempotency.check_key(idempotency_key)
    form = await read_photos(request, runtime, require_report=False)
    try:
        photos = await report_photos.check_photos(runtime, form)
        return await changes.add_photos(runtime, report_id, access, photos, key)
    finally:
        form.cleanup()


@router.get(
    "/reports/{report_id}/messages",
    response_model=list[MessageView],
    summary="Messages between the dispatcher and you",
    responses=TOKEN_ERRORS,
)
async def list_messages(report_id: str, runtime: RuntimeDep, access: AccessDep) -> list[MessageView]:
    return await messages.list_messages(runtime, report_id, access)


@router.post(
    "/reports/{report_id}/messages",
    status_code=201,
    response_model=MessageView,
    summary="Answer a question or send a message to the dispatcher",
    responses=error_responses(400, 401, 403, 404, 409, 422, 429, examples=CREDENTIAL_ERRORS),
)
async def send_message(
    report_id: str,
    message: MessageIn,
    runtime: RuntimeDep,
    access: ChangeAccessDep,
    idempotency_key: IdempotencyKeyHeader = None,
) -> MessageView:
    key = idempotency.check_key(idempotency_key)
    return await messages.send_message(runtime, report_id, access, message, key)


@router.post(
    "/reports/{report_id}/withdraw",
    summary="Withdraw the report (the meldkamer is told)",
    response_model=Withdrawn,
    responses=error_responses(401, 403, 404, 409, 429, examples=CREDENTIAL_ERRORS),
)
async def withdraw_report(report_id: str, runtime: RuntimeDep, access: AccessDep) -> Withdrawn:
    return await changes.withdraw(runtime, report_id, access)


@router.get(
    "/reports/{report_id}/data",
    response_model=StoredData,
    summary="Everything stored about your report, and when it will be removed",
    description="What we keep (the report, its photos' hashes, your contact details if you gave them, the "
    "messages), where copies are, what we never keep, and the retention rules that will remove it. "
    "Looking is recorded in the audit log.",
    responses=TOKEN_ERRORS,
)
async def get_stored_data(report_id: str, runtime: RuntimeDep, access: AccessDep) -> StoredData:
    return await citizen_rights.stored_data(runtime, report_id, access)


@router.delete(
    "/reports/{report_id}/contact",
    response_model=ContactRemoved,
    summary="Remove your contact details from the report, at any time",
    description="They are deleted here and at the dispatch bridge at once; the report itself stays.",
    responses=TOKEN_ERRORS,
)
async def remove_contact(report_id: str, runtime: RuntimeDep, access: AccessDep) -> ContactRemoved:
    return await citizen_rights.remove_contact(runtime, report_id, access)


@router.get(
    "/reports/{report_id}/events",
    summary="Follow the timeline live (Server-Sent Events)",
    description="`text/event-stream`: one `timeline` event per timeline entry (after `Last-Event-ID`), "
    "then new ones as they happen, with a heartbeat every 15 s. The stream ends after a few minutes; "
    "reconnect with `Last-Event-ID`.",
    response_class=StreamingResponse,
    responses={
        200: {
            "content": {
                "text/event-stream": {
                    "example": (
                        'id: 3\nevent: timeline\ndata: {"event": "accepted", '
                        '"occurred_at": "2026-11-22T20:10:06+00:00", '
                        '"status": "accepted", "text": "The control room has taken up your report."}\n\n'
                        ": keep-alive\n\n"
                    )
                }
            }
        },
        **TOKEN_ERRORS,
    },
)
async def follow_report_events(
    report_id: str,
    request: Request,
    runtime: RuntimeDep,
    access: AccessDep,
    last_event_id: Annotated[str | None, Header(alias="Last-Event-ID")] = None,
) -> StreamingResponse:
    stream = await timeline.timeline_stream(runtime, report_id, access, language(request), last_event_id)
    return StreamingResponse(
        stream, media_type="text/event-stream", headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"}
    )


@router.get("/categories", response_model=list[CategoryView], summary="The categories a report can have")
async def list_categories(request: Request) -> list[CategoryView]:
    nl = language(request) == "nl"
    return [
        CategoryView(
            code=c.code,
            name=c.name_nl if nl else c.name_en,
            hint=c.hint_nl if nl else c.hint_en,
            lmc=c.lmc,
            apco=c.apco,
        )
        for c in CATEGORIES.values()
    ]
