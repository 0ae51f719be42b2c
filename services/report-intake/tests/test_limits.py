"""Limits that hold under concurrency (issue 29): a burst sent in parallel by one client gets exactly its limit
through, on every route a limit guards; a request that fails, or replays one already answered, costs nothing."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import func, select

from burgermelding_shared import idempotency
from burgermelding_shared.burgernet import Area, PublishedAction
from burgermelding_shared.service_auth import development_key
from report_intake.config import IntakeSettings
from report_intake.models import Installation
from tests.helpers import make_jpeg, redeeming, report_json
from tests.intake_support import post_report, register_installation, stored_counts

BITS = 8
CGNAT = "203.0.113.7"
LIMIT = 10
BURST = 30


@pytest.fixture(params=["memory", "redis"])
async def intake(request: pytest.FixtureRequest, start_service: Callable[..., Any]) -> Any:
    """Intake with its limits in this process's memory, or in Redis (as replicas share them)."""
    shared: dict[str, Any] = {}
    if request.param == "redis":
        url, prefix = request.getfixturevalue("redis_url")
        shared = {"redis_url": url, "redis_key_prefix": prefix}
    return await start_service(
        "report_intake",
        IntakeSettings,
        installation_pow_bits=BITS,
        trusted_proxies=["127.0.0.1"],
        reports_per_client=LIMIT,
        reports_per_seconds=3600,
        installations_per_address=LIMIT,
        wrong_tokens_per_report=LIMIT,
        **shared,
    )


def from_phone(credential: str | None = None) -> dict[str, str]:
    return {"X-Forwarded-For": CGNAT, **({"Installation-Credential": credential} if credential else {})}


def refused_as_429(responses: list[Any]) -> None:
    """Every refusal is the one 429 problem: machine-readable, in both languages, with when to come back."""
    for response in responses:
        body = response.json()
        if isinstance(body, list):  # Open311's error shape: the same refusal
            body = {
                "error": body[0]["reason"],
                "status": body[0]["code"],
                "detail": body[0]["description"],
                "detail_nl": body[0]["description_nl"],
            }
        assert body["error"] == "rate_limited" and body["status"] == 429, response.text
        assert body["detail"] and body["detail_nl"] and int(response.headers["Retry-After"]) > 0


def split(responses: list[Any], accepted: int) -> tuple[list[Any], list[Any]]:
    return ([r for r in responses if r.status_code == accepted], [r for r in responses if r.status_code != accepted])


async def test_a_parallel_burst_from_one_installation_gets_exactly_its_limit(intake: Any) -> None:
    credential = await register_installation(intake, CGNAT)
    photo = [("p.jpg", make_jpeg(width=320, height=240), "image/jpeg")]
    answers = await asyncio.gather(
        *(
            post_report(
                intake,
                report_json(description=f"burst {n}"),
                photo,
                key=f"burst-{n:05d}",
                headers=from_phone(credential),
            )
            for n in range(BURST)
        )
    )
    accepted, refused = split(answers, 202)
    assert len(accepted) == LIMIT and len(refused) == BURST - LIMIT
    refused_as_429(refused)
    counts = await stored_counts(intake)
    assert counts["reports"] == LIMIT and counts["keys"] == LIMIT and counts["uploads"] == 0
    # Another installation behind the same address is not affected.
    other = await register_installation(intake, CGNAT)
    assert (await post_report(intake, report_json(), key="other-phone", headers=from_phone(other))).status_code == 202


