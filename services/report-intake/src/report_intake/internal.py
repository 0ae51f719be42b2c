"""Internal endpoints: only our own services, with a service credential, may call them."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends

from burgermelding_shared.app import RuntimeDep, message_id_header, require_service
from burgermelding_shared.contracts import DispatcherMessage, ReportEvent
from burgermelding_shared.errors import error_responses
from report_intake import followup

router = APIRouter(prefix="/internal/v1", tags=["internal"])
MessageId = Annotated[str, Depends(message_id_header)]


@router.post("/report-events", summary="An event on a report, from the dispatch bridge",
             responses=error_responses(400, 401, 403, 404, 422))
async def receive_report_event(event: ReportEvent, runtime: RuntimeDep, message_id: MessageId,
                               source: str = require_service("dispatch-bridge")) -> dict[str, str]:
    fresh = await followup.apply_event(runtime, event, message_id, source)
    return {"status": "applied" if fresh else "duplicate"}


@router.post("/messages", summary="A dispatcher's question for the citizen, from the dispatch bridge",
             responses=error_responses(400, 401, 403, 404, 422))
async def receive_dispatcher_message(message: DispatcherMessage, runtime: RuntimeDep, message_id: MessageId,
                                     source: str = require_service("dispatch-bridge")) -> dict[str, str]:
    return {"status": await followup.receive_dispatcher_message(runtime, message, message_id, source)}
