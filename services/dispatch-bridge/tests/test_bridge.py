"""dispatch-bridge in-process on a real database. Its destinations are down: what it would send stays in its
outbox, which is what these tests read."""

from __future__ import annotations

import json
import time
import uuid
from datetime import UTC, datetime
from typing import Any

from bridge_support import post_internal
from sqlalchemy import select

from burgermelding_shared import webhooks
from burgermelding_shared.contracts import PhotoRef, ReportSubmitted
from burgermelding_shared.eido import problems
from burgermelding_shared.service_auth import development_key
from dispatch_bridge.config import BridgeSettings
from dispatch_bridge.meldkamer import eido as meldkamer_eido
from dispatch_bridge.meldkamer import media
from dispatch_bridge.models import BridgeReport, Incident, messaging


def report(bridge: Any, **overrides: Any) -> ReportSubmitted:
    digest = bridge.runtime.blobs.put_bytes(b"photo bytes")
    now = datetime.now(UTC)
    values = {
        "report_id": str(uuid.uuid4()),
        "reference": "BM-2026-000007",
        "category": "burglary",
        "description": "inbraak",
        "location": {"lat": 52.09, "lon": 5.12},
        "observed_at": now,
        "received_at": now,
        "in_progress": False,
        "photos": [
            PhotoRef(
                photo_id="p1",
                sha256=digest,
                sanitised_sha256=digest,
                content_type="image/jpeg",
                size_bytes=11,
                width=1,
                height=1,
            )
        ],
        **overrides,
    }
    return ReportSubmitted(**values)


async def post(bridge: Any, path: str, body: Any, caller: str) -> Any:
    return await post_internal(bridge, path, body, caller)


def verdict(report_id: str, value: str) -> dict[str, Any]:
    return {
        "report_id": report_id,
        "verdict": value,
        "score": 0.9 if value == "forward" else 0.2,
        "verified_at": datetime.now(UTC).isoformat(),
    }


async def outbox(bridge: Any) -> list[dict[str, Any]]:
    async with bridge.runtime.db.sessions() as session:
        rows = (await session.execute(select(messaging.outbox).order_by(messaging.outbox.c.id))).mappings().all()
    return [{**row, "payload": json.loads(row["payload"])} for row in rows]


def citizen_news(rows: list[dict[str, Any]]) -> list[list[str]]:
    """The events of each message to intake, one list a message."""
    return [[event["event"] for event in r["payload"]["events"]] for r in rows if r["destination"] == "report-intake"]


async def test_in_progress_report_is_forwarded_at_once_as_urgent_eido(bridge: Any) -> None:
    urgent = report(bridge, in_progress=True)
    assert (await post(bridge, "/internal/v1/reports", urgent.model_dump(mode="json"), "report-intake")).json() == {
        "status": "accepted"
    }
    rows = await outbox(bridge)
    request = next(r for r in rows if r["destination"] == "meldkamer")
    assert request["priority"] == 10
    eido = request["payload"]["eido"]
    assert problems(eido) == []  # NENA-STA-021, as a strict receiver checks it
    incident = eido["incidentComponent"]
    assert eido["eidoVersion"] == "1.0" and incident["incidentTypeCommonRegistryText"] == "BURGLARY"
    assert incident["incidentCommonPriorityNumber"] == 10 and incident["incidentStatusInternalText"] == ["InProgress"]
    assert eido["$id"] == f"urn:emergency:uid:incidentid:{incident['internalIncidentId']}:burgermelding.politie.nl"
    assert eido["mediaComponent"][0]["digestSha256"] == urgent.photos[0].sha256
    assert eido["eidoExtensionId"] == ["urn:burgermelding:eido:extension:mediaDigestSha256:1"]
    assert incident["mediaReferences"] == [{"$ref": eido["mediaComponent"][0]["$id"]}]
    assert eido["locationComponent"][0]["locationByValue"].startswith("<presence xmlns")
    assert request["payload"]["requestId"] == incident["internalIncidentId"]
    assert citizen_news(rows) == [["forwarded"]]


