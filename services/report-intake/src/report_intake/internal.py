"""Internal endpoints: only our own services, with a service credential, may call them."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query

from burgermelding_shared import auditchain
from burgermelding_shared.app import InternalMessage, RuntimeDep, internal_message, require_service
from burgermelding_shared.burgernet import PublishedAction
from burgermelding_shared.catalogue import (
    BURGERNET_ACTION,
    CALLER_LINK_ISSUED,
    CALLER_LINK_REVOKED,
    DISPATCHER_MESSAGE,
    LEGAL_HOLD,
    REPORT_EVENTS,
)
from burgermelding_shared.contracts import (
    CallerLinkIssued,
    CallerLinkRevoked,
    DispatcherMessage,
    LegalHold,
    ReportEvent,
    ReportEvents,
)
from burgermelding_shared.errors import error_responses
from report_intake.burgernet import actions
from report_intake.burgernet import receipts as action_receipts
from report_intake.callers import links as caller_links
from report_intake.conversation import messages
from report_intake.models import audit
from report_intake.records import holds
from report_intake.reports import timeline

router = APIRouter(prefix="/internal/v1", tags=["internal"])


@router.post(
    REPORT_EVENTS.under(router.prefix),
    summary="Events on a report, from the dispatch bridge",
    responses=error_responses(400, 401, 403, 404, 422),
)
async def receive_report_events(
    news: ReportEvents | ReportEvent, runtime: RuntimeDep, sender: InternalMessage = internal_message("dispatch-bridge")
) -> dict[str, str]:
    events = news.as_events() if isinstance(news, ReportEvent) else news
    fresh = await timeline.apply_events(runtime, events, sender.message_id, sender.source)
    return {"status": "applied" if fresh else "duplicate"}


@router.post(
    DISPATCHER_MESSAGE.under(router.prefix),
    summary="A dispatcher's question for the citizen, from the dispatch bridge",
    responses=error_responses(400, 401, 403, 404, 422),
)
async def receive_dispatcher_message(
    message: DispatcherMessage, runtime: RuntimeDep, sender: InternalMessage = internal_message("dispatch-bridge")
) -> dict[str, str]:
    return {"status": await messages.receive_dispatcher_message(runtime, message, sender.message_id, sender.source)}


@router.post(
    CALLER_LINK_ISSUED.under(router.prefix),
    summary="A one-time link a dispatcher sent a caller, by its token's hash, from the dispatch bridge",
    responses=error_responses(400, 401, 403, 422),
)
async def receive_caller_link(
    issued: CallerLinkIssued, runtime: RuntimeDep, sender: InternalMessage = internal_message("dispatch-bridge")
) -> dict[str, str]:
    return {"status": await caller_links.receive_issued(runtime, issued, sender.message_id, sender.source)}


@router.post(
    CALLER_LINK_REVOKED.under(router.prefix),
    summary="A dispatcher ended a caller's link, from the dispatch bridge",
    responses=error_responses(400, 401, 403, 422),
)
async def receive_caller_link_revoked(
    revoked: CallerLinkRevoked, runtime: RuntimeDep, sender: InternalMessage = internal_message("dispatch-bridge")
) -> dict[str, str]:
    return {"status": await caller_links.receive_revoked(runtime, revoked, sender.message_id, sender.source)}


@router.post(
    LEGAL_HOLD.under(router.prefix),
    summary="Set or lift a legal hold on reports, from the dispatch bridge (a supervisor)",
    responses=error_responses(400, 401, 403, 422),
)
async def legal_hold(
    hold: LegalHold, runtime: RuntimeDep, _sender: InternalMessage = internal_message("dispatch-bridge")
) -> dict[str, Any]:
    return await holds.apply_hold(runtime, hold)


@router.get(
    "/audit",
    summary="intake's audit entries about one report and its photos (for its custody record)",
    responses=error_responses(401, 403),
)
async def audit_entries(
    runtime: RuntimeDep,
    report_id: Annotated[str, Query(max_length=36)],
    _caller: str = require_service("dispatch-bridge"),
) -> list[dict[str, Any]]:
    async with runtime.db.sessions() as session:
        return await auditchain.entries_about(session, audit, report_id=report_id)


@router.post(
    BURGERNET_ACTION.under(router.prefix),
    summary="A Burgernet action, new or changed (closed, cancelled), from the bridge",
    responses=error_responses(400, 401, 403, 422),
)
async def receive_burgernet_action(
    action: PublishedAction, runtime: RuntimeDep, sender: InternalMessage = internal_message("dispatch-bridge")
) -> dict[str, str]:
    return {"status": await actions.receive_action(runtime, action, sender.message_id, sender.source)}


@router.get(
    "/burgernet/actions/{action_id}/reach",
    summary="How many installations received an action",
    responses=error_responses(401, 403, 404),
)
async def burgernet_reach(
    action_id: str, runtime: RuntimeDep, _caller: str = require_service("dispatch-bridge")
) -> dict[str, Any]:
    return await action_receipts.reach(runtime, action_id)