async def test_a_parallel_burst_is_refused_before_its_uploads_are_read(intake: Any) -> None:
    credential = await register_installation(intake, CGNAT)
    uploads_may_finish = asyncio.Event()
    photo = make_jpeg(width=320, height=240)

    async def upload(n: int) -> Any:
        async def body() -> Any:
            yield (
                f'--b\r\nContent-Disposition: form-data; name="report"\r\n\r\n'
                f"{json.dumps(report_json(description=f'slow {n}'))}\r\n--b\r\nContent-Disposition: "
                f'form-data; name="photos"; filename="p.jpg"\r\nContent-Type: image/jpeg\r\n\r\n'
            ).encode()
            await uploads_may_finish.wait()  # a phone on a slow network, still sending its photo
            yield photo + b"\r\n--b--\r\n"

        return await intake.client.post(
            "/v1/reports",
            content=body(),
            headers={
                "Idempotency-Key": f"slow-{n:05d}",
                "Content-Type": "multipart/form-data; boundary=b",
                **from_phone(credential),
            },
        )

    sent = [asyncio.create_task(upload(n)) for n in range(BURST)]
    for _ in range(600):  # bounded wait: the refusals need none of the uploads
        if sum(task.done() for task in sent) >= BURST - LIMIT:
            break
        await asyncio.sleep(0.05)
    answered = [task.result() for task in sent if task.done()]
    assert len(answered) == BURST - LIMIT and {r.status_code for r in answered} == {429}
    refused_as_429(answered)
    uploads_may_finish.set()
    accepted = [r for r in await asyncio.gather(*sent) if r.status_code == 202]
    assert len(accepted) == LIMIT and (await stored_counts(intake))["reports"] == LIMIT


async def test_a_failed_request_gives_its_count_back(intake: Any) -> None:
    credential = await register_installation(intake, CGNAT)
    failures = [
        await post_report(
            intake,
            report_json(),
            [("p.jpg", b"not a photo at all", "image/jpeg")],
            key=f"bad-photo-{n:04d}",
            headers=from_phone(credential),
        )
        for n in range(LIMIT)
    ]
    failures += [
        await post_report(
            intake, report_json(category="no-such-category"), key=f"bad-cat-{n:04d}", headers=from_phone(credential)
        )
        for n in range(LIMIT)
    ]
    assert {r.status_code for r in failures} == {415, 422}
    # Twice its limit in refused requests, and its whole limit still left, in parallel too.
    answers = await asyncio.gather(
        *(
            post_report(
                intake, report_json(description=f"after {n}"), key=f"after-{n:04d}", headers=from_phone(credential)
            )
            for n in range(LIMIT + 5)
        )
    )
    accepted, refused = split(answers, 202)
    assert len(accepted) == LIMIT
    refused_as_429(refused)


