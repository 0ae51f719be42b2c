"""report-intake through its HTTP API, on a real database, with real image files."""

from __future__ import annotations

import asyncio
import io
import os
from collections.abc import Callable
from typing import Any

import pytest
from PIL import Image
from sqlalchemy import select

from burgermelding_shared import idempotency
from burgermelding_shared.service_auth import development_key
from report_intake.config import IntakeSettings
from report_intake.models import Photo, Report, idempotency_keys, messaging
from tests.helpers import make_jpeg, report_json
from tests.intake_support import post_report, stored_counts


async def test_create_read_and_replay(intake: Any) -> None:
    photo = make_jpeg(exif={0x0110: "Pixel 8"})
    body = report_json()
    response = await post_report(intake, body, [("p.jpg", photo, "image/jpeg")])
    assert response.status_code == 202, response.text
    created = response.json()
    assert created["reference"].startswith("BM-") and len(created["access_token"]) >= 43
    view = await intake.client.get(
        created["status_url"], headers={"Authorization": f"Bearer {created['access_token']}"}
    )
    assert view.status_code == 200
    assert view.json()["status"] == "received" and len(view.json()["photos"]) == 1
    # A retry with the same key and content replays the first answer, token included, and stores nothing new.
    before = await stored_counts(intake)
    replay = await post_report(intake, body, [("p.jpg", photo, "image/jpeg")])
    assert replay.status_code == 202 and replay.json() == created
    assert await stored_counts(intake) == before
    # Two outbox rows: one to verification, one to the bridge.
    assert before["outbox"] == 2


async def test_token_is_stored_only_as_a_salted_hash(intake: Any) -> None:
    import base64

    body = report_json()
    key = "client-retry-key-7d2e91"
    created = (await post_report(intake, body, key=key)).json()
    token = created["access_token"]
    assert len(base64.urlsafe_b64decode(token + "=")) == 32  # 256 bits
    async with intake.runtime.db.sessions() as session:
        report = (await session.execute(select(Report))).scalars().one()
        records = (await session.execute(select(idempotency_keys))).mappings().all()
        outbox_payloads = (await session.execute(select(messaging.outbox.c.payload))).scalars().all()
    assert len(report.token_salt) == 32 and len(report.token_hash) == 64
    everything_stored = [report.token_hash, report.token_salt, *outbox_payloads, *(str(dict(r)) for r in records)]
    assert records and not any(token in text for text in everything_stored)
    assert not any(key in text for text in everything_stored)  # the key that could unseal it: only a hash
    # A retry whose first answer was lost is shown the same token again, and it opens the report.
    replay = (await post_report(intake, body, key=key)).json()
    assert replay["access_token"] == token and replay["id"] == created["id"]
    view = await intake.client.get(created["status_url"], headers={"Authorization": f"Bearer {token}"})
    assert view.status_code == 200
    # A second report gets an unrelated token.
    other = (await post_report(intake, report_json(description="Iets anders"), key="another-key-0001")).json()
    assert other["access_token"] != token


async def test_idempotency_records_are_purged_after_a_day(intake: Any) -> None:
    from datetime import timedelta

    from sqlalchemy import update

    from burgermelding_shared.idempotency import purge_expired
    from burgermelding_shared.timeutil import utcnow

    await post_report(intake, report_json(), key="old-key-000001")
    await post_report(intake, report_json(description="Recent"), key="new-key-000001")
    async with intake.runtime.db.transaction() as session:
        first = (
            (await session.execute(select(idempotency_keys.c.key).order_by(idempotency_keys.c.created_at)))
            .scalars()
            .first()
        )
        await session.execute(
            update(idempotency_keys)
            .where(idempotency_keys.c.key == first)
            .values(created_at=utcnow() - timedelta(hours=25))
        )
    assert await purge_expired(intake.runtime.db, idempotency_keys) == 1
    async with intake.runtime.db.sessions() as session:
        assert len((await session.execute(select(idempotency_keys.c.key))).all()) == 1