async def test_other_reports_wait_for_a_forward_verdict(bridge: Any) -> None:
    outcomes = {}
    for value in ("forward", "review", "reject"):
        waiting = report(bridge)
        before = len([r for r in await outbox(bridge) if r["destination"] == "meldkamer"])
        await post(bridge, "/internal/v1/reports", waiting.model_dump(mode="json"), "report-intake")
        assert len([r for r in await outbox(bridge) if r["destination"] == "meldkamer"]) == before  # it waits
        response = await post(bridge, "/internal/v1/verifications", verdict(waiting.report_id, value), "verification")
        assert response.status_code == 200, response.text
        async with bridge.runtime.db.sessions() as session:
            outcomes[value] = (await session.get(BridgeReport, waiting.report_id)).state
    assert outcomes == {"forward": "forwarded", "review": "held_for_review", "reject": "rejected"}
    assert len([r for r in await outbox(bridge) if r["destination"] == "meldkamer"]) == 1
    # What one change means for a citizen travels as one message: verified and forwarded together.
    assert citizen_news(await outbox(bridge)) == [["verified", "forwarded"], ["under_review"], ["rejected"]]


async def test_a_verification_that_overtakes_its_report_is_asked_again_later(bridge: Any) -> None:
    response = await post(bridge, "/internal/v1/verifications", verdict(str(uuid.uuid4()), "forward"), "verification")
    assert response.status_code == 409 and response.headers["retry-after"] == "1"


async def forwarded_incident(bridge: Any) -> Incident:
    urgent = report(bridge, in_progress=True)
    await post(bridge, "/internal/v1/reports", urgent.model_dump(mode="json"), "report-intake")
    async with bridge.runtime.db.sessions() as session:
        return (await session.execute(select(Incident))).scalars().one()


def callback(
    incident: Incident,
    status: str,
    sequence: int,
    transaction: str | None = None,
    keys: dict[str, str] | None = None,
    timestamp: int | None = None,
) -> tuple[bytes, dict[str, str]]:
    body = json.dumps(
        {
            "transactionId": transaction or f"t-{sequence}",
            "requestId": incident.id,
            "incidentId": "MK-2026-000001",
            "status": status,
            "sequence": sequence,
            "lastUpdateTimeStamp": datetime.now(UTC).isoformat(),
        }
    ).encode()
    return body, webhooks.signed_headers(
        keys or BridgeSettings().meldkamer_webhook_keys, transaction or f"t-{sequence}", body, timestamp
    )


async def test_callbacks_forged_stale_duplicate_and_out_of_order(bridge: Any) -> None:
    incident = await forwarded_incident(bridge)
    path = "/v1/meldkamer/callbacks"
    body, headers = callback(
        incident, "ResourcesAssigned", 1, keys={"k": "whsec_" + "bm90LXRoZS1zZWNyZXQtYXQtYWxsLWxvbmctZW5vdWdo"}
    )
    assert (await bridge.client.post(path, content=body, headers=headers)).status_code == 401
    body, headers = callback(incident, "ResourcesAssigned", 1, timestamp=int(time.time()) - 3600)
    stale = await bridge.client.post(path, content=body, headers=headers)
    assert (stale.status_code, stale.json()["error"]) == (401, "stale_callback")
    body, headers = callback(incident, "ResourcesAssigned", 1)
    assert (await bridge.client.post(path, content=body, headers=headers)).json() == {"status": "applied"}
    assert (await bridge.client.post(path, content=body, headers=headers)).json() == {"status": "duplicate"}
    tampered = body.replace(b"ResourcesAssigned", b"Closed")
    assert (await bridge.client.post(path, content=tampered, headers=headers)).status_code == 401
    body, headers = callback(incident, "Active", 0)  # older news, arriving late
    assert (await bridge.client.post(path, content=body, headers=headers)).json() == {"status": "out_of_order"}
    async with bridge.runtime.db.sessions() as session:
        stored = await session.get(Incident, incident.id)
    assert stored.operational_status == "ResourcesAssigned" and stored.delivery_state == "accepted"
    # The callback is the first proof of acceptance: accepted and the unit, in one message.
    assert citizen_news(await outbox(bridge)) == [["forwarded"], ["accepted", "unit_assigned"]]


