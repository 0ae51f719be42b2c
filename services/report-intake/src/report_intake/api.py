"""The citizen API (`/v1`). Routes only translate HTTP; the work happens in `reports` and `followup`."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated

from fastapi import APIRouter, Depends, Header, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse

from burgermelding_shared import idempotency
from burgermelding_shared.app import Runtime, RuntimeDep
from burgermelding_shared.burgernet import PublishedAction, is_live_search
from burgermelding_shared.categories import CATEGORIES
from burgermelding_shared.errors import ServiceError, error_responses, prefers_dutch
from burgermelding_shared.ratelimit import Reservation, client_address, rate_limited
from report_intake import followup, installations, reports
from report_intake.config import IntakeSettings
from report_intake.limits import IntakeLimits, Sender
from report_intake.models import idempotency_keys
from report_intake.reports import Access
from report_intake.schemas import (
    CategoryView,
    ContactRemoved,
    InstallationChallenge,
    InstallationCreated,
    InstallationRegistration,
    MessageIn,
    MessageView,
    PhotosAdded,
    ReportCreated,
    ReportSubmission,
    ReportView,
    StoredData,
    Withdrawn,
)
from report_intake.uploads import UploadedForm, UploadLimits, read_multipart

router = APIRouter(prefix="/v1", tags=["citizen"])
installation_router = APIRouter(prefix="/v1/installations", tags=["installations"])

AuthorizationHeader = Annotated[str | None, Header(description="`Bearer <access_token>` from the creation answer")]
IdempotencyKeyHeader = Annotated[str | None, Header(alias="Idempotency-Key",
                                                    description="A unique key per logical request (8-128 chars)")]
InstallationCredentialHeader = Annotated[str | None, Header(
    alias="Installation-Credential", description="The app's credential from `POST /v1/installations`. With it, "
    "limits count this installation, not the (shared) network address; without it, the address.")]
CREDENTIAL_ERRORS = {
    401: [installations.invalid_credential(), installations.revoked(), reports.credential_required()],
    403: [reports.installation_mismatch()],
}


def credential_to_revoke() -> ServiceError:
    return ServiceError(401, "installation_credential_required", "send the Installation-Credential to revoke",
                        detail_nl="Stuur de Installation-Credential mee om die in te trekken")

TOKEN_ERRORS = error_responses(401, 403, 404, 429, examples=CREDENTIAL_ERRORS)


def language(request: Request) -> str:
    return "nl" if prefers_dutch(request) else "en"


def bearer_token(authorization: str | None) -> str | None:
    if not authorization:
        return None
    scheme, _, token = authorization.partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None


def limits_of(runtime: Runtime) -> IntakeLimits:
    limits: IntakeLimits = runtime.extras["limits"]
    return limits


async def sender_of(request: Request, runtime: RuntimeDep,
                    installation_credential: InstallationCredentialHeader = None) -> Sender:
    """Who sends this request: the installation whose credential comes with it (401 for a bad one), and the
    address, which limits use only as a coarse guard then."""
    address = client_address(request)
    if installation_credential is None:
        return Sender(address)
    installation = await installations.authenticate(runtime.db, installation_credential)
    return Sender(address, installation.installation_id, installation.independent_source)


SenderDep = Annotated[Sender, Depends(sender_of)]


async def access_of(runtime: RuntimeDep, sender: SenderDep, authorization: AuthorizationHeader = None) -> Access:
    """A follow-up request on one report: counted against the sender, opened by the report's token."""
    await limits_of(runtime).using_token(sender)
    return Access(bearer_token(authorization), sender)


AccessDep = Annotated[Access, Depends(access_of)]


async def change_access_of(report_id: str, runtime: RuntimeDep, access: AccessDep) -> Access:
    """For a request that brings something to a report (photos, a message): the token (and the installation's
    credential) are checked before the body is judged (a JSON body is still parsed first by FastAPI) or an upload
    read, so that without them every such request gets the same 404 (or 401) and no upload is stored for it. The
    change checks them again in its own transaction."""
    async with runtime.db.sessions() as session:
        await reports.authorised_report(runtime, session, report_id, access, changing=True)
    return access


ChangeAccessDep = Annotated[Access, Depends(change_access_of)]


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
    "Dutch or English after `Accept-Language`. Send the app's `Installation-Credential`: without one, the "
    "report counts against the network address, which thousands of phones may share.",
    responses=error_responses(400, 401, 409, 413, 415, 422, 429, examples=CREDENTIAL_ERRORS),
    openapi_extra=multipart_body(with_report=True),
)
async def create_report(request: Request, runtime: RuntimeDep, sender: SenderDep,
                        idempotency_key: IdempotencyKeyHeader = None) -> JSONResponse:
    return await receive_new_report(request, runtime, sender, idempotency.check_key(idempotency_key),
                                    reports.parse_submission)