async def test_display_copy_has_no_metadata_and_original_is_kept_byte_for_byte(intake: Any) -> None:
    from tests.helpers import gps_tags

    photo = make_jpeg(1200, 800, exif={0x0110: "Pixel 8", 0x0112: 6}, gps=gps_tags(52.09, 5.12))
    response = await post_report(intake, report_json(), [("p.jpg", photo, "image/jpeg")])
    assert response.status_code == 202
    async with intake.runtime.db.sessions() as session:
        stored = (await session.execute(select(Photo))).scalars().one()
    assert intake.runtime.blobs.read_verified(stored.sha256) == photo
    display = Image.open(io.BytesIO(intake.runtime.blobs.read_verified(stored.sanitised_sha256)))
    assert not display.getexif()
    assert display.size == (800, 1200)  # orientation 6 (rotate 90) applied


async def test_wrong_or_other_token_gets_the_same_404(intake: Any) -> None:
    first = (await post_report(intake, report_json(), key="key-first-01")).json()
    second = (await post_report(intake, report_json(description="another"), key="key-second-1")).json()
    answers = []
    for report_id, token in [
        (first["id"], second["access_token"]),
        (first["id"], "wrong"),
        (first["id"], None),
        ("does-not-exist", first["access_token"]),
    ]:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        response = await intake.client.get(f"/v1/reports/{report_id}", headers=headers)
        answers.append((response.status_code, response.json()))
    # The very same answer, whatever was wrong: nothing tells a prober whether the report exists.
    assert answers[0][0] == 404 and answers[0][1]["error"] == "report_not_found"
    assert all(a == answers[0] for a in answers)


def png_bytes(size: tuple[int, int] = (64, 64)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, (1, 2, 3)).save(buffer, "PNG")
    return buffer.getvalue()


BAD_INPUTS = [
    ("malformed json", "{not json", None, 400, "malformed_json"),
    ("json array", "[1, 2]", None, 400, "malformed_json"),
    ("missing report part", None, None, 422, "report_part_missing"),
    ("unknown category", report_json(category="alien-landing"), None, 422, "unknown_category"),
    ("unknown field", report_json(extra_field=1), None, 422, "invalid_report"),
    (
        "outside service area",
        report_json(location={"lat": 48.85, "lon": 2.35}),
        None,
        422,
        "location_outside_service_area",
    ),
    ("future observation", report_json(observed_at="2099-01-01T00:00:00Z"), None, 422, "observed_at_in_future"),
    (
        "not an image",
        report_json(),
        [("p.jpg", b"MZ\x90\x00 this is an executable", "image/jpeg")],
        415,
        "photo_type_not_accepted",
    ),
    ("zero-byte file", report_json(), [("p.jpg", b"", "image/jpeg")], 422, "photo_empty"),
    ("truncated jpeg", report_json(), [("p.jpg", make_jpeg()[:2000], "image/jpeg")], 422, "photo_unreadable"),
    ("html text", report_json(description="<script>alert(1)</script>'; DROP TABLE reports; --"), None, 202, None),
]


@pytest.mark.parametrize(("label", "body", "photos", "status", "error"), BAD_INPUTS, ids=[b[0] for b in BAD_INPUTS])
async def test_bad_input_is_refused_and_nothing_half_stored_remains(
    intake: Any,
    label: str,
    body: Any,
    photos: Any,
    status: int,
    error: str | None,
) -> None:
    response = await post_report(intake, body, photos, headers={"Accept-Language": "nl"})
    assert response.status_code == status, response.text
    if error:
        problem = response.json()
        # RFC 9457 problem details, with our code and the Dutch text as extension members.
        assert response.headers["content-type"] == "application/problem+json"
        assert problem["error"] == error and problem["type"].endswith(f":problem:{error}")
        assert problem["status"] == status and problem["title"]
        assert problem["detail"] == problem["detail_nl"]  # Dutch, as asked
        assert response.headers["content-language"] == "nl"
        counts = await stored_counts(intake)
        assert counts == {"reports": 0, "photos": 0, "timeline": 0, "outbox": 0, "keys": 0, "blobs": 0, "uploads": 0}, (
            label
        )
    else:  # text that looks like SQL or HTML is just text: stored as given, never interpreted
        created = response.json()
        view = await intake.client.get(
            created["status_url"], headers={"Authorization": f"Bearer {created['access_token']}"}
        )
        assert view.status_code == 200
    assert (await intake.client.get("/healthz")).status_code == 200


async def test_png_named_jpg_is_taken_for_what_it_is(intake: Any) -> None:
    response = await post_report(intake, report_json(), [("photo.jpg", png_bytes(), "image/jpeg")])
    assert response.status_code == 202
    async with intake.runtime.db.sessions() as session:
        assert (await session.execute(select(Photo.content_type))).scalar_one() == "image/png"


