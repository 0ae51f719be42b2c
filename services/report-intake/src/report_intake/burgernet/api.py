"""Routes for Burgernet as the app sees it: the feed, CAP, photos, receipts and answers."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Annotated

from fastapi import APIRouter, Header, Request
from fastapi.responses import JSONResponse, Response
from pydantic import ValidationError

from burgermelding_shared import idempotency
from burgermelding_shared.app import RuntimeDep
from burgermelding_shared.blobstore import BlobNotFound, published_store
from burgermelding_shared.burgernet import PublishedAction
from burgermelding_shared.errors import ServiceError, error_responses
from burgermelding_shared.openapi import embedded_schema
from report_intake.burgernet import actions, errors
from report_intake.burgernet import feed as action_feed
from report_intake.burgernet import receipts as action_receipts
from report_intake.burgernet.actions import Sighting
from report_intake.burgernet.receipts import Receipts
from report_intake.config import IntakeSettings
from report_intake.reports import submission
from report_intake.reports.api import receive_new_report
from report_intake.request_parts import CREDENTIAL_ERRORS, IdempotencyKeyHeader, SenderDep
from report_intake.schemas import ReportCreated, ReportSubmission
from report_intake.uploads import UploadedForm

router = APIRouter(prefix="/v1/burgernet", tags=["burgernet"])


IfNoneMatch = Annotated[str | None, Header(alias="If-None-Match", description="the ETag of the feed you have")]


FEED_DESCRIPTION = """Every open Burgernet action and witness call, and those ended in the last day with their
closing message: the same small document for every phone. **The app decides whether the phone is inside an
action's area; it never sends its location**, and nothing about a phone is stored for this.

