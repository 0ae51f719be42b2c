"""Issue #29: nothing is public that was not published for the public. A Burgernet action names only a photo a
dispatcher uploaded for it (sanitised by the suite's one sanitiser, recorded with who uploaded it, in the
published store), never a citizen's original; an ended action reaches intake without whom it sought; a centre
proposed from an incident's place is never a lone witness's exact place."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest
from bridge_support import api_login, queued, start_bridge
from sqlalchemy import select

from burgermelding_shared.blobstore import published_store
from burgermelding_shared.contracts import MeldkamerAppeal, PhotoRef, ReportSubmitted
from burgermelding_shared.service_auth import development_key
from dispatch_bridge.burgernet import control_room
from dispatch_bridge.models import BurgernetAction, BurgernetPhoto
from tests.helpers import heic_photo, phone_photo

WITNESS_HOME = (52.090734, 5.121468)  # where the one witness stood: a front door


@pytest.fixture
async def bridge(start_service: Callable[..., Any]) -> Any:
    """Its relay stopped: nothing leaves, the outbox keeps what the bridge would send."""
    return await start_bridge(start_service, relay=False, accounts=[("dirk", "dispatcher")])


async def a_witness_with_a_photo(bridge: Any) -> tuple[ReportSubmitted, bytes]:
    """An urgent report with a phone's photo (GPS and camera in its EXIF), as intake sends it: its incident."""
    original = phone_photo(3, *WITNESS_HOME, size=(800, 600))
    digest = bridge.runtime.blobs.put_bytes(original)
    now = datetime.now(UTC)
    report = ReportSubmitted(
        report_id=str(uuid.uuid4()),
        reference="BM-2026-000077",
        category="violence",
        description="vechtpartij voor mijn deur",
        location={"lat": WITNESS_HOME[0], "lon": WITNESS_HOME[1]},
        observed_at=now,
        received_at=now,
        in_progress=True,
        photos=[
            PhotoRef(
                photo_id="ph1",
                sha256=digest,
                sanitised_sha256=None,
                content_type="image/jpeg",
                size_bytes=len(original),
                width=800,
                height=600,
            )
        ],
    )
    token = development_key("report-intake").issue("dispatch-bridge")
    answer = await bridge.client.post(
        "/internal/v1/reports",
        content=report.model_dump_json(),
        headers={
            "Authorization": f"Bearer {token}",
            "Idempotency-Key": str(uuid.uuid4()),
            "content-type": "application/json",
        },
    )
    assert answer.status_code == 200, answer.text
    return report, original


async def incident_of(bridge: Any, headers: dict[str, str]) -> str:
    listed = (await bridge.client.get("/v1/dispatch/incidents", headers=headers)).json()
    return str(listed[0]["incident_id"])


def action_body(incident_id: str, **changes: Any) -> dict[str, Any]:
    return {
        "incident_id": incident_id,
        "looking_for": "missing_child",
        "headline_nl": "Vermist: meisje van 7",
        "description_nl": "Blond haar, rode jas, roze tas",
        "area": {"circle": {"lat": 52.09, "lon": 5.12, "radius_m": 1000}},
        **changes,
    }


async def published_to_intake(bridge: Any) -> list[dict[str, Any]]:
    return await queued(bridge, "burgernet.action")