async def receive_new_report(request: Request, runtime: Runtime, sender: Sender, key: str,
                             parse: Callable[[UploadedForm], ReportSubmission],
                             appeal: PublishedAction | None = None) -> JSONResponse:
    """A new report (or an answer to a Burgernet action or witness call, `appeal`): counted against its limits
    before the upload is read, then the form parsed, checked and stored; the upload's files are gone afterwards,
    whatever happened."""
    if await idempotency.answered(runtime.db, idempotency_keys, reports.CREATE_REPORT, key):
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
            new = reports.NewReport(parse(form), [], key, language(request), sender=sender,
                                    appeal_id=appeal.action_id if appeal is not None else None,
                                    answers_live_search=appeal is not None and is_live_search(appeal.kind),
                                    reservation=reservation)
            reports.validate_submission(new.submission, runtime.settings)
            new.photos = await reports.check_photos(runtime, form, urgent=new.urgent)
            status_code, body = await reports.create_report(runtime, new)
        finally:
            form.cleanup()
    return JSONResponse(body, status_code=status_code)


@router.get("/reports/{report_id}", response_model=ReportView, summary="Status and timeline of a report",
            description="An unknown report, a wrong token and another report's token all get the same 404.",
            responses=TOKEN_ERRORS)
async def get_report(report_id: str, request: Request, runtime: RuntimeDep, access: AccessDep) -> ReportView:
    return await reports.view_report(runtime, report_id, access, language(request))


@router.post("/reports/{report_id}/photos", status_code=202, response_model=PhotosAdded,
             summary="Add photos to an open report",
             responses=error_responses(400, 401, 403, 404, 409, 413, 415, 422, 429, examples=CREDENTIAL_ERRORS),
             openapi_extra=multipart_body(with_report=False))
async def add_photos(report_id: str, request: Request, runtime: RuntimeDep, access: ChangeAccessDep,
                     idempotency_key: IdempotencyKeyHeader = None) -> PhotosAdded:
    key = idempotency.check_key(idempotency_key)
    form = await read_photos(request, runtime, require_report=False)
    try:
        photos = await reports.check_photos(runtime, form)
        return await followup.add_photos(runtime, report_id, access, photos, key)
    finally:
        form.cleanup()


@router.get("/reports/{report_id}/messages", response_model=list[MessageView],
            summary="Messages between the dispatcher and you", responses=TOKEN_ERRORS)
async def list_messages(report_id: str, runtime: RuntimeDep, access: AccessDep) -> list[MessageView]:
    return await followup.list_messages(runtime, report_id, access)


@router.post("/reports/{report_id}/messages", status_code=201, response_model=MessageView,
             summary="Answer a question or send a message to the dispatcher",
             responses=error_responses(400, 401, 403, 404, 409, 422, 429, examples=CREDENTIAL_ERRORS))
async def send_message(report_id: str, message: MessageIn, runtime: RuntimeDep, access: ChangeAccessDep,
                       idempotency_key: IdempotencyKeyHeader = None) -> MessageView:
    key = idempotency.check_key(idempotency_key)
    return await followup.send_message(runtime, report_id, access, message, key)


@router.post("/reports/{report_id}/withdraw", summary="Withdraw the report (the meldkamer is told)",
             response_model=Withdrawn, responses=error_responses(401, 403, 404, 409, 429, examples=CREDENTIAL_ERRORS))
async def withdraw(report_id: str, runtime: RuntimeDep, access: AccessDep) -> Withdrawn:
    return await followup.withdraw(runtime, report_id, access)


@router.get("/reports/{report_id}/data", response_model=StoredData,
            summary="Everything stored about your report, and when it will be removed",
            description="What we keep (the report, its photos' hashes, your contact details if you gave them, the "
            "messages), where copies are, what we never keep, and the retention rules that will remove it. "
            "Looking is recorded in the audit log.", responses=TOKEN_ERRORS)
async def stored_data(report_id: str, runtime: RuntimeDep, access: AccessDep) -> StoredData:
    return await followup.stored_data(runtime, report_id, access)


@router.delete("/reports/{report_id}/contact", response_model=ContactRemoved,
               summary="Remove your contact details from the report, at any time",
               description="They are deleted here and at the dispatch bridge at once; the report itself stays.",
               responses=TOKEN_ERRORS)
async def remove_contact(report_id: str, runtime: RuntimeDep, access: AccessDep) -> ContactRemoved:
    return await followup.remove_contact(runtime, report_id, access)


