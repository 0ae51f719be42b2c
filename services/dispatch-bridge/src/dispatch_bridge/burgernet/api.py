"""Routes for Burgernet actions (dispatchers) and the meldkamer's requests to start one."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request

from burgermelding_shared import webhooks
from burgermelding_shared.app import RuntimeDep
from burgermelding_shared.burgernet import ActionPhoto, ActionStatus
from burgermelding_shared.catalogue import BURGERNET_REQUEST
from burgermelding_shared.contracts import MeldkamerAppeal
from burgermelding_shared.errors import ServiceError, error_responses
from dispatch_bridge.accounts.tokens import AnyDispatcher, Supervisor
from dispatch_bridge.burgernet import actions, control_room, photos
from dispatch_bridge.burgernet.actions import ActionRequest, Cancellation, Closing
from dispatch_bridge.burgernet.views import (
    BurgernetActionDetail,
    BurgernetActionOverview,
    BurgernetActionView,
    MeldkamerBurgernetReply,
)

router = APIRouter(prefix="/v1/dispatch/burgernet", tags=["burgernet"])


meldkamer = APIRouter(prefix="/v1/meldkamer", tags=["meldkamer"])


PHOTO_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            t: {"schema": {"type": "string", "format": "binary"}}
            for t in ("image/jpeg", "image/png", "image/webp", "image/heic")
        },
    }
}


@router.post(
    "/photos",
    status_code=201,
    response_model=ActionPhoto,
    summary="Upload the photo of whom or what is sought (the body is the image); it is published "
    "only as a copy without metadata, whose digest a new action names as `photo_sha256` (audited)",
    responses=error_responses(401, 403, 413, 415, 422),
    openapi_extra=PHOTO_BODY,
)
async def upload_burgernet_photo(request: Request, runtime: RuntimeDep, actor: AnyDispatcher) -> ActionPhoto:
    data = bytearray()
    async for chunk in request.stream():
        data += chunk
        if len(data) > photos.MAX_PHOTO_BYTES:
            break  # store_photo refuses it with 413; no need to read the rest
    return await photos.store_photo(runtime, actor, bytes(data))


@router.post(
    "/actions",
    status_code=201,
    response_model=BurgernetActionView,
    summary="Start a Burgernet action (a search now) or a witness call "
    "(about a past window) on an incident: published to the apps in the area at once (audited)",
    responses=error_responses(401, 403, 404, 409, 422),
)
async def start_burgernet_action(request: ActionRequest, runtime: RuntimeDep, actor: AnyDispatcher) -> dict[str, Any]:
    return await actions.start_action(runtime, actor, request)


@router.get(
    "/actions",
    response_model=list[BurgernetActionOverview],
    summary="Actions, newest first, with their figures: installations that fetched each, "
    "answers, time to the first answer, outcome",
    responses=error_responses(401, 403),
)
async def list_burgernet_actions(
    runtime: RuntimeDep,
    _actor: AnyDispatcher,
    status: ActionStatus | None = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> list[dict[str, Any]]:
    return await actions.list_actions(runtime, status, limit)


@router.get(
    "/actions/{action_id}",
    response_model=BurgernetActionDetail,
    summary="One action with its figures and its answers (the view is audited)",
    responses=error_responses(401, 403, 404),
)
async def get_burgernet_action(action_id: str, runtime: RuntimeDep, actor: AnyDispatcher) -> dict[str, Any]:
    return await actions.get_action(runtime, actor, action_id)


@router.post(
    "/actions/{action_id}/close",
    response_model=BurgernetActionView,
    summary="Close an action with its outcome and closing message (the "
    "standard one when left out): the apps and every citizen who answered get it (audited)",
    responses=error_responses(401, 403, 404, 409, 422),
)
async def close_burgernet_action(
    action_id: str, closing: Closing, runtime: RuntimeDep, actor: AnyDispatcher
) -> dict[str, Any]:
    return await actions.close_action(runtime, actor, action_id, closing)


@router.post(
    "/actions/{action_id}/cancel",
    response_model=BurgernetActionView,
    summary="Cancel an action (supervisors; audited): published as a CAP Cancel with its closing message",
    responses=error_responses(401, 403, 404, 409, 422),
)
async def cancel_burgernet_action(
    action_id: str, cancellation: Cancellation, runtime: RuntimeDep, actor: Supervisor
) -> dict[str, Any]:
    return await actions.cancel_action(runtime, actor, action_id, cancellation)


@meldkamer.post(
    BURGERNET_REQUEST.under(meldkamer.prefix),
    status_code=201,
    response_model=MeldkamerBurgernetReply,
    summary="The meldkamer starts a Burgernet action on one of our incidents, around its place (signed webhook)",
    responses=error_responses(401, 404, 409, 422),
    openapi_extra=webhooks.SIGNED_WEBHOOK,
)
async def receive_meldkamer_burgernet_action(request: Request, runtime: RuntimeDep) -> dict[str, Any]:
    body = await request.body()
    signed = webhooks.verify(runtime.settings.meldkamer_webhook_keys, request.headers, body)
    try:
        appeal = MeldkamerAppeal.model_validate_json(body)
    except ValueError as exc:
        raise ServiceError(
            422,
            "invalid_burgernet_request",
            "the body is not a valid Burgernet request",
            detail_nl="de inhoud is geen geldig Burgernet-verzoek",
        ) from exc
    return await control_room.from_meldkamer(runtime, appeal, signed.webhook_id)
