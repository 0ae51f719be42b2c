"""The bridge's state tables (dispatch_bridge.states) where the meldkamer's answers meet its callbacks."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest

from burgermelding_shared.messaging import Outcome
from burgermelding_shared.workflow import IllegalTransition
from dispatch_bridge.config import BridgeSettings
from dispatch_bridge.meldkamer.requests import on_meldkamer_answer
from dispatch_bridge.models import Incident
from dispatch_bridge.states import DELIVERY_STATES, REPORT_STATES, DeliveryState, ReportState

DOWN = "http://127.0.0.1:9"  # nothing listens: the outbox keeps what the bridge would send


@pytest.fixture
async def bridge(start_service: Callable[..., Any]) -> Any:
    service = await start_service(
        "dispatch_bridge",
        BridgeSettings,
        intake_url=DOWN,
        meldkamer_url=DOWN,
        verification_url=DOWN,
        relay_poll_seconds=3600,
    )
    await service.runtime.relay.stop()
    return service


async def an_incident(bridge: Any, state: DeliveryState) -> str:
    now = datetime.now(UTC)
    incident_id = str(uuid.uuid4())
    async with bridge.runtime.db.transaction() as session:
        session.add(
            Incident(id=incident_id, category="fire", priority=2, delivery_state=state, created_at=now, updated_at=now)
        )
    return incident_id


async def answer(bridge: Any, incident_id: str, code: int) -> DeliveryState:
    outcome = Outcome(
        delivered=True,
        status_code=200,
        reason="",
        body={"requestId": incident_id, "responseCode": code, "responseText": "in behandeling", "incidentId": "MK-1"},
    )
    async with bridge.runtime.db.transaction() as session:
        await on_meldkamer_answer(session, {"payload": f'{{"requestId": "{incident_id}"}}'}, outcome)
    async with bridge.runtime.db.sessions() as session:
        incident = await session.get(Incident, incident_id)
        assert incident is not None
        return DeliveryState(incident.delivery_state)


async def test_an_answer_still_in_progress_after_a_callback_proved_acceptance_does_not_undo_it(bridge: Any) -> None:
    """A status callback can overtake the answer to our request (the meldkamer took it, its answer was slow):
    the incident is accepted, and a late "180 in progress" does not make it `sent` again."""
    accepted = await an_incident(bridge, DeliveryState.ACCEPTED)
    assert await answer(bridge, accepted, 180) == DeliveryState.ACCEPTED
    queued = await an_incident(bridge, DeliveryState.QUEUED)
    assert await answer(bridge, queued, 180) == DeliveryState.SENT
    assert await answer(bridge, queued, 200) == DeliveryState.ACCEPTED


def test_a_withdrawn_report_is_never_forwarded_and_an_accepted_request_never_queued_again() -> None:
    with pytest.raises(IllegalTransition):
        REPORT_STATES.move(ReportState.WITHDRAWN, ReportState.FORWARDED)
    with pytest.raises(IllegalTransition):
        DELIVERY_STATES.move(DeliveryState.ACCEPTED, DeliveryState.QUEUED)
    assert DELIVERY_STATES.allows(DeliveryState.DEAD_LETTERED, DeliveryState.QUEUED)  # a supervisor's replay
