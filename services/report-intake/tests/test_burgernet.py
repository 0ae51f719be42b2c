"""The Burgernet feed at intake: one cacheable document for every phone (ETag, 304, gzip, HEAD), versions
applied in order, receipts counted once per installation and frozen when an action ends, answers refused
without the app's credential and once the action has ended."""

from __future__ import annotations

import gzip
import json
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select

from burgermelding_shared.burgernet import Area, PublishedAction
from burgermelding_shared.service_auth import development_key
from report_intake.config import IntakeSettings
from report_intake.models import AppealReceipt
from tests.intake_support import register_installation


@pytest.fixture
async def intake(start_service: Callable[..., Any]) -> Any:
    return await start_service("report_intake", IntakeSettings, burgernet_feed_refresh_seconds=60,
                               installation_pow_bits=8)


def action(version: int = 1, **changes: Any) -> PublishedAction:
    now = datetime.now(UTC)
    return PublishedAction(
        action_id="6d1f0c6e-1b0e-4a43-8f0e-2a8f3c1d9b01", reference="BN-2026-000001", version=version,
        kind="action", looking_for="vehicle", headline_nl="Gezocht: witte bestelbus", headline_en="Sought: white van",
        description_nl="Witte bestelbus", description_en="White van",
        area=Area(circle={"lat": 52.09, "lon": 5.12, "radius_m": 2000}), started_at=now,
        closes_at=now + timedelta(minutes=30), status="open").model_copy(update=changes)


async def publish(intake: Any, published: PublishedAction) -> Any:
    token = development_key("dispatch-bridge").issue("report-intake")
    return await intake.client.post("/internal/v1/burgernet/actions", json=published.model_dump(mode="json"),
                                    headers={"Authorization": f"Bearer {token}", "Idempotency-Key": str(uuid.uuid4())})


async def test_the_feed_is_one_cacheable_document(intake: Any) -> None:
    empty = await intake.client.get("/v1/burgernet/actions", headers={"Accept-Encoding": "identity"})
    assert empty.status_code == 200 and empty.json() == {"actions": []}
    assert (await publish(intake, action())).json()["status"] == "applied"
    plain = await intake.client.get("/v1/burgernet/actions", headers={"Accept-Encoding": "identity"})
    assert plain.headers["etag"] != empty.headers["etag"]  # a change this replica received shows at once
    assert "public" in plain.headers["cache-control"] and "max-age=15" in plain.headers["cache-control"]
    assert plain.json()["actions"][0]["links"]["answer"].endswith("/sightings")
    zipped = await intake.client.get("/v1/burgernet/actions", headers={"Accept-Encoding": "gzip, br"})
    assert zipped.headers["content-encoding"] == "gzip" and zipped.headers["etag"] != plain.headers["etag"]
    assert json.loads(gzip.decompress(zipped.content) if zipped.content[:2] == b"\x1f\x8b" else zipped.content) \
        == plain.json()
    assert int(zipped.headers["content-length"]) < len(plain.content)
    for etag in (plain.headers["etag"], zipped.headers["etag"], f'W/{plain.headers["etag"]}, "other"'):
        again = await intake.client.get("/v1/burgernet/actions", headers={"If-None-Match": etag})
        assert again.status_code == 304 and again.content == b"" and again.headers["etag"]
    head = await intake.client.head("/v1/burgernet/actions", headers={"Accept-Encoding": "identity"})
    assert head.status_code == 200 and head.content == b"" and head.headers["etag"] == plain.headers["etag"]
    stale = await intake.client.get("/v1/burgernet/actions", headers={"If-None-Match": empty.headers["etag"]})
    assert stale.status_code == 200
    metrics = (await intake.client.get("/metrics")).text
    assert 'bm_burgernet_feed_requests_total{status="304"} 3.0' in metrics


async def test_versions_apply_in_order_and_receipts_count_once(intake: Any) -> None:
    await publish(intake, action())
    first, second = await register_installation(intake), await register_installation(intake)
    for credential in (first, first, second):
        answer = await intake.client.post("/v1/burgernet/receipts", headers={"Installation-Credential": credential},
                                          json={"action_ids": [action().action_id, "no-such-action"]})
        assert answer.status_code == 200 and answer.json() == {"counted": 1}
    assert (await intake.client.post("/v1/burgernet/receipts", json={"action_ids": [action().action_id]})
            ).status_code == 401
    token = development_key("dispatch-bridge").issue("report-intake")
    reach = await intake.client.get(f"/internal/v1/burgernet/actions/{action().action_id}/reach",
                                    headers={"Authorization": f"Bearer {token}"})
    assert reach.json()["installations"] == 2
    closed = action(2, status="closed", outcome="found", closing_nl="Gevonden.", closing_en="Found.",
                    closed_at=datetime.now(UTC))
    assert (await publish(intake, closed)).json()["status"] == "applied"
    assert (await publish(intake, action(1))).json()["status"] == "stale"  # a late older version changes nothing
    async with intake.runtime.db.sessions() as session:
        assert (await session.execute(select(AppealReceipt))).all() == []  # only the figure stays
    reach = await intake.client.get(f"/internal/v1/burgernet/actions/{action().action_id}/reach",
                                    headers={"Authorization": f"Bearer {token}"})
    assert reach.json()["installations"] == 2
    feed = (await intake.client.get("/v1/burgernet/actions")).json()
    assert feed["actions"][0]["status"] == "closed" and feed["actions"][0]["closing_nl"] == "Gevonden."

    sighting = {"description": "Bus gezien", "location": {"lat": 52.09, "lon": 5.12},
                "seen_at": datetime.now(UTC).isoformat()}
    files = {"sighting": (None, json.dumps(sighting), "application/json")}
    url = f"/v1/burgernet/actions/{action().action_id}/sightings"
    late = await intake.client.post(url, files=files, headers={"Idempotency-Key": "late-answer-01",
                                                               "Installation-Credential": first})
    assert late.status_code == 409 and late.json()["error"] == "burgernet_action_closed" and late.json()["detail_nl"]
    anonymous = await intake.client.post(url, files=files, headers={"Idempotency-Key": "late-answer-02"})
    assert anonymous.status_code == 401
    unknown = await intake.client.post("/v1/burgernet/actions/nope/sightings", files=files, headers={
        "Idempotency-Key": "late-answer-03", "Installation-Credential": first})
    assert unknown.status_code == 404
