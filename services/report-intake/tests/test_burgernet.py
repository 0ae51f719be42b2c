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
    return await start_service(
        "report_intake", IntakeSettings, burgernet_feed_refresh_seconds=60, installation_pow_bits=8
    )


def action(version: int = 1, **changes: Any) -> PublishedAction:
    now = datetime.now(UTC)
    return PublishedAction(
        action_id="6d1f0c6e-1b0e-4a43-8f0e-2a8f3c1d9b01",
        reference="BN-2026-000001",
        version=version,
        kind="action",
        looking_for="vehicle",
        headline_nl="Gezocht: witte bestelbus",
        headline_en="Sought: white van",
        description_nl="Witte bestelbus",
        description_en="White van",
        area=Area(circle={"lat": 52.09, "lon": 5.12, "radius_m": 2000}),
        started_at=now,
        closes_at=now + timedelta(minutes=30),
        status="open",
    ).model_copy(update=changes)


async def publish(intake: Any, published: PublishedAction) -> Any:
    token = development_key("dispatch-bridge").issue("report-intake")
    return await intake.client.post(
        "/internal/v1/burgernet/actions",
        json=published.model_dump(mode="json"),
        headers={"Authorization": f"Bearer {token}", "Idempotency-Key": str(uuid.uuid4())},
    )


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
    assert (
        json.loads(gzip.decompress(zipped.content) if zipped.content[:2] == b"\x1f\x8b" else zipped.content)
        == plain.json()
    )
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
        answer = await intake.client.post(
            "/v1/burgernet/receipts",
            headers={"Installation-Credential": credential},
            json={"action_ids": [action().action_id, "no-such-action"]},
        )
        assert answer.status_code == 200 and answer.json() == {"counted": 1}
    assert (
        await intake.client.post("/v1/burgernet/receipts", json={"action_ids": [action().action_id]})
    ).status_code == 401
    token = development_key("dispatch-bridge").issue("report-intake")
    reach = await intake.client.get(
        f"/internal/v1/burgernet/actions/{action().action_id}/reach", headers={"Authorization": f"Bearer {token}"}
    )
    assert reach.json()["installations"] == 2
    closed = action(
        2, status="closed", outcome="found", closing_nl="Gevonden.", closing_en="Found.", closed_at=datetime.now(UTC)
    )
    assert (await publish(intake, closed)).json()["status"] == "applied"
    assert (await publish(intake, action(1))).json()["status"] == "stale"  # a late older version changes nothing
    async with intake.runtime.db.sessions() as session:
        assert (await session.execute(select(AppealReceipt))).all() == []  # only the figure stays
    reach = await intake.client.get(
        f"/internal/v1/burgernet/actions/{action().action_id}/reach", headers={"Authorization": f"Bearer {token}"}
    )
    assert reach.json()["installations"] == 2
    feed = (await intake.client.get("/v1/burgernet/actions")).json()
    assert feed["actions"][0]["status"] == "closed" and feed["actions"][0]["closing_nl"] == "Gevonden."

    sighting = {
        "description": "Bus gezien",
        "location": {"lat": 52.09, "lon": 5.12},
        "seen_at": datetime.now(UTC).isoformat(),
    }
    files = {"sighting": (None, json.dumps(sighting), "application/json")}
    url = f"/v1/burgernet/actions/{action().action_id}/sightings"
    late = await intake.client.post(
        url, files=files, headers={"Idempotency-Key": "late-answer-01", "Installation-Credential": first}
    )
    assert late.status_code == 409 and late.json()["error"] == "burgernet_action_closed" and late.json()["detail_nl"]
    anonymous = await intake.client.post(url, files=files, headers={"Idempotency-Key": "late-answer-02"})
    assert anonymous.status_code == 401
    unknown = await intake.client.post(
        "/v1/burgernet/actions/nope/sightings",
        files=files,
        headers={"Idempotency-Key": "late-answer-03", "Installation-Credential": first},
    )
    assert unknown.status_code == 404


