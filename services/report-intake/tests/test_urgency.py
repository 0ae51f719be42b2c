"""One urgency rule (burgermelding_shared.urgency.is_urgent) at intake: a sighting for a live Burgernet search is
urgent as an in-progress report is, everywhere intake decides by urgency: the 112 advice, and not waiting for a
HEIC's display copy before the bridge gets it. A witness's answer to a call about a past event is not urgent."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select

from burgermelding_shared.burgernet import ActionKind, Area, PublishedAction
from burgermelding_shared.service_auth import development_key
from report_intake.config import IntakeSettings
from report_intake.models import Report, messaging
from tests.helpers import heic_photo, phone_photo
from tests.intake_support import register_installation

LAT, LON = 52.0907, 5.1214


@pytest.fixture
async def intake(start_service: Callable[..., Any]) -> Any:
    return await start_service("report_intake", IntakeSettings, installation_pow_bits=8)


async def publish(intake: Any, kind: ActionKind) -> PublishedAction:
    now = datetime.now(UTC)
    action = PublishedAction(
        action_id=str(uuid.uuid4()),
        reference="BN-2026-000007",
        version=1,
        kind=kind,
        looking_for="vehicle",
        headline_nl="Gezocht: witte bestelbus",
        headline_en="Sought: white van",
        description_nl="Witte bestelbus",
        description_en="White van",
        area=Area(circle={"lat": LAT, "lon": LON, "radius_m": 2000}),
        started_at=now - timedelta(minutes=5),
        closes_at=now + timedelta(minutes=30),
        status="open",
        **(
            {"window_start": now - timedelta(days=1), "window_end": now - timedelta(hours=20)}
            if kind == "witness_call"
            else {}
        ),
    )
    token = development_key("dispatch-bridge").issue("report-intake")
    response = await intake.client.post(
        "/internal/v1/burgernet/actions",
        json=action.model_dump(mode="json"),
        headers={"Authorization": f"Bearer {token}", "Idempotency-Key": str(uuid.uuid4())},
    )
    assert response.status_code == 200, response.text
    return action


async def answer_with_a_heic(intake: Any, action: PublishedAction, seen_at: datetime) -> Any:
    credential = await register_installation(intake)
    sighting = {
        "description": "De witte bus reed net de Oudegracht op",
        "seen_at": seen_at.isoformat(),
        "location": {"lat": LAT, "lon": LON, "accuracy_m": 15},
        "seeing_now": False,
    }
    photo = heic_photo(phone_photo(7, LAT, LON, size=(1600, 1200)), LAT, LON)
    return await intake.client.post(
        f"/v1/burgernet/actions/{action.action_id}/sightings",
        files=[
            ("sighting", (None, json.dumps(sighting), "application/json")),
            ("photos", ("IMG_0007.HEIC", photo, "image/heic")),
        ],
        headers={"Installation-Credential": credential, "Idempotency-Key": str(uuid.uuid4())},
    )


async def sent(intake: Any) -> list[tuple[str, int, str]]:
    async with intake.runtime.db.sessions() as session:
        rows = (await session.execute(select(messaging.outbox.c.destination, messaging.outbox.c.payload))).all()
    return sorted(
        (destination, json.loads(payload)["revision"], json.loads(payload)["photos"][0]["display"])
        for destination, payload in rows
    )


def no_display_copies(intake: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """The display copy cannot be stored for now, so whatever waits for it stays waiting."""
    monkeypatch.setattr(
        intake.runtime.blobs, "put_bytes", lambda data: (_ for _ in ()).throw(OSError(28, "No space left on device"))
    )


async def test_a_live_sighting_not_seen_now_is_urgent_and_does_not_wait_for_its_display_copy(
    intake: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    action = await publish(intake, "action")
    no_display_copies(intake, monkeypatch)
    response = await answer_with_a_heic(intake, action, seen_at=datetime.now(UTC) - timedelta(minutes=10))
    assert response.status_code == 202, response.text
    # Urgent by the one rule: the bridge has it at once, its photo's display copy still pending ...
    assert await sent(intake) == [("dispatch-bridge", 0, "pending")]
    # ... and the citizen gets the 112 advice an urgent report gets, kept on the report's timeline.
    assert response.json()["safety_advice"]["call_112"] is True
    async with intake.runtime.db.sessions() as session:
        report = (await session.execute(select(Report).where(Report.id == response.json()["id"]))).scalar_one()
    assert report.answers_live_search and not report.in_progress and report.urgent


async def test_an_answer_to_a_witness_call_is_not_urgent_and_waits_for_its_display_copy(
    intake: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    action = await publish(intake, "witness_call")
    no_display_copies(intake, monkeypatch)
    response = await answer_with_a_heic(intake, action, seen_at=datetime.now(UTC) - timedelta(hours=22))
    assert response.status_code == 202, response.text
    assert await sent(intake) == []  # verification and the bridge get it with its display copy
    assert response.json()["safety_advice"] is None