async def test_photo_links_are_signed_and_expire(bridge: Any) -> None:

    digest = bridge.runtime.blobs.put_bytes(b"original evidence")
    url = media.signed_url("", bridge.settings.media_url_secret, digest, 60)
    ok = await bridge.client.get(url)
    assert ok.status_code == 200 and ok.content == b"original evidence"
    assert (await bridge.client.get(url.replace("signature=", "signature=0"))).status_code == 403
    expired = media.signed_url("", bridge.settings.media_url_secret, digest, -10)
    assert (await bridge.client.get(expired)).json()["error"] == "media_url_expired"
    # Forged links of every odd shape are refused as invalid, never a 500 (schemathesis found a huge expiry).
    signature = url.split("signature=")[1]
    for query in (
        f"expires={10**30}&signature={signature}",
        f"expires=-5&signature={signature}",
        f"expires={10**11 + 1}&signature={signature}",
        "expires=9999999999&signature=%C3%A9%00",
        "expires=9999999999&signature=",
    ):
        forged = await bridge.client.get(f"/v1/media/{digest}?{query}")
        assert (forged.status_code, forged.json()["error"]) == (403, "media_url_invalid"), query
    for query in ("expires=soon&signature=x", "signature=x", f"expires={'9' * 5000}&signature=x"):
        malformed = await bridge.client.get(f"/v1/media/{digest}?{query}")
        assert (malformed.status_code, malformed.json()["error"]) == (422, "validation_error"), query


async def test_news_on_a_forwarded_report_goes_to_the_meldkamer_as_updates(bridge: Any) -> None:
    urgent = report(bridge, in_progress=True)
    await post(bridge, "/internal/v1/reports", urgent.model_dump(mode="json"), "report-intake")
    digest = bridge.runtime.blobs.put_bytes(b"second photo")
    revised = urgent.model_copy(
        update={
            "revision": 1,
            "photos": [
                *urgent.photos,
                PhotoRef(
                    photo_id="p2",
                    sha256=digest,
                    sanitised_sha256=digest,
                    content_type="image/jpeg",
                    size_bytes=12,
                    width=1,
                    height=1,
                ),
            ],
        }
    )
    assert (await post(bridge, "/internal/v1/reports", revised.model_dump(mode="json"), "report-intake")).json() == {
        "status": "revised"
    }
    result = verdict(urgent.report_id, "forward") | {"revision": 1}
    assert (await post(bridge, "/internal/v1/verifications", result, "verification")).json() == {"status": "applied"}
    stale = verdict(urgent.report_id, "review") | {"revision": 0}
    assert (await post(bridge, "/internal/v1/verifications", stale, "verification")).json() == {"status": "stale"}
    message = {
        "report_id": urgent.report_id,
        "message_id": "m1",
        "text": "Hij droeg een rode jas",
        "sent_at": datetime.now(UTC).isoformat(),
    }
    assert (await post(bridge, "/internal/v1/citizen-messages", message, "report-intake")).status_code == 200
    withdrawal = {"report_id": urgent.report_id, "withdrawn_at": datetime.now(UTC).isoformat()}
    assert (await post(bridge, "/internal/v1/withdrawals", withdrawal, "report-intake")).status_code == 200
    rows = await outbox(bridge)
    first_request = next(r["payload"] for r in rows if r["kind"] == "meldkamer.request_for_service")
    updates = [r["payload"] for r in rows if r["kind"] == "meldkamer.update"]
    assert [u["kind"] for u in updates] == ["media", "verification", "citizen_note", "withdrawn"]
    assert all(problems(u["eido"]) == [] for u in updates)
    assert {u["eido"]["$id"] for u in updates} == {first_request["eido"]["$id"]}  # the incident's tracking id
    assert [m["digestSha256"] for m in updates[0]["eido"]["mediaComponent"]] == [digest]
    assert "Hij droeg een rode jas" in updates[2]["eido"]["notesComponent"][0]["notesActionComments"]
    assert len({u["requestId"] for u in updates}) == 1 and len({u["updateId"] for u in updates}) == 4


async def test_a_withdrawn_report_is_never_forwarded(bridge: Any) -> None:
    waiting = report(bridge)
    await post(bridge, "/internal/v1/reports", waiting.model_dump(mode="json"), "report-intake")
    withdrawal = {"report_id": waiting.report_id, "withdrawn_at": datetime.now(UTC).isoformat()}
    await post(bridge, "/internal/v1/withdrawals", withdrawal, "report-intake")
    await post(bridge, "/internal/v1/verifications", verdict(waiting.report_id, "forward"), "verification")
    assert not [r for r in await outbox(bridge) if r["destination"] == "meldkamer"]