async def test_the_public_photo_route_serves_only_published_photos(intake: Any) -> None:
    """Issue #29: an action naming a citizen's original (a bridge misled, or broken into) still cannot publish it:
    the public route reads only the published store, which only the bridge's sanitiser writes."""
    from burgermelding_shared.blobstore import published_store
    from burgermelding_shared.burgernet import ActionPhoto, photo_digest_sha1
    from report_intake.models import Photo
    from tests.helpers import phone_photo, report_json
    from tests.intake_support import post_report

    original = phone_photo(7, 52.0907, 5.1214)  # GPS and a camera in its EXIF: evidence, never public
    created = await post_report(intake, report_json(), photos=[("p.jpg", original, "image/jpeg")])
    assert created.status_code == 202, created.text
    async with intake.runtime.db.sessions() as session:
        stored = (await session.execute(select(Photo))).scalars().one()
    evidence = ActionPhoto(sha256=stored.sha256, size_bytes=len(original), sha1=photo_digest_sha1(original))
    assert intake.runtime.blobs.exists(stored.sha256)
    for named in (evidence, ActionPhoto(sha256=stored.sanitised_sha256, size_bytes=1, sha1="0" * 40)):
        assert (await publish(intake, action(photo=named, version=named.size_bytes))).status_code == 200
        served = await intake.client.get(f"/v1/burgernet/actions/{action().action_id}/photo")
        assert served.status_code == 404 and served.json()["error"] == "photo_not_found"
        assert original not in served.content
    # What the bridge publishes (its sanitised copy, in the published store) is served.
    from burgermelding_shared import images

    clean = images.sanitised_copy(original, max_pixels=50_000_000, max_side=1600, scratch=intake.settings.blob_dir)
    digest = published_store(intake.settings.blob_config()).put_bytes(clean)
    photo = ActionPhoto(sha256=digest, size_bytes=len(clean), sha1=photo_digest_sha1(clean))
    assert (await publish(intake, action(photo=photo, version=len(original) + 1))).status_code == 200
    served = await intake.client.get(f"/v1/burgernet/actions/{action().action_id}/photo")
    assert served.status_code == 200 and served.content == clean
    assert b"Exif" not in served.content[:4096] and b"Pixel 8" not in served.content


async def test_an_ended_action_keeps_only_its_closing_message(intake: Any) -> None:
    """Issue #29: once an action closes, the feed and its CAP keep the closing message, not whom it sought."""
    sought = action(
        looking_for="missing_child",
        headline_nl="Vermist: meisje van 7, rode jas",
        headline_en="Missing: girl of 7, red coat",
        description_nl="Blond haar, rode jas, roze tas",
        description_en="Blond hair, red coat, pink bag",
    )
    await publish(intake, sought)
    feed = (await intake.client.get("/v1/burgernet/actions", headers={"Accept-Encoding": "identity"})).text
    assert "rode jas" in feed  # open: the public must know whom to look for
    now = datetime.now(UTC)
    closed = sought.model_copy(
        update={
            "version": 2,
            "status": "closed",
            "outcome": "found",
            "closed_at": now,
            "closing_nl": "Het meisje is gevonden.",
            "closing_en": "She was found.",
        }
    )
    assert (await publish(intake, closed)).json()["status"] == "applied"
    feed_doc = (await intake.client.get("/v1/burgernet/actions", headers={"Accept-Encoding": "identity"})).json()
    [shown] = feed_doc["actions"]
    assert shown["status"] == "closed" and shown["closing_nl"] == "Het meisje is gevonden."
    text = json.dumps(shown)
    for gone in ("rode jas", "red coat", "Blond", "roze tas", "meisje van 7"):
        assert gone not in text
    assert shown["headline_nl"] == "Burgernet: vermist kind" and "photo" not in shown["links"]
    cap = (await intake.client.get(f"/v1/burgernet/actions/{sought.action_id}/cap")).text
    assert "Het meisje is gevonden." in cap and "rode jas" not in cap and "red coat" not in cap
