"""Internal endpoints for our own services, and the meldkamer's signed callbacks and photo fetches."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import FileResponse, Response

from burgermelding_shared import webhooks
from burgermelding_shared.app import InternalMessage, RuntimeDep, internal_message
from burgermelding_shared.blobstore import BlobNotFound
from burgermelding_shared.catalogue import (
    CALLER_LINK_EVENT,
    CITIZEN_MESSAGE,
    GROUPS_MERGED,
    INCIDENT_EVENT,
    REPORT_FOR_BRIDGE,
    REPORT_WITHDRAWN,
    RETENTION_FOR_BRIDGE,
    VERIFICATION_COMPLETED,
)
from burgermelding_shared.contracts import (
    CallerLinkEvent,
    CitizenMessage,
    GroupsMerged,
    IncidentEvent,
    ReportSubmitted,
    ReportWithdrawn,
    RetentionApplied,
    VerificationCompleted,
)
from burgermelding_shared.errors import ServiceError, error_responses
from dispatch_bridge.accounts.tokens import Actor
from dispatch_bridge.audit import audit
from dispatch_bridge.callers import links
from dispatch_bridge.citizens import conversation
from dispatch_bridge.desk import listings
from dispatch_bridge.incidents import merging
from dispatch_bridge.meldkamer import callbacks, media
from dispatch_bridge.records import retention
from dispatch_bridge.reports import receiving, verdicts

MELDKAMER = Actor("meldkamer", "meldkamer")  # the control room, by its signed photo link

internal = APIRouter(prefix="/internal/v1", tags=["internal"])
meldkamer = APIRouter(prefix="/v1", tags=["meldkamer"])


@internal.post(
    REPORT_FOR_BRIDGE.under(internal.prefix),
    summary="A new report, from intake",
    responses=error_responses(400, 401, 403, 422),
)
async def receive_report(
    report: ReportSubmitted,
    runtime: RuntimeDep,
    sender: InternalMessage = internal_message("report-intake"),
) -> dict[str, str]:
    return {"status": await receiving.receive_report(runtime, report, sender.message_id, sender.source)}


@internal.post(
    VERIFICATION_COMPLETED.under(internal.prefix),
    summary="A verification result, from verification",
    responses=error_responses(400, 401, 403, 409, 422),
)
async def receive_verification(
    result: VerificationCompleted,
    runtime: RuntimeDep,
    sender: InternalMessage = internal_message("verification"),
) -> dict[str, str]:
    return {"status": await verdicts.receive_verification(runtime, result, sender.message_id, sender.source)}


@internal.post(
    REPORT_WITHDRAWN.under(internal.prefix),
    summary="A citizen withdrew a report, from intake",
    responses=error_responses(400, 401, 403, 409, 422),
)
async def receive_withdrawal(
    withdrawal: ReportWithdrawn,
    runtime: RuntimeDep,
    sender: InternalMessage = internal_message("report-intake"),
) -> dict[str, str]:
    return {"status": await receiving.receive_withdrawal(runtime, withdrawal, sender.message_id, sender.source)}


@internal.post(
    CALLER_LINK_EVENT.under(internal.prefix),
    summary="What a caller did with a one-time link (opened, consent, uploads), from intake",
    responses=error_responses(400, 401, 403, 409, 422),
)
async def receive_caller_link_event(
    event: CallerLinkEvent,
    runtime: RuntimeDep,
    sender: InternalMessage = internal_message("report-intake"),
) -> dict[str, str]:
    return {"status": await links.apply_event(runtime, event, sender.message_id, sender.source)}


@internal.post(
    CITIZEN_MESSAGE.under(internal.prefix),
    summary="A citizen's message or answer, from intake",
    responses=error_responses(400, 401, 403, 409, 422),
)
async def receive_citizen_message(
    message: CitizenMessage,
    runtime: RuntimeDep,
    sender: InternalMessage = internal_message("report-intake"),
) -> dict[str, str]:
    return {"status": await conversation.receive_citizen_message(runtime, message, sender.message_id, sender.source)}


@internal.post(
    GROUPS_MERGED.under(internal.prefix),
    summary="Two groups of reports are one event, from verification's merge pass",
    responses=error_responses(400, 401, 403, 422),
)
async def receive_group_merge(
    merge: GroupsMerged,
    runtime: RuntimeDep,
    sender: InternalMessage = internal_message("verification"),
) -> dict[str, str]:
    return {"status": await merging.receive_group_merge(runtime, merge, sender.message_id, sender.source)}


@internal.post(
    RETENTION_FOR_BRIDGE.under(internal.prefix),
    summary="A report's personal data was removed at intake: do the same to this copy",
    responses=error_responses(400, 401, 403, 422),
)
async def receive_retention(
    order: RetentionApplied,
    runtime: RuntimeDep,
    sender: InternalMessage = internal_message("report-intake"),
) -> dict[str, str]:
    return {"status": await retention.apply_retention(runtime, order, sender.message_id, sender.source)}


@meldkamer.post(
    INCIDENT_EVENT.under(meldkamer.prefix),
    summary="Status changes from the meldkamer (signed webhooks)",
    responses=error_responses(401, 404, 422),
    openapi_extra=webhooks.SIGNED_WEBHOOK,
)
async def meldkamer_callback(request: Request, runtime: RuntimeDep) -> dict[str, str]:
    body = await request.body()
    signed = webhooks.verify(runtime.settings.meldkamer_webhook_keys, request.headers, body)
    # By key id, so that a rotation can see when the old key is no longer used and may be dropped.
    runtime.metrics.counter(
        "bm_meldkamer_callbacks",
        "Correctly signed callbacks from the meldkamer, by the id of the key that signed them",
        ["key_id"],
    ).labels(signed.key_id).inc()
    try:
        event = IncidentEvent.model_validate_json(body)
    except ValueError as exc:
        raise ServiceError(
            422,
            "invalid_callback",
            "the callback body is not a valid incident event",
            detail_nl="de inhoud van de terugmelding is geen geldige incidentgebeurtenis",
        ) from exc
    return {"status": await callbacks.receive_incident_event(runtime, event, signed.webhook_id)}


@meldkamer.get(
    "/media/{digest}",
    summary="A photo for the meldkamer, by expiring signed link",
    response_class=Response,
    responses=error_responses(403, 404),
)
async def get_media(
    digest: str,
    runtime: RuntimeDep,
    expires: Annotated[int, Query()],
    signature: Annotated[str, Query()],
) -> Response:
    media.check_signature(runtime.settings.media_url_secret, digest, expires, signature)
    try:  # a file answer: a video of hundreds of MB streams (in ranges if asked), never whole in memory
        path = await listings.served_file(runtime, digest)
    except (BlobNotFound, ValueError) as exc:
        raise ServiceError(404, "media_not_found", "no such photo", detail_nl="deze foto bestaat niet") from exc
    size = path.stat().st_size
    async with runtime.db.transaction() as session:  # in the photo's custody: the meldkamer fetched it
        audit(session, MELDKAMER, "photo.fetched", "photo_sha256", digest, {"sha256": digest, "size_bytes": size})
    return FileResponse(
        path,
        media_type="application/octet-stream",
        headers={"Digest": f"sha-256={digest}", "Cache-Control": "no-store"},
    )