async def test_a_replay_costs_nothing_even_when_it_races_the_first_answer(
    intake: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    credential = await register_installation(intake, CGNAT)
    body = report_json(description="dezelfde melding")
    first = await post_report(intake, body, key="replayed-0001", headers=from_phone(credential))
    assert first.status_code == 202
    # Replays seen as such before their upload is read...
    replays = [
        await post_report(intake, body, key="replayed-0001", headers=from_phone(credential)) for _ in range(LIMIT)
    ]

    # ...and replays that were counted because the first answer was stored only after they looked (the race
    # between the check for an answer and the claim of the key): given back.
    async def not_answered_yet(*_args: Any) -> bool:
        return False

    monkeypatch.setattr(idempotency, "answered", not_answered_yet)
    replays += await asyncio.gather(
        *(post_report(intake, body, key="replayed-0001", headers=from_phone(credential)) for _ in range(5))
    )
    assert {r.status_code for r in replays} == {202} and {r.json()["id"] for r in replays} == {first.json()["id"]}
    answers = await asyncio.gather(
        *(
            post_report(intake, report_json(description=f"new {n}"), key=f"new-{n:04d}", headers=from_phone(credential))
            for n in range(LIMIT)
        )
    )
    assert [r.status_code for r in answers].count(202) == LIMIT - 1  # the first report, and nine more
    assert (await stored_counts(intake))["reports"] == LIMIT


async def test_a_parallel_burst_without_a_credential_gets_exactly_the_address_limit(intake: Any) -> None:
    answers = await asyncio.gather(
        *(
            post_report(intake, report_json(description=f"old app {n}"), key=f"old-app-{n:04d}", headers=from_phone())
            for n in range(BURST)
        )
    )
    accepted, refused = split(answers, 202)
    assert len(accepted) == LIMIT
    refused_as_429(refused)
    form = {"service_code": "burglary", "lat": "52.0907", "long": "5.1214"}
    open311 = await asyncio.gather(
        *(
            intake.client.post(
                "/open311/v2/requests.json",
                data={**form, "description": f"open311 {n}"},
                headers={"X-Forwarded-For": "198.51.100.20"},
            )
            for n in range(BURST)
        )
    )
    created, refused = split(open311, 201)
    assert len(created) == LIMIT
    refused_as_429(refused)
    # An Open311 client's retry of a request it already made (same content, no key) replays it, for nothing.
    again = await intake.client.post(
        "/open311/v2/requests.json",
        data={**form, "description": "open311 0"},
        headers={"X-Forwarded-For": "198.51.100.30"},
    )
    retry = await intake.client.post(
        "/open311/v2/requests.json",
        data={**form, "description": "open311 0"},
        headers={"X-Forwarded-For": "198.51.100.30"},
    )
    assert again.status_code == retry.status_code == 201
    assert again.json()[0]["service_request_id"] == retry.json()[0]["service_request_id"]
    more = [
        await intake.client.post(
            "/open311/v2/requests.json",
            data={**form, "description": f"later {n}"},
            headers={"X-Forwarded-For": "198.51.100.30"},
        )
        for n in range(LIMIT)
    ]
    assert [r.status_code for r in more].count(201) == LIMIT - 1


async def test_parallel_answers_to_a_burgernet_action_get_exactly_the_limit(intake: Any) -> None:
    now = datetime.now(UTC)
    action = PublishedAction(
        action_id=str(uuid.uuid4()),
        reference="BN-2026-000001",
        version=1,
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
    )
    token = development_key("dispatch-bridge").issue("report-intake")
    published = await intake.client.post(
        "/internal/v1/burgernet/actions",
        json=action.model_dump(mode="json"),
        headers={"Authorization": f"Bearer {token}", "Idempotency-Key": "publish-1"},
    )
    assert published.status_code == 200, published.text
    credential = await register_installation(intake, CGNAT)
    sighting = {
        "description": "Witte bus reed naar het station",
        "location": {"lat": 52.09, "lon": 5.12},
        "seen_at": now.isoformat(),
    }
    answers = await asyncio.gather(
        *(
            intake.client.post(
                f"/v1/burgernet/actions/{action.action_id}/sightings",
                files=[("sighting", (None, json.dumps(sighting), "application/json"))],
                headers={"Idempotency-Key": f"sighting-{n:04d}", **from_phone(credential)},
            )
            for n in range(BURST)
        )
    )
    accepted, refused = split(answers, 202)
    assert len(accepted) == LIMIT
    refused_as_429(refused)


async def redeem(intake: Any, _n: int) -> Any:
    challenge = (await intake.client.post("/v1/installations/challenges", headers=from_phone())).json()
    return await intake.client.post("/v1/installations", headers=from_phone(), json=redeeming(challenge))


async def test_parallel_registrations_from_one_address_get_exactly_the_limit(intake: Any) -> None:
    answers = await asyncio.gather(*(redeem(intake, n) for n in range(BURST)))
    created, refused = split(answers, 201)
    assert len(created) == LIMIT
    refused_as_429(refused)
    assert all("registraties" in r.json()["detail_nl"] for r in refused)
    async with intake.runtime.db.sessions() as session:
        assert (await session.execute(select(func.count()).select_from(Installation))).scalar_one() == LIMIT


async def test_parallel_guesses_at_a_token_get_exactly_the_limit_and_the_right_token_costs_nothing(intake: Any) -> None:
    created = (await post_report(intake, report_json())).json()
    owner = {"Authorization": f"Bearer {created['access_token']}"}
    # The right token holds its count only while it is checked: reading costs the owner nothing.
    reads = [await intake.client.get(created["status_url"], headers=owner) for _ in range(BURST)]
    assert {r.status_code for r in reads} == {200}
    guesses = await asyncio.gather(
        *(
            intake.client.get(created["status_url"], headers={"Authorization": f"Bearer guess-{n}"})
            for n in range(BURST)
        )
    )
    wrong, refused = split(guesses, 404)
    assert len(wrong) == LIMIT
    refused_as_429(refused)
    assert "toegangscode" in refused[0].json()["detail_nl"]
