"""The dispatchers' API: roles, audit, photos, questions, review, dead letters and the 112 deadline."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest
from bridge_support import DOWN, api_login, start_bridge
from sqlalchemy import select, update

from burgermelding_shared.contracts import PhotoRef, ReportSubmitted
from burgermelding_shared.messaging import DEAD
from burgermelding_shared.service_auth import development_key
from dispatch_bridge.models import messaging


@pytest.fixture
async def bridge(start_service: Callable[..., Any]) -> Any:
    return await start_bridge(start_service, call_112_deadline_seconds=0.5)


async def add_report(bridge: Any, **overrides: Any) -> ReportSubmitted:
    from tests.helpers import make_jpeg

    original = make_jpeg(exif={0x0110: "Pixel 8"})
    digest = bridge.runtime.blobs.put_bytes(original)
    display = bridge.runtime.blobs.put_bytes(b"sanitised copy")
    now = datetime.now(UTC)
    report = ReportSubmitted(
        **{
            "report_id": str(uuid.uuid4()),
            "reference": "BM-2026-000042",
            "category": "theft",
            "description": "fietsendief",
            "location": {"lat": 52.09, "lon": 5.12},
            "observed_at": now,
            "received_at": now,
            "in_progress": False,
            "photos": [
                PhotoRef(
                    photo_id="ph1",
                    sha256=digest,
                    sanitised_sha256=display,
                    content_type="image/jpeg",
                    size_bytes=len(original),
                    width=640,
                    height=480,
                )
            ],
            **overrides,
        }
    )
    token = development_key("report-intake").issue("dispatch-bridge")
    response = await bridge.client.post(
        "/internal/v1/reports",
        content=report.model_dump_json(),
        headers={
            "Authorization": f"Bearer {token}",
            "Idempotency-Key": str(uuid.uuid4()),
            "content-type": "application/json",
        },
    )
    assert response.status_code == 200
    return report


async def test_login_and_roles(bridge: Any) -> None:
    assert (await bridge.client.get("/v1/dispatch/incidents")).status_code == 401
    wrong = await bridge.client.post("/v1/auth/token", data={"username": "dirk", "password": "nope"})
    assert (wrong.status_code, wrong.json()["error"]) == (401, "invalid_credentials")
    forged = {"Authorization": "Bearer bmd1.c2FyYQ==.supervisor.9999999999.forged"}
    assert (await bridge.client.get("/v1/dispatch/audit", headers=forged)).status_code == 401
    dispatcher = await api_login(bridge, "dirk")
    assert (await bridge.client.get("/v1/dispatch/incidents", headers=dispatcher)).status_code == 200
    denied = await bridge.client.get("/v1/dispatch/audit", headers=dispatcher)
    assert (denied.status_code, denied.json()["error"]) == (403, "forbidden")
    assert (await bridge.client.post("/v1/dispatch/dead-letters/x/replay", headers=dispatcher)).status_code == 403
    assert (await bridge.client.get("/v1/dispatch/audit", headers=await api_login(bridge, "sara"))).status_code == 200


async def test_views_are_audited_and_originals_are_for_supervisors(bridge: Any) -> None:
    report = await add_report(bridge)
    dirk, sara = await api_login(bridge, "dirk"), await api_login(bridge, "sara")
    detail = (await bridge.client.get(f"/v1/dispatch/reports/{report.report_id}", headers=dirk)).json()
    assert detail["description"] == "fietsendief" and detail["state"] == "waiting_verification"
    base = f"/v1/dispatch/reports/{report.report_id}/photos/ph1"
    sanitised = await bridge.client.get(base, headers=dirk)
    assert sanitised.content == b"sanitised copy"
    assert (await bridge.client.get(f"{base}?original=true", headers=dirk)).status_code == 403
    original = await bridge.client.get(f"{base}?original=true", headers=sara)
    assert original.status_code == 200 and original.content.startswith(b"\xff\xd8")
    log = (await bridge.client.get("/v1/dispatch/audit", headers=sara)).json()
    # (The bridge's own entries, such as the report's arrival, are in the chain too: these are the people's.)
    assert [(e["username"], e["action"]) for e in reversed(log) if e["role"] != "service"] == [
        ("dirk", "login"),
        ("sara", "login"),
        ("dirk", "view_report"),
        ("dirk", "view_photo"),
        ("sara", "view_photo_original"),
    ]


async def test_asking_the_citizen_and_deciding_a_review(bridge: Any) -> None:
    report = await add_report(bridge)
    dirk = await api_login(bridge, "dirk")
    asked = await bridge.client.post(
        f"/v1/dispatch/reports/{report.report_id}/questions", json={"text": "Richting station?"}, headers=dirk
    )
    assert asked.status_code == 201
    async with bridge.runtime.db.sessions() as session:
        rows = (
            (await session.execute(select(messaging.outbox).where(messaging.outbox.c.kind == "dispatcher.message")))
            .mappings()
            .all()
        )
    assert [json.loads(r["payload"])["text"] for r in rows] == ["Richting station?"]
    assert (await bridge.client.post(f"/v1/dispatch/reports/{report.report_id}/forward", headers=dirk)).json()[
        "error"
    ] == "not_held_for_review"
    token = development_key("verification").issue("dispatch-bridge")
    await bridge.client.post(
        "/internal/v1/verifications",
        headers={"Authorization": f"Bearer {token}", "Idempotency-Key": "v-1"},
        json={
            "report_id": report.report_id,
            "verdict": "review",
            "score": 0.4,
            "verified_at": datetime.now(UTC).isoformat(),
        },
    )
    forwarded = await bridge.client.post(f"/v1/dispatch/reports/{report.report_id}/forward", headers=dirk)
    assert forwarded.json()["state"] == "forwarded" and forwarded.json()["incident_id"]
    incidents = (await bridge.client.get("/v1/dispatch/incidents", headers=dirk)).json()
    assert incidents[0]["reports"][0]["report_id"] == report.report_id


async def test_dead_letters_are_listed_and_replayed(bridge: Any, start_service: Callable[..., Any]) -> None:
    from meldkamer_sim.config import MeldkamerSettings

    report = await add_report(bridge, in_progress=True)
    relay = bridge.runtime.relay
    await relay.stop()  # nothing in flight while the test plays the meldkamer's refusal
    async with bridge.runtime.db.transaction() as session:  # as if the meldkamer refused it for good
        await session.execute(
            update(messaging.outbox)
            .where(messaging.outbox.c.destination == "meldkamer")
            .values(status=DEAD, last_error="HTTP 400: bad request", last_status_code=400)
        )
    dirk, sara = await api_login(bridge, "dirk"), await api_login(bridge, "sara")
    listed = (await bridge.client.get("/v1/dispatch/dead-letters", headers=dirk)).json()
    letters = [letter for letter in listed if letter["destination"] != "verification"]
    assert len(letters) == 1 and letters[0]["reason"] == "HTTP 400: bad request"
    # Verification is down here: its part of the list is missing, and the list says so instead of hiding it.
    assert [letter["kind"] for letter in listed if letter["destination"] == "verification"] == [
        "verification.unavailable"
    ]
    assert (
        await bridge.client.post(f"/v1/dispatch/dead-letters/{letters[0]['message_id']}/replay", headers=dirk)
    ).status_code == 403  # supervisors only
    replayed = await bridge.client.post(f"/v1/dispatch/dead-letters/{letters[0]['message_id']}/replay", headers=sara)
    assert replayed.json() == {"status": "queued"}
    assert [
        letter["kind"] for letter in (await bridge.client.get("/v1/dispatch/dead-letters", headers=dirk)).json()
    ] == ["verification.unavailable"]
    overview = (await bridge.client.get("/v1/dispatch/delivery", headers=dirk)).json()
    assert set(overview["circuits"]) == {"report-intake", "meldkamer"}

    # The meldkamer is back (the simulator, in this process): the replayed message goes out and arrives once.
    meldkamer = await start_service("meldkamer_sim", MeldkamerSettings, bridge_url=DOWN)
    relay.http = meldkamer.client
    # (The claim may also take the citizen's 112 news for intake, queued meanwhile: only the replay matters.)
    assert await relay.run_once() >= 1
    await asyncio.gather(*relay._in_flight)
    async with bridge.runtime.db.sessions() as session:
        statuses = (
            (
                await session.execute(
                    select(messaging.outbox.c.status).where(messaging.outbox.c.message_id == letters[0]["message_id"])
                )
            )
            .scalars()
            .all()
        )
    assert statuses == ["delivered"]
    incidents = (
        await meldkamer.client.get(
            "/v1/incidents", headers={"Authorization": "Bearer dev-only-meldkamer-admin-token-change-me"}
        )
    ).json()  # the simulator's default
    assert len(incidents) == 1 and report.reference in json.dumps(incidents)


async def test_an_urgent_report_not_accepted_in_time_tells_the_citizen_to_call_112(bridge: Any) -> None:
    report = await add_report(bridge, in_progress=True)  # the meldkamer is down: it cannot be accepted

    async def warned() -> list[dict[str, Any]]:
        async with bridge.runtime.db.sessions() as session:
            rows = (
                (
                    await session.execute(
                        select(messaging.outbox.c.payload).where(messaging.outbox.c.kind == "report.events")
                    )
                )
                .scalars()
                .all()
            )
        return [
            {"report_id": news["report_id"], **event}
            for news in map(json.loads, rows)
            for event in news["events"]
            if event["event"] == "call_112"
        ]

    for _ in range(200):  # bounded wait; the deadline is 0.5 s
        if await warned():
            break
        await asyncio.sleep(0.05)
    events = await warned()
    assert [e["report_id"] for e in events] == [report.report_id]
    assert "112" in events[0]["text_nl"]


async def test_a_request_that_went_out_without_an_answer_is_sent_not_queued(bridge: Any) -> None:
    await add_report(bridge, in_progress=True)  # the meldkamer is down: the first attempt fails
    dirk = await api_login(bridge, "dirk")
    for _ in range(200):  # bounded wait for the first attempt
        incidents = (await bridge.client.get("/v1/dispatch/incidents", headers=dirk)).json()
        if incidents and incidents[0]["delivery_state"] == "sent":
            break
        await asyncio.sleep(0.05)
    assert incidents[0]["delivery_state"] == "sent" and "transport error" in incidents[0]["delivery_cause"]


async def test_lists_filter_show_group_links_and_are_audited(bridge: Any) -> None:
    from burgermelding_shared.service_auth import development_key

    first = await add_report(bridge, category="theft")
    second = await add_report(bridge, category="theft")
    await add_report(bridge, category="fire", in_progress=True)
    token = development_key("verification").issue("dispatch-bridge")
    for report, others in ((first, []), (second, [first.report_id])):
        result = {
            "report_id": report.report_id,
            "verdict": "review",
            "score": 0.4,
            "group_id": "group-1",
            "group_reports": others,
            "near_duplicate_of_reports": others,
            "verified_at": datetime.now(UTC).isoformat(),
        }
        response = await bridge.client.post(
            "/internal/v1/verifications",
            content=json.dumps(result),
            headers={
                "Authorization": f"Bearer {token}",
                "Idempotency-Key": str(uuid.uuid4()),
                "content-type": "application/json",
            },
        )
        assert response.status_code == 200, response.text
    dirk, sara = await api_login(bridge, "dirk"), await api_login(bridge, "sara")

    grouped = (await bridge.client.get("/v1/dispatch/reports?group_id=group-1", headers=dirk)).json()
    assert {r["report_id"] for r in grouped} == {first.report_id, second.report_id}
    linked = next(r for r in grouped if r["report_id"] == second.report_id)["verification"]
    assert linked["group_reports"] == [first.report_id] and linked["near_duplicate_of_reports"] == [first.report_id]
    urgent = (await bridge.client.get("/v1/dispatch/reports?in_progress=true", headers=dirk)).json()
    assert [r["category"] for r in urgent] == ["fire"]
    assert len((await bridge.client.get("/v1/dispatch/reports?category=theft", headers=dirk)).json()) == 2
    assert (await bridge.client.get("/v1/dispatch/incidents?category=fire", headers=dirk)).status_code == 200

    log = (await bridge.client.get("/v1/dispatch/audit", headers=sara)).json()
    listings = [e for e in log if e["action"] == "list_reports"]
    assert len(listings) == 3 and all(e["username"] == "dirk" for e in listings)
    grouped_entry = next(e for e in listings if "group-1" in e["detail"])
    assert first.report_id in grouped_entry["detail"] and second.report_id in grouped_entry["detail"]
    assert any(e["action"] == "list_incidents" for e in log)


async def test_verifications_dead_jobs_are_listed_and_replayed_by_supervisors(
    bridge: Any, start_service: Callable[..., Any]
) -> None:
    from verification.config import VerificationSettings
    from verification.models import VerificationJob

    verification = await start_service("verification", VerificationSettings, workers=1, bridge_url=DOWN)
    bridge.runtime.http = verification.client  # the bridge reaches verification (in this process)
    now = datetime.now(UTC)
    report = ReportSubmitted(
        report_id=str(uuid.uuid4()),
        reference="BM-2026-000043",
        category="violence",
        description="vechtpartij",
        location={"lat": 52.09, "lon": 5.12},
        observed_at=now,
        received_at=now,
        in_progress=True,
        photos=[],
    )
    async with verification.runtime.db.transaction() as session:  # as if it had failed five times
        session.add(
            VerificationJob(
                job_id=f"{report.report_id}:0",
                report_id=report.report_id,
                revision=0,
                request=report.model_dump_json(),
                status="dead",
                priority=10,
                received_at=datetime.now(UTC),
                attempts=5,
                last_error="RuntimeError: poison",
            )
        )
    dirk, sara = await api_login(bridge, "dirk"), await api_login(bridge, "sara")
    listed = (await bridge.client.get("/v1/dispatch/dead-letters", headers=dirk)).json()
    assert [(letter["message_id"], letter["urgent"], letter["reason"]) for letter in listed] == [
        (f"verification-job:{report.report_id}:0", True, "RuntimeError: poison")
    ]
    path = f"/v1/dispatch/dead-letters/verification-job:{report.report_id}:0/replay"
    assert (await bridge.client.post(path, headers=dirk)).status_code == 403
    assert (await bridge.client.post(path, headers=sara)).json() == {"status": "queued"}
    async with verification.runtime.db.sessions() as session:
        job = await session.get(VerificationJob, f"{report.report_id}:0")
    assert job is not None and job.status in ("pending", "done") and job.attempts <= 1
    again = await bridge.client.post(path, headers=sara)
    assert (again.status_code, again.json()["error"]) == (404, "dead_letter_not_found")
    log = (await bridge.client.get("/v1/dispatch/audit", headers=sara)).json()
    assert ("sara", "replay_verification_job", report.report_id) in [
        (e["username"], e["action"], e["target_id"]) for e in log
    ]