async def test_idempotency_key_missing_reused_and_in_progress(intake: Any) -> None:
    missing = await post_report(intake, report_json(), key=None)
    assert (missing.status_code, missing.json()["error"]) == (400, "idempotency_key_missing")
    first = await post_report(intake, report_json(description="first"), key="reused-key-1")
    assert first.status_code == 202
    reused = await post_report(intake, report_json(description="different"), key="reused-key-1")
    assert (reused.status_code, reused.json()["error"]) == (422, "idempotency_key_reused")
    bad = await post_report(intake, report_json(), key="../../etc")
    assert (bad.status_code, bad.json()["error"]) == (400, "idempotency_key_invalid")


async def test_a_retry_while_the_first_try_is_still_working_gets_409_then_the_replay(
    intake: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The first try is held between taking its claim and storing the report until the retry has been answered.
    # Not inside its transaction: on SQLite that would hold the write lock, and the retry would be told 503 busy
    # instead, as retryable but not what this tests.
    holding, release = asyncio.Event(), asyncio.Event()
    claim = idempotency.claim

    async def slow_claim(*args: Any) -> Any:
        taken = await claim(*args)  # the retry is refused here: the first holds the claim
        if taken is None and not holding.is_set():
            holding.set()
            await release.wait()
        return taken

    monkeypatch.setattr(idempotency, "claim", slow_claim)
    body = report_json(description="nog bezig")
    first = asyncio.create_task(post_report(intake, body, key="in-progress-key-1"))
    await asyncio.wait_for(holding.wait(), 10)
    retry = await post_report(intake, body, key="in-progress-key-1")
    assert (retry.status_code, retry.json()["error"]) == (409, "request_in_progress")
    assert retry.headers["retry-after"] == "1"
    release.set()
    answered = await first
    assert answered.status_code == 202
    again = await post_report(intake, body, key="in-progress-key-1")
    assert again.status_code == 202 and again.json()["id"] == answered.json()["id"]
    assert (await stored_counts(intake))["reports"] == 1


async def test_a_photo_over_the_limit_is_cut_off(start_service: Callable[..., Any]) -> None:
    intake = await start_service("report_intake", IntakeSettings, max_photo_bytes=200_000)
    big = make_jpeg() + os.urandom(400_000)  # the cut-off happens while streaming, before any decoding
    response = await post_report(intake, report_json(), [("big.jpg", big, "image/jpeg")])
    assert (response.status_code, response.json()["error"]) == (413, "upload_too_large")
    assert (await stored_counts(intake))["uploads"] == 0


async def test_report_events_need_a_service_credential_and_count_once(intake: Any) -> None:
    created = (await post_report(intake, report_json())).json()
    event = {
        "report_id": created["id"],
        "event": "forwarded",
        "occurred_at": "2026-11-22T10:00:00Z",
        "text_en": "sent",
        "text_nl": "verstuurd",
    }
    anonymous = await intake.client.post("/internal/v1/report-events", json=event, headers={"Idempotency-Key": "m-1"})
    assert anonymous.status_code == 401
    wrong_caller = development_key("verification").issue("report-intake")
    refused = await intake.client.post(
        "/internal/v1/report-events",
        json=event,
        headers={"Idempotency-Key": "m-1", "Authorization": f"Bearer {wrong_caller}"},
    )
    assert refused.status_code == 403
    token = development_key("dispatch-bridge").issue("report-intake")
    headers = {"Idempotency-Key": "m-1", "Authorization": f"Bearer {token}"}
    assert (await intake.client.post("/internal/v1/report-events", json=event, headers=headers)).json() == {
        "status": "applied"
    }
    assert (await intake.client.post("/internal/v1/report-events", json=event, headers=headers)).json() == {
        "status": "duplicate"
    }
    older = {**event, "event": "received"}
    await intake.client.post("/internal/v1/report-events", json=older, headers={**headers, "Idempotency-Key": "m-2"})
    view = (
        await intake.client.get(created["status_url"], headers={"Authorization": f"Bearer {created['access_token']}"})
    ).json()
    assert view["status"] == "forwarded"  # a late, older event never moves the status back
    assert [e["event"] for e in view["timeline"]].count("forwarded") == 1