async def test_contact_details_travel_only_when_consented(bridge: Any) -> None:
    consented = report(bridge, in_progress=True, contact={"phone": "+31612345678", "share_with_police": True})
    await post(bridge, "/internal/v1/reports", consented.model_dump(mode="json"), "report-intake")
    eido = next(r for r in await outbox(bridge) if r["kind"] == "meldkamer.request_for_service")["payload"]["eido"]
    assert problems(eido) == []
    callback = eido["callbackComponent"][0]
    assert eido["personComponent"][0]["callBackReference"] == {"$ref": callback["$id"]}
    assert callback["callBackInformationUri"][1:] == ["tel:+31612345678"]
    private = report(bridge, in_progress=True, description="elders", contact={"phone": "+31612345678"})
    await post(bridge, "/internal/v1/reports", private.model_dump(mode="json"), "report-intake")
    documents = [json.dumps(r["payload"]["eido"]) for r in await outbox(bridge) if r["destination"] == "meldkamer"]
    about_private = [d for d in documents if "elders" in d]
    assert about_private and all("+31612345678" not in d for d in about_private)  # without consent: kept with us


async def test_a_later_report_about_the_same_event_joins_its_incident(bridge: Any) -> None:
    first = report(bridge)
    await post(bridge, "/internal/v1/reports", first.model_dump(mode="json"), "report-intake")
    await post(bridge, "/internal/v1/verifications", verdict(first.report_id, "forward"), "verification")
    second = report(bridge, description="rook bij dezelfde woning")
    await post(bridge, "/internal/v1/reports", second.model_dump(mode="json"), "report-intake")
    grouped = verdict(second.report_id, "forward") | {"group_id": "g1", "group_reports": [first.report_id]}
    assert (await post(bridge, "/internal/v1/verifications", grouped, "verification")).json() == {"status": "applied"}
    rows = await outbox(bridge)
    assert len([r for r in rows if r["kind"] == "meldkamer.request_for_service"]) == 1  # one incident, not two
    added = [r["payload"] for r in rows if r["kind"] == "meldkamer.update"]
    assert [u["kind"] for u in added] == ["report_added"] and problems(added[0]["eido"]) == []
    assert "rook bij dezelfde woning" in added[0]["eido"]["notesComponent"][0]["notesActionComments"]
    async with bridge.runtime.db.sessions() as session:
        incident_ids = {(await session.get(BridgeReport, r.report_id)).incident_id for r in (first, second)}
    assert len(incident_ids) == 1


async def test_oversized_bodies_are_refused_before_anything_reads_them(bridge: Any) -> None:
    big = b"{" + b" " * (2 * 1024 * 1024) + b"}"
    # Even a caller with a valid credential may not send more than the cap.
    credential = {
        "Authorization": f"Bearer {development_key('report-intake').issue('dispatch-bridge')}",
        "Idempotency-Key": str(uuid.uuid4()),
        "content-type": "application/json",
    }
    for path in ("/internal/v1/reports", "/v1/meldkamer/callbacks"):
        declared = await bridge.client.post(path, content=big, headers=credential)
        assert declared.status_code == 413 and declared.json()["error"] == "payload_too_large", path

        async def undeclared() -> Any:  # chunked: no Content-Length to go by, cut off while streaming
            for start in range(0, len(big), 64 * 1024):
                yield big[start : start + 64 * 1024]

        streamed = await bridge.client.post(path, content=undeclared(), headers=credential)
        assert streamed.status_code == 413 and streamed.json()["error"] == "payload_too_large", path
    # A normal-sized request still gets its ordinary answer (here: no credential).
    assert (await bridge.client.post("/internal/v1/reports", json={})).status_code == 401
    # Without a credential nothing else about the request is judged, not even a malformed body.
    assert (
        await bridge.client.post(
            "/internal/v1/reports", content=b"{not json", headers={"content-type": "application/json"}
        )
    ).status_code == 401


def test_pidf_lo_keeps_its_default_namespace_after_a_cap_alert_was_written() -> None:
    """ElementTree has one prefix registry per process: writing a CAP alert (Burgernet) once took PIDF's default
    namespace away, and every later EIDO location came out as `<ns0:presence>`."""
    import xml.etree.ElementTree as ET

    from burgermelding_shared.contracts import Location

    ET.register_namespace("", "urn:oasis:names:tc:emergency:cap:1.2")  # what writing an alert used to leave
    written = meldkamer_eido.pidf_lo(Location(lat=52.09, lon=5.12), "pres:report@burgermelding", datetime.now(UTC))
    assert written.startswith('<presence xmlns="urn:ietf:params:xml:ns:pidf"')
