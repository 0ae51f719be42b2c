"""After a report is made: photos added, messages both ways, withdrawal, live events, contact."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import select

from burgermelding_shared.service_auth import development_key
from report_intake.config import IntakeSettings
from report_intake.models import messaging
from tests.helpers import make_jpeg, report_json
from tests.intake_support import post_report


@pytest.fixture
async def intake(start_service: Callable[..., Any]) -> Any:
    return await start_service("report_intake", IntakeSettings, sse_max_seconds=3)


def auth(created: dict[str, Any]) -> dict[str, str]:
    return {"Authorization": f"Bearer {created['access_token']}"}


async def outbox(intake: Any) -> list[dict[str, Any]]:
    async with intake.runtime.db.sessions() as session:
        rows = (await session.execute(select(messaging.outbox).order_by(messaging.outbox.c.id))).mappings().all()
    return [{**r, "payload": json.loads(r["payload"])} for r in rows]


async def from_bridge(intake: Any, path: str, body: dict[str, Any]) -> Any:
    token = development_key("dispatch-bridge").issue("report-intake")
    return await intake.client.post(
        path, json=body, headers={"Authorization": f"Bearer {token}", "Idempotency-Key": str(uuid.uuid4())}
    )


async def test_photos_can_be_added_while_open_as_a_new_revision(intake: Any) -> None:
    created = (await post_report(intake, report_json())).json()
    files = [("photos", ("extra.jpg", make_jpeg(pattern=4), "image/jpeg"))]
    response = await intake.client.post(
        f"{created['status_url']}/photos", files=files, headers={**auth(created), "Idempotency-Key": "more-photos-1"}
    )
    assert response.status_code == 202, response.text
    assert response.json()["revision"] == 1 and len(response.json()["photos"]) == 1
    replay = await intake.client.post(
        f"{created['status_url']}/photos", files=files, headers={**auth(created), "Idempotency-Key": "more-photos-1"}
    )
    assert replay.json() == response.json()
    # Every revision is the report as it now stands: one kind, the revision in the payload.
    revised = [r for r in await outbox(intake) if r["kind"] == "report.submitted" and r["payload"]["revision"] == 1]
    assert {r["destination"] for r in revised} == {"verification", "dispatch-bridge"}
    assert all(r["payload"]["revision"] == 1 and len(r["payload"]["photos"]) == 1 for r in revised)
    other = (await post_report(intake, report_json(), key="someone-else")).json()
    stolen = await intake.client.post(
        f"{created['status_url']}/photos", files=files, headers={**auth(other), "Idempotency-Key": "more-photos-2"}
    )
    assert stolen.status_code == 404


async def test_dispatcher_question_and_citizen_answer(intake: Any) -> None:
    created = (await post_report(intake, report_json())).json()
    question = {
        "report_id": created["id"],
        "message_id": "q-1",
        "text": "Welke kleur had de auto?",
        "sent_at": "2026-11-22T21:00:00Z",
    }
    assert (await from_bridge(intake, "/internal/v1/messages", question)).json() == {"status": "applied"}
    messages = (await intake.client.get(f"{created['status_url']}/messages", headers=auth(created))).json()
    assert [(m["id"], m["direction"]) for m in messages] == [("q-1", "to_citizen")]
    answer = await intake.client.post(
        f"{created['status_url']}/messages",
        json={"text": "Rood", "in_reply_to": "q-1"},
        headers={**auth(created), "Idempotency-Key": "answer-0001"},
    )
    assert answer.status_code == 201 and answer.json()["in_reply_to"] == "q-1"
    sent = [r for r in await outbox(intake) if r["kind"] == "citizen.message"]
    assert [(r["destination"], r["payload"]["text"]) for r in sent] == [("dispatch-bridge", "Rood")]
    bad = await intake.client.post(
        f"{created['status_url']}/messages",
        json={"text": "?", "in_reply_to": "nope"},
        headers={**auth(created), "Idempotency-Key": "answer-0002"},
    )
    assert (bad.status_code, bad.json()["error"]) == (422, "unknown_question")
    view = (await intake.client.get(created["status_url"], headers={**auth(created), "Accept-Language": "nl"})).json()
    assert view["timeline"][-1]["text"] == "De meldkamer vraagt: Welke kleur had de auto?"


async def test_withdrawal_travels_on_and_closes_the_report(intake: Any) -> None:
    created = (await post_report(intake, report_json())).json()
    assert (await intake.client.post(f"{created['status_url']}/withdraw", headers=auth(created))).json() == {
        "status": "withdrawn",
        "personal_data": "removed",
    }
    assert (await intake.client.post(f"{created['status_url']}/withdraw", headers=auth(created))).json() == {
        "status": "withdrawn",
        "personal_data": "removed",
    }  # idempotent
    assert len([r for r in await outbox(intake) if r["kind"] == "report.withdrawn"]) == 1
    late = await intake.client.post(
        f"{created['status_url']}/photos",
        headers={**auth(created), "Idempotency-Key": "too-late-1"},
        files=[("photos", ("p.jpg", make_jpeg(), "image/jpeg"))],
    )
    assert (late.status_code, late.json()["error"]) == (409, "report_closed")
    forwarded = {
        "report_id": created["id"],
        "event": "forwarded",
        "occurred_at": "2026-11-22T10:00:00Z",
        "text_en": "x",
        "text_nl": "x",
    }
    await from_bridge(intake, "/internal/v1/report-events", forwarded)
    view = (await intake.client.get(created["status_url"], headers=auth(created))).json()
    assert view["status"] == "withdrawn"


async def test_live_events_stream_existing_and_new_entries(intake: Any) -> None:
    created = (await post_report(intake, report_json(in_progress=True))).json()

    async def later() -> None:
        await asyncio.sleep(0.3)
        event = {
            "report_id": created["id"],
            "event": "forwarded",
            "occurred_at": "2026-11-22T10:00:00Z",
            "text_en": "Sent on",
            "text_nl": "Doorgestuurd",
        }
        await from_bridge(intake, "/internal/v1/report-events", event)

    task = asyncio.create_task(later())
    response = await intake.client.get(f"{created['status_url']}/events", headers=auth(created))
    await task
    assert response.headers["content-type"].startswith("text/event-stream")
    events = [json.loads(line[len("data: ") :]) for line in response.text.splitlines() if line.startswith("data: ")]
    assert [e["event"] for e in events] == ["received", "call_112", "forwarded"]
    assert events[-1]["status"] == "forwarded"
    ids = [line for line in response.text.splitlines() if line.startswith("id: ")]
    resumed = await intake.client.get(
        f"{created['status_url']}/events", headers={**auth(created), "Last-Event-ID": ids[1][4:]}
    )
    assert [json.loads(x[6:])["event"] for x in resumed.text.splitlines() if x.startswith("data: ")] == ["forwarded"]
    assert (await intake.client.get(f"{created['status_url']}/events")).status_code == 404


async def test_contact_details_reach_the_police_only_with_consent(intake: Any) -> None:
    contact = {"name": "Jan", "phone": "+31 6 12345678", "share_with_police": True}
    await post_report(intake, report_json(contact=contact), key="with-consent")
    await post_report(intake, report_json(contact={**contact, "share_with_police": False}), key="no-consent-1")
    rows = [r for r in await outbox(intake) if r["kind"] == "report.submitted"]
    to_bridge = [r["payload"].get("contact") for r in rows if r["destination"] == "dispatch-bridge"]
    to_verification = [r["payload"].get("contact") for r in rows if r["destination"] == "verification"]
    assert to_verification == [None, None]
    assert to_bridge == [{"name": "Jan", "phone": "+31 6 12345678", "email": None, "share_with_police": True}, None]
    invalid = await post_report(intake, report_json(contact={"email": "not an address"}), key="bad-contact")
    assert invalid.status_code == 422


async def test_several_events_in_one_message_reach_the_timeline_in_order_once(intake: Any) -> None:
    created = (await post_report(intake, report_json())).json()
    now = datetime.now(UTC).isoformat()
    news = {
        "report_id": created["id"],
        "events": [
            {"event": "verified", "occurred_at": now, "text_en": "Checked", "text_nl": "Gecontroleerd"},
            {"event": "forwarded", "occurred_at": now, "text_en": "Sent on", "text_nl": "Doorgestuurd"},
            {
                "event": "accepted",
                "occurred_at": now,
                "text_en": "Accepted",
                "text_nl": "Aangenomen",
                "incident_number": "MK-2026-000042",
            },
        ],
    }
    token = development_key("dispatch-bridge").issue("report-intake")
    headers = {"Authorization": f"Bearer {token}", "Idempotency-Key": "news-1"}
    for _ in range(2):  # delivered twice, applied once
        response = await intake.client.post("/internal/v1/report-events", json=news, headers=headers)
        assert response.status_code == 200, response.text
    assert response.json() == {"status": "duplicate"}
    view = (await intake.client.get(created["status_url"], headers=auth(created))).json()
    assert [item["event"] for item in view["timeline"]] == ["received", "verified", "forwarded", "accepted"]
    assert view["status"] == "accepted"
    for bad in ({**news, "events": []}, {**news, "event": "forwarded"}):  # nothing, or two shapes at once
        refused = await intake.client.post(
            "/internal/v1/report-events", json=bad, headers={**headers, "Idempotency-Key": "news-bad"}
        )
        assert refused.status_code == 422