Poll it about once a minute with `If-None-Match`: an unchanged feed answers 304 without a body. It may be cached
by proxies and CDNs for `max-age` seconds. For each new action the app sends one receipt (`POST
/v1/burgernet/receipts`), for every action in the feed, inside its area or not."""


def credential_needed() -> ServiceError:
    return ServiceError(
        401,
        "installation_credential_required",
        "Burgernet answers come from the app: send its Installation-Credential",
        detail_nl="Reacties op Burgernet komen uit de app: stuur de Installation-Credential mee",
    )


def cache_headers(settings: IntakeSettings, etag: str) -> dict[str, str]:
    return {name.decode(): value.decode() for name, value in action_feed.feed_headers(settings, etag)}


@router.get(
    "/actions",
    summary="The feed of active Burgernet actions (cacheable; conditional with ETag)",
    description=FEED_DESCRIPTION,
    responses={200: {"content": {"application/json": {}}}, 304: {"description": "the feed you have is current"}},
)
async def list_burgernet_actions(runtime: RuntimeDep, if_none_match: IfNoneMatch = None) -> Response:
    """Documents the feed; `burgernet.FeedFastPath` answers it before the routing (as this would)."""
    document = await action_feed.feed_of(runtime).current(runtime)
    headers = cache_headers(runtime.settings, document.etag)
    if action_feed.etag_matches(if_none_match, document.etag, document.gzip_etag):
        return Response(status_code=304, headers=headers)
    return Response(document.body, media_type="application/json", headers=headers)


@router.get(
    "/actions/{action_id}/cap",
    summary="The action as an OASIS CAP 1.2 alert (Dutch and English)",
    response_class=Response,
    responses={200: {"content": {"application/cap+xml": {}}}, **error_responses(404)},
)
async def get_burgernet_alert(action_id: str, runtime: RuntimeDep) -> Response:
    action = await action_feed.published(runtime, action_id)
    etag = f'"{action.action_id}-{action.version}"'
    return Response(
        action_feed.cap_document(runtime.settings, action),
        media_type="application/cap+xml",
        headers=cache_headers(runtime.settings, etag),
    )


@router.get(
    "/actions/{action_id}/photo",
    summary="The photo of whom or what is sought (a copy without metadata)",
    response_class=Response,
    responses={200: {"content": {"image/jpeg": {}}}, **error_responses(404)},
)
async def get_burgernet_action_photo(action_id: str, runtime: RuntimeDep) -> Response:
    action = await action_feed.published(runtime, action_id)
    if action.photo is None or action.status != "open":  # an ended action's photo is no longer shown
        raise ServiceError(
            404,
            "photo_not_found",
            "this action has no photo to show",
            detail_nl="bij deze actie hoort geen foto om te tonen",
        )
    try:  # from the published store alone: a digest of anything else is not there to be served
        data = await asyncio.to_thread(
            published_store(runtime.settings.blob_config()).read_verified, action.photo.sha256
        )
    except (BlobNotFound, ValueError) as exc:
        raise ServiceError(
            404, "photo_not_found", "the photo is not available", detail_nl="de foto is niet beschikbaar"
        ) from exc
    return Response(
        data,
        media_type="image/jpeg",
        headers={"Cache-Control": "public, max-age=300", "ETag": f'"{action.photo.sha256[:32]}"'},
    )


@router.post(
    "/receipts",
    summary="Confirm the actions this installation received (all of them, wherever the "
    "phone is): for the police's figure of how many were reached",
    responses=error_responses(401, 422, examples={401: [credential_needed(), *CREDENTIAL_ERRORS[401][:2]]}),
)
async def send_burgernet_receipts(body: Receipts, runtime: RuntimeDep, sender: SenderDep) -> dict[str, int]:
    if sender.installation_id is None:
        raise credential_needed()
    return await action_receipts.record_receipts(runtime, sender.installation_id, body.action_ids)


def sighting_parser(action: PublishedAction) -> Callable[[UploadedForm], ReportSubmission]:
    """Reads the `sighting` part of an answer to this action as the report it becomes."""

    def parse(form: UploadedForm) -> ReportSubmission:
        data = submission.parse_json_object(form.fields.get("sighting"), "sighting")
        try:
            sighting = Sighting.model_validate(data)
        except ValidationError as exc:
            problems = "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors())
            raise ServiceError(
                422, "invalid_sighting", problems, detail_nl=f"De reactie is niet geldig: {problems}"
            ) from exc
        return sighting.as_report(action)

    return parse


@router.post(
    "/actions/{action_id}/sightings",
    status_code=202,
    response_model=ReportCreated,
    summary="Answer an open action or witness call: what you saw, where and when, with photos",
    description="Multipart: a `sighting` part (JSON, see `Sighting`) and zero or more `photos` parts, with the "
    "app's `Installation-Credential` (answers are anonymous) and an `Idempotency-Key`. The answer is a report "
    "like any other (follow it with its access token): checked against the action's area and time, then sent "
    "to the meldkamer. Refused with 409 `burgernet_action_closed` once the action has ended.",
    responses=error_responses(
        400,
        401,
        404,
        409,
        413,
        415,
        422,
        429,
        examples={401: [credential_needed(), *CREDENTIAL_ERRORS[401][:2]], 409: [errors.action_closed()]},
    ),
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "multipart/form-data": {
                    "schema": {
                        "type": "object",
                        "required": ["sighting"],
                        "properties": {
                            "sighting": {
                                "type": "string",
                                "contentMediaType": "application/json",
                                "contentSchema": embedded_schema(Sighting),
                            },
                            "photos": {"type": "array", "items": {"type": "string", "format": "binary"}},
                        },
                    }
                }
            },
        }
    },
)
async def answer_burgernet_action(
    action_id: str,
    request: Request,
    runtime: RuntimeDep,
    sender: SenderDep,
    idempotency_key: IdempotencyKeyHeader = None,
) -> JSONResponse:
    key = idempotency.check_key(idempotency_key)
    if sender.installation_id is None:
        raise credential_needed()
    action = await actions.open_action(runtime, action_id)  # 404 / 409 before the upload is read
    return await receive_new_report(request, runtime, sender, key, sighting_parser(action), appeal=action)
