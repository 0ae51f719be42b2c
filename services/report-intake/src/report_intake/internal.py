"""Internal endpoints: only our own services, with a service credential, may call them."""

from __future__ import annotations

from fastapi import APIRouter

from burgermelding_shared.app import InternalMessage, RuntimeDep, internal_message
from burgermelding_shared.contracts import DispatcherMessage, ReportEvent, ReportEvents
from burgermelding_shared.errors import error_responses
from report_intake import followup

router = APIRouter(prefix="/internal/v1", tags=["internal"])


@router.post("/report-events", summary="Events on a report, from the dispatch bridge",
             responses=error_responses(400, 401, 403, 404, 422))
async def receive_report_events(news: ReportEvents | ReportEvent, runtime: RuntimeDep,
                                sender: InternalMessage = internal_message("dispatch-bridge")) -> dict[str, str]:
    events = news.as_events() if isinstance(news, ReportEvent) else news
    fresh = await followup.apply_events(runtime, events, sender.message_id, sender.source)
    return {"status": "applied" if fresh else "duplicate"}


@router.post("/messages", summary="A dispatcher's question for the citizen, from the dispatch bridge",
             responses=error_responses(400, 401, 403, 404, 422))
async def receive_dispatcher_message(message: DispatcherMessage, runtime: RuntimeDep,
                                     sender: InternalMessage = internal_message("dispatch-bridge")) -> dict[str, str]:
    return {"status": await followup.receive_dispatcher_message(runtime, message, sender.message_id, sender.source)}