@router.get("/reports/{report_id}/events", summary="Follow the timeline live (Server-Sent Events)",
            description="`text/event-stream`: one `timeline` event per timeline entry (after `Last-Event-ID`), "
            "then new ones as they happen, with a heartbeat every 15 s. The stream ends after a few minutes; "
            "reconnect with `Last-Event-ID`.",
            response_class=StreamingResponse, responses={200: {"content": {"text/event-stream": {"example": (
                'id: 3\nevent: timeline\ndata: {"event": "accepted", "occurred_at": "2026-11-22T20:10:06+00:00", '
                '"status": "accepted", "text": "The control room has taken up your report."}\n\n'
                ": keep-alive\n\n")}}}, **TOKEN_ERRORS})
async def follow_events(report_id: str, request: Request, runtime: RuntimeDep, access: AccessDep,
                        last_event_id: Annotated[str | None, Header(alias="Last-Event-ID")] = None,
                        ) -> StreamingResponse:
    stream = await followup.timeline_stream(runtime, report_id, access, language(request), last_event_id)
    return StreamingResponse(stream, media_type="text/event-stream",
                             headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"})


@router.get("/categories", response_model=list[CategoryView], summary="The categories a report can have")
async def list_categories(request: Request) -> list[CategoryView]:
    nl = language(request) == "nl"
    return [CategoryView(code=c.code, name=c.name_nl if nl else c.name_en, hint=c.hint_nl if nl else c.hint_en,
                         lmc=c.lmc, apco=c.apco) for c in CATEGORIES.values()]


REGISTRATION_FLOW = """Register the app once, before its first report:

1. `POST /v1/installations/challenges`: a challenge and a difficulty (`difficulty_bits`, 20 by default).
2. Find a `solution` (1-64 characters of A-Z a-z 0-9 _ -; a decimal counter 0, 1, 2, ... does) such that
   SHA-256 of the UTF-8 text `<challenge>:<solution>` starts with `difficulty_bits` zero bits. At 20 bits
   that takes about a million tries: roughly a second on a phone. Do it off the main thread.
3. `POST /v1/installations` with `{"challenge", "solution"}`: the credential, shown once. Keep it in the
   platform's secure storage and send it as the `Installation-Credential` header with every request.

Each challenge is good for ten minutes and for one registration. A lost answer means solving a new one.
The credential tells installations apart, never people: nothing about the phone, its owner or its address
is stored. `DELETE /v1/installations/current` revokes it (for example when the user resets the app)."""


@installation_router.post(
    "/challenges", status_code=201, response_model=InstallationChallenge,
    summary="Step 1: a proof-of-work challenge for registering the app", description=REGISTRATION_FLOW,
)
async def new_challenge(runtime: RuntimeDep) -> InstallationChallenge:
    # Not limited: a challenge is stateless and cheap, and a limit per address would let one abuser behind a
    # shared address stop every phone beside it from registering.
    settings: IntakeSettings = runtime.settings
    issued = installations.issue_challenge(settings.token_secret, settings.installation_pow_bits)
    return InstallationChallenge(challenge=issued.value, difficulty_bits=issued.difficulty_bits,
                                 expires_at=issued.expires_at)


@installation_router.post(
    "", status_code=201, response_model=InstallationCreated,
    summary="Step 2: redeem a solved challenge for the installation's credential", description=REGISTRATION_FLOW,
    responses=error_responses(409, 422, 429, examples={
        409: [installations.replayed()],
        422: [installations.invalid_proof(20), installations.expired_challenge(), installations.invalid_challenge(),
              ServiceError(422, "validation_error", "body.solution: Field required",
                           detail_nl="Het verzoek is niet geldig: body.solution: Field required")],
        429: [rate_limited(42)]}),
)
async def register_installation(registration: InstallationRegistration, request: Request,
                                runtime: RuntimeDep) -> InstallationCreated:
    address, limits = client_address(request), limits_of(runtime)
    registered = await installations.register(runtime.db, runtime.settings.token_secret, registration.challenge,
                                              registration.solution, lambda: limits.new_installation(address),
                                              await limits.address_pseudonym(address))
    return InstallationCreated(installation_id=registered.installation_id, credential=registered.credential)


@installation_router.delete(
    "/current", status_code=204, response_class=Response, summary="Revoke this installation's credential",
    description="After this the credential is refused (401 `installation_revoked`); reports made with it keep "
    "their access tokens, but changing them needs the credential that made them.",
    responses=error_responses(401, examples={401: [*CREDENTIAL_ERRORS[401][:2], credential_to_revoke()]}),
)
async def revoke_installation(runtime: RuntimeDep, sender: SenderDep) -> Response:
    if sender.installation_id is None:
        raise credential_to_revoke()
    await installations.revoke(runtime.db, sender.installation_id)
    return Response(status_code=204)
