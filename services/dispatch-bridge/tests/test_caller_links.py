"""A dispatcher asks a caller for images (issue #33): the link goes by SMS (through the simulated gateway, a real
HTTP server speaking CM.com's API, with the adapter production uses), intake is told the token's hash only, the
number is never stored, a double click sends one SMS, a gateway that is down stores nothing, and the caller's
steps, a revocation and the expiry move the link on, each in the audit chain."""

from __future__ import annotations

import hashlib
import json
import re
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any

import httpx
import pytest
import uvicorn
from bridge_support import api_login, browser, log_in, start_bridge
from sqlalchemy import select, text

from burgermelding_shared.contracts import CallerLinkEvent, CallerLinkRef, PhotoRef, RefusalSaid, ReportSubmitted
from burgermelding_shared.service_auth import development_key
from burgermelding_shared.timeutil import utcnow
from dispatch_bridge.callers.links import CallerLinkExpiry
from dispatch_bridge.models import BridgeReport, CallerLink, messaging
from dispatch_bridge.reports import receiving
from sms_sim.main import DEVELOPMENT_TOKEN, create_app

PHONE = "06 1234 5678"
NUMBER_FORMS = ("0612345678", "+31612345678", "0031612345678", "612345678")


@pytest.fixture(scope="module")
def sms_gateway() -> Iterator[str]:
    """The simulated gateway as a real server on a free port, for the module."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(create_app(delay_seconds=0), host="127.0.0.1", port=port, log_level="error"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{port}"
    for _ in range(100):
        try:
            if httpx.get(f"{url}/readyz").status_code == 200:
                break
        except httpx.HTTPError:
            time.sleep(0.05)
    yield url
    server.should_exit = True
    thread.join(timeout=5)


@pytest.fixture
async def bridge(start_service: Callable[..., Any], sms_gateway: str) -> Any:
    return await start_bridge(
        start_service,
        relay=False,
        sms_url=sms_gateway,
        sms_product_token=DEVELOPMENT_TOKEN,
        caller_link_base_url="https://m.politie.example",
    )


def witness_report(bridge: Any, n: int, **overrides: Any) -> ReportSubmitted:
    """A report as intake sends it, with one photo: an urgent witness unless `overrides` say otherwise."""
    now = utcnow()
    values: dict[str, Any] = {
        "report_id": str(uuid.uuid4()),
        "reference": f"BM-2026-{n:06d}",
        "category": "violence",
        "description": "Vechtpartij",
        "location": {"lat": 52.0907, "lon": 5.1214},
        "observed_at": now,
        "received_at": now,
        "in_progress": True,
        "submitter_tag": f"inst-{n}",
        "submitter_kind": "installation",
        "photos": [
            PhotoRef(
                photo_id=f"ph{n}",
                sha256=bridge.runtime.blobs.put_bytes(f"photo {n}".encode()),
                sanitised_sha256=None,
                content_type="image/jpeg",
                size_bytes=8,
                width=1,
                height=1,
            )
        ],
        **overrides,
    }
    return ReportSubmitted(**values)


async def an_incident(bridge: Any) -> str:
    report = witness_report(bridge, 81)
    assert await receiving.receive_report(bridge.runtime, report, str(uuid.uuid4()), "report-intake") == "accepted"
    async with bridge.runtime.db.sessions() as session:
        return (await session.execute(select(BridgeReport.incident_id))).scalar_one()


def sms_to(gateway: str, number: str = "0031612345678") -> list[dict[str, Any]]:
    return httpx.get(f"{gateway}/messages", params={"to": number}).json()


async def everything_stored(bridge: Any) -> str:
    """Every row of every table, as text: to search for what must not be there."""
    async with bridge.runtime.db.sessions() as session:
        names = await session.run_sync(lambda sync: sync.connection().dialect.get_table_names(sync.connection()))
        rows = []
        for name in names:
            rows += [repr(tuple(r)) for r in (await session.execute(text(f'SELECT * FROM "{name}"'))).all()]
    return "\n".join(rows)


async def test_a_link_goes_by_sms_and_intake_gets_only_its_hash(bridge: Any, sms_gateway: str) -> None:
    incident_id = await an_incident(bridge)
    dirk = await api_login(bridge, "dirk")
    path = f"/v1/dispatch/incidents/{incident_id}/caller-links"
    body = {"phone": PHONE, "language": "nl", "ask": "Laat de auto zien die wegrijdt."}
    sent = await bridge.client.post(path, json=body, headers=dirk)
    assert sent.status_code == 201, sent.text
    link = sent.json()
    assert (link["state"], link["phone_ending"], link["created_by"]) == ("sent", "78", "dirk")
    assert link["expires_at"] > link["created_at"]
    (sms,) = sms_to(sms_gateway)
    assert sms["sender"] == "Politie" and "Alleen als het veilig is." in sms["content"]
    token = re.search(r"https://m\.politie\.example/c/([A-Za-z0-9_-]+)", sms["content"]).group(1)
    assert len(token) >= 22  # 128 bits
    # A second press of the button within the minute: the same link, no second SMS.
    again = await bridge.client.post(path, json={**body, "phone": "+31 6 12345678"}, headers=dirk)
    assert again.json()["id"] == link["id"] and len(sms_to(sms_gateway)) == 1
    # Intake is told the token's hash, never the token or the number.
    async with bridge.runtime.db.sessions() as session:
        (payload,) = (
            await session.execute(
                select(messaging.outbox.c.payload).where(messaging.outbox.c.kind == "caller_link.issued")
            )
        ).scalars()
    issued = json.loads(payload)
    assert issued["token_sha256"] == hashlib.sha256(token.encode()).hexdigest() and issued["incident_id"] == incident_id
    stored = await everything_stored(bridge)
    assert token not in stored and not any(form in stored for form in NUMBER_FORMS)
    assert [link["id"]] == [listed["id"] for listed in (await bridge.client.get(path, headers=dirk)).json()]
    log = (await bridge.client.get("/v1/dispatch/audit", headers=await api_login(bridge, "sara"))).json()
    assert any(e["action"] == "caller_link.sent" and e["username"] == "dirk" for e in log)


async def test_wrong_numbers_store_nothing_and_a_gateway_that_is_down_ends_the_link(
    start_service: Callable[..., Any], sms_gateway: str
) -> None:
    bridge = await start_bridge(start_service, relay=False, sms_url="http://127.0.0.1:9")
    incident_id = await an_incident(bridge)
    dirk = await api_login(bridge, "dirk")
    path = f"/v1/dispatch/incidents/{incident_id}/caller-links"
    short = await bridge.client.post(path, json={"phone": "112", "ask": "?"}, headers=dirk)
    assert (short.status_code, short.json()["error"]) == (422, "validation_error")
    for phone in ("06-123456", "+0 6 12345678", "bel me maar", "06 1234 5678 9"):
        wrong = await bridge.client.post(path, json={"phone": phone, "ask": "?"}, headers=dirk)
        assert (wrong.status_code, wrong.json()["error"]) == (422, "invalid_phone_number"), phone
    down = await bridge.client.post(path, json={"phone": PHONE, "ask": "Laat zien"}, headers=dirk)
    assert (down.status_code, down.json()["error"], down.headers["retry-after"]) == (503, "sms_unavailable", "5")
    (failed,) = (await bridge.client.get(path, headers=dirk)).json()  # the attempt, ended: no number kept
    assert (failed["state"], failed["phone_ending"]) == ("failed", None)
    async with bridge.runtime.db.sessions() as session:
        kinds = (await session.execute(select(messaging.outbox.c.kind))).scalars().all()
    assert "caller_link.revoked" in kinds  # intake was told of the link, and then that it ended
    unknown = await bridge.client.post(
        "/v1/dispatch/incidents/nope/caller-links", json={"phone": PHONE, "ask": "?"}, headers=dirk
    )
    assert unknown.status_code == 404
    async with bridge.runtime.db.sessions() as session:
        assert [link.state for link in (await session.execute(select(CallerLink))).scalars()] == ["failed"]


async def caller_did(bridge: Any, link_id: str, event: str, files: int = 0, problem: RefusalSaid | None = None) -> None:
    token = development_key("report-intake").issue("dispatch-bridge")
    news = CallerLinkEvent(link_id=link_id, event=event, at=utcnow(), files=files, problem=problem)
    answer = await bridge.client.post(
        "/internal/v1/caller-link-events",
        content=news.model_dump_json(),
        headers={
            "Authorization": f"Bearer {token}",
            "content-type": "application/json",
            "Idempotency-Key": str(uuid.uuid4()),
        },
    )
    assert answer.status_code == 200, answer.text


async def test_the_callers_steps_a_revocation_and_the_expiry(bridge: Any, sms_gateway: str) -> None:
    incident_id = await an_incident(bridge)
    dirk = await api_login(bridge, "dirk")
    path = f"/v1/dispatch/incidents/{incident_id}/caller-links"
    link = (await bridge.client.post(path, json={"phone": PHONE, "ask": "Laat zien"}, headers=dirk)).json()

    async def state() -> str:
        return (await bridge.client.get(path, headers=dirk)).json()[0]["state"]

    await caller_did(bridge, link["id"], "opened")
    assert await state() == "opened"
    await caller_did(bridge, link["id"], "consent_refused")
    assert await state() == "consent_refused"
    await caller_did(bridge, link["id"], "opened")  # the caller looks again: still refused, not back to opened
    assert await state() == "consent_refused"
    await caller_did(bridge, link["id"], "consent_given")  # changed their mind
    assert await state() == "consent_given"
    revoked = await bridge.client.post(f"/v1/dispatch/caller-links/{link['id']}/revoke", headers=dirk)
    assert revoked.json()["state"] == "revoked" and revoked.json()["phone_ending"] is None
    await caller_did(bridge, link["id"], "uploading", 1)  # late news of an ended link changes nothing
    assert await state() == "revoked"
    async with bridge.runtime.db.sessions() as session:
        kinds = (await session.execute(select(messaging.outbox.c.kind))).scalars().all()
        ended = await session.get(CallerLink, link["id"])
    assert "caller_link.revoked" in kinds and ended.phone_hash is None
    # Another link runs out: the sweep ends it and forgets the number.
    other = (await bridge.client.post(path, json={"phone": "0687654321", "ask": "Nog een"}, headers=dirk)).json()
    async with bridge.runtime.db.transaction() as session:
        expiring = await session.get(CallerLink, other["id"])
        expiring.expires_at = utcnow() - timedelta(seconds=1)
    assert (await bridge.client.get(path, headers=dirk)).json()[0]["state"] == "expired"  # at once on screen
    assert await CallerLinkExpiry(bridge.runtime).run_once() == 1
    async with bridge.runtime.db.sessions() as session:
        swept = await session.get(CallerLink, other["id"])
    assert swept.state == "expired" and swept.phone_hash is None and swept.phone_last2 is None
    actions = [
        e["action"]
        for e in (await bridge.client.get("/v1/dispatch/audit", headers=await api_login(bridge, "sara"))).json()
    ]
    for step in (
        "caller_link.opened",
        "caller_link.consent_refused",
        "caller_link.consent_given",
        "caller_link.revoked",
        "caller_link.expired",
    ):
        assert step in actions, step


async def test_a_refused_upload_is_no_longer_uploading_and_the_dispatcher_sees_why(
    bridge: Any, sms_gateway: str
) -> None:
    incident_id = await an_incident(bridge)
    dirk = await api_login(bridge, "dirk")
    path = f"/v1/dispatch/incidents/{incident_id}/caller-links"
    link = (await bridge.client.post(path, json={"phone": PHONE, "ask": "Laat zien"}, headers=dirk)).json()
    too_long = RefusalSaid(
        error="video_too_long",
        detail_en="file 1 is longer than 5 minutes",
        detail_nl="bestand 1 is langer dan 5 minuten",
    )
    for step in ("opened", "consent_given", "uploading"):
        await caller_did(bridge, link["id"], step)
    await caller_did(bridge, link["id"], "upload_refused", 0, too_long)
    shown = (await bridge.client.get(path, headers=dirk)).json()[0]
    assert shown["state"] == "consent_given" and shown["refused"]["error"] == "video_too_long"
    async with browser(bridge) as client:
        await log_in(client)
        fragment = (await client.get(f"/console/incidents/{incident_id}/reports")).text
        assert "Niet aangenomen (de beller zag waarom): bestand 1 is langer dan 5 minuten" in fragment
    await caller_did(bridge, link["id"], "uploading")  # the caller tries again, with a shorter one
    await caller_did(bridge, link["id"], "received", 1)
    shown = (await bridge.client.get(path, headers=dirk)).json()[0]
    assert (shown["state"], shown["files"], shown["refused"]) == ("received", 1, None)
    await caller_did(bridge, link["id"], "uploading", 1)  # more, refused: the link stays received
    await caller_did(bridge, link["id"], "upload_refused", 1, too_long)
    shown = (await bridge.client.get(path, headers=dirk)).json()[0]
    assert (shown["state"], shown["refused"]["error"]) == ("received", "video_too_long")
    actions = [
        e["action"]
        for e in (await bridge.client.get("/v1/dispatch/audit", headers=await api_login(bridge, "sara"))).json()
    ]
    assert "caller_link.upload_refused" in actions


async def test_the_console_sends_follows_and_revokes_a_link(bridge: Any, sms_gateway: str) -> None:
    incident_id = await an_incident(bridge)
    async with browser(bridge) as client:
        csrf = await log_in(client)
        page = (await client.get(f"/console/incidents/{incident_id}")).text
        assert "Beelden van een beller" in page and 'name="phone" type="tel"' in page
        sent = await client.post(
            f"/console/incidents/{incident_id}/caller-links",
            data={"csrf_token": csrf, "nonce": str(uuid.uuid4()), "phone": "06 2233 4455", "ask": "Het kenteken graag"},
        )
        assert sent.status_code == 303
        assert len(sms_to(sms_gateway, "0031622334455")) == 1
        page = (await client.get(f"/console/incidents/{incident_id}")).text
        assert "Verstuurd" in page and "…55" in page and "Het kenteken graag" in page
        async with bridge.runtime.db.sessions() as session:
            link_id = (await session.execute(select(CallerLink.id))).scalar_one()
        await caller_did(bridge, link_id, "consent_refused")
        fragment = (await client.get(f"/console/incidents/{incident_id}/reports")).text  # what the live feed fetches
        assert "Toestemming geweigerd" in fragment
        revoked = await client.post(
            f"/console/caller-links/{link_id}/revoke",
            data={"csrf_token": csrf, "back": f"/console/incidents/{incident_id}"},
        )
        assert revoked.status_code == 303
        page = (await client.get(f"/console/incidents/{incident_id}")).text
        assert "Ingetrokken" in page and "…55" not in page


async def test_a_callers_images_join_the_incident_they_were_asked_for_at_once(bridge: Any) -> None:
    incident_id = await an_incident(bridge)
    dirk = await api_login(bridge, "dirk")
    link = (
        await bridge.client.post(
            f"/v1/dispatch/incidents/{incident_id}/caller-links",
            json={"phone": PHONE, "ask": "Laat zien"},
            headers=dirk,
        )
    ).json()
    far_away = {"lat": 53.2, "lon": 6.5}  # the caller's own place: far from the incident, and not urgent
    images = witness_report(
        bridge,
        82,
        description="Beelden van een beller, op verzoek van de meldkamer: Laat zien",
        location=far_away,
        in_progress=False,
        submitter_tag=None,
        submitter_kind=None,
        caller_link=CallerLinkRef(link_id=link["id"], incident_id=incident_id),
    )
    assert await receiving.receive_report(bridge.runtime, images, str(uuid.uuid4()), "report-intake") == "accepted"
    async with bridge.runtime.db.sessions() as session:
        stored = await session.get(BridgeReport, images.report_id)
        updates = (
            (
                await session.execute(
                    select(messaging.outbox.c.payload).where(messaging.outbox.c.kind == "meldkamer.update")
                )
            )
            .scalars()
            .all()
        )
    # Not waiting for verification, not grouped by place: into the incident the dispatcher asked them for.
    assert stored.incident_id == incident_id and stored.state == "forwarded"
    assert any("ph82" in u or images.reference in u for u in updates)