async def test_an_action_can_name_only_a_photo_uploaded_for_burgernet(bridge: Any) -> None:
    headers = await api_login(bridge)
    report, original = await a_witness_with_a_photo(bridge)
    incident_id = await incident_of(bridge, headers)
    # Dispatchers see the original's digest on every report; naming it must not publish the original.
    seen = (await bridge.client.get(f"/v1/dispatch/reports/{report.report_id}", headers=headers)).json()
    assert seen["photos"][0]["sha256"] == report.photos[0].sha256
    refusals = []
    for digest in (report.photos[0].sha256, "ab" * 32):  # a citizen's original, and a digest nobody has
        answer = await bridge.client.post(
            "/v1/dispatch/burgernet/actions", headers=headers, json=action_body(incident_id, photo_sha256=digest)
        )
        assert answer.status_code == 422, answer.text
        refusals.append({k: v for k, v in answer.json().items() if k not in ("instance", "trace_id")})
    assert refusals[0] == refusals[1] and refusals[0]["error"] == "unknown_photo"  # reveals nothing
    async with bridge.runtime.db.sessions() as session:
        assert (await session.execute(select(BurgernetAction))).scalars().all() == []
    assert await published_to_intake(bridge) == []

    # Uploaded for Burgernet: sanitised, in the published store only, recorded with who uploaded it.
    uploaded = await bridge.client.post("/v1/dispatch/burgernet/photos", headers=headers, content=original)
    assert uploaded.status_code == 201, uploaded.text
    photo = uploaded.json()
    clean = published_store(bridge.settings.blob_config()).read_verified(photo["sha256"])
    assert clean[:3] == b"\xff\xd8\xff" and b"Exif" not in clean and b"Pixel 8" not in clean
    assert not bridge.runtime.blobs.exists(photo["sha256"])  # not among the evidence
    assert not published_store(bridge.settings.blob_config()).exists(report.photos[0].sha256)
    async with bridge.runtime.db.sessions() as session:
        recorded = await session.get(BurgernetPhoto, photo["sha256"])
    assert recorded is not None and recorded.uploaded_by == "dirk"
    started = await bridge.client.post(
        "/v1/dispatch/burgernet/actions", headers=headers, json=action_body(incident_id, photo_sha256=photo["sha256"])
    )
    assert started.status_code == 201, started.text
    [sent] = await published_to_intake(bridge)
    assert sent["photo"]["sha256"] == photo["sha256"]


async def test_the_one_sanitiser_takes_an_iphones_heic(bridge: Any) -> None:
    """The bridge's copy is made by the same sanitiser as intake's display copies: a HEIC is taken too."""
    headers = await api_login(bridge)
    heic = heic_photo(phone_photo(4, *WITNESS_HOME, size=(640, 480)), *WITNESS_HOME)
    uploaded = await bridge.client.post("/v1/dispatch/burgernet/photos", headers=headers, content=heic)
    assert uploaded.status_code == 201, uploaded.text
    clean = published_store(bridge.settings.blob_config()).read_verified(uploaded.json()["sha256"])
    assert clean[:3] == b"\xff\xd8\xff" and b"iPhone" not in clean
    for junk, status in ((b"GIF89a" + b"\0" * 64, 415), (heic[: len(heic) // 2], 422)):
        refused = await bridge.client.post("/v1/dispatch/burgernet/photos", headers=headers, content=junk)
        assert refused.status_code == status, refused.text
        assert refused.json()["detail_nl"]


async def test_an_ended_action_reaches_intake_without_whom_it_sought(bridge: Any) -> None:
    headers = await api_login(bridge)
    await a_witness_with_a_photo(bridge)
    incident_id = await incident_of(bridge, headers)
    started = (
        await bridge.client.post("/v1/dispatch/burgernet/actions", headers=headers, json=action_body(incident_id))
    ).json()
    closed = await bridge.client.post(
        f"/v1/dispatch/burgernet/actions/{started['action_id']}/close", headers=headers, json={"outcome": "found"}
    )
    assert closed.status_code == 200, closed.text
    opened, ended = await published_to_intake(bridge)
    assert "rode jas" in opened["description_nl"]
    assert ended["status"] == "closed" and ended["closing_nl"] and "rode jas" not in json.dumps(ended)
    assert "meisje van 7" not in json.dumps(ended)
    # The police's own record keeps the whole.
    kept = (await bridge.client.get(f"/v1/dispatch/burgernet/actions/{started['action_id']}", headers=headers)).json()
    assert kept["description_nl"] == "Blond haar, rode jas, roze tas" and kept["status"] == "closed"


async def test_the_meldkamers_action_is_centred_near_not_on_the_witness(bridge: Any) -> None:

    headers = await api_login(bridge)
    await a_witness_with_a_photo(bridge)
    incident_id = await incident_of(bridge, headers)
    appeal = MeldkamerAppeal(
        transactionId="t-1",
        requestId=incident_id,
        lookingFor="person",
        description="man met rode jas",
        radiusMeters=500,
        minutes=30,
    )
    started = await control_room.from_meldkamer(bridge.runtime, appeal, str(uuid.uuid4()))
    circle = started["area"]["circle"]
    assert (circle["lat"], circle["lon"]) == (52.091, 5.121)
    assert (circle["lat"], circle["lon"]) != WITNESS_HOME
