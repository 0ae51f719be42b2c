"""Anonymous installation credentials: registration by proof of work, limits per installation, and every way a
credential or a proof can be wrong. Each refusal has its own machine-readable error and stores nothing."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from collections import Counter
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import func, select

from burgermelding_shared.sharedstate import SharedState
from burgermelding_shared.witnesses import independent_witnesses
from report_intake.config import IntakeSettings
from report_intake.installations import credentials, registration
from report_intake.installations.registration import solve
from report_intake.installations.senders import Sender
from report_intake.limits import IntakeLimits
from report_intake.models import Installation, Report, SpentChallenge, messaging
from tests.helpers import make_jpeg, report_json
from tests.intake_support import post_report, register_installation, stored_counts

BITS = 8  # a real proof of work, small enough for a test suite (the default is 20)
CGNAT = "203.0.113.7"  # one public address for a whole mobile network's phones


@pytest.fixture
async def intake(start_service: Callable[..., Any]) -> Any:
    return await start_service(
        "report_intake",
        IntakeSettings,
        installation_pow_bits=BITS,
        trusted_proxies=["127.0.0.1"],
        installations_per_address=200,
    )


def from_phone(credential: str | None = None, address: str = CGNAT) -> dict[str, str]:
    return {"X-Forwarded-For": address, **({"Installation-Credential": credential} if credential else {})}


async def count(intake: Any, table: Any) -> int:
    async with intake.runtime.db.sessions() as session:
        return (await session.execute(select(func.count()).select_from(table))).scalar_one()


async def challenge(intake: Any) -> dict[str, Any]:
    response = await intake.client.post("/v1/installations/challenges", headers=from_phone())
    assert response.status_code == 201, response.text
    return response.json()


async def redeem(intake: Any, value: str, solution: str) -> Any:
    return await intake.client.post(
        "/v1/installations", headers=from_phone(), json={"challenge": value, "solution": solution}
    )


def wrong_solution(value: str, bits: int) -> str:
    counter = 0
    while registration.solves(value, str(counter), bits):
        counter += 1
    return str(counter)


async def test_an_app_registers_once_and_its_reports_count_against_the_installation(intake: Any) -> None:
    issued = await challenge(intake)
    assert issued["difficulty_bits"] == BITS and issued["algorithm"] == "sha256-leading-zero-bits"
    solution = solve(issued["challenge"], BITS)
    response = await redeem(intake, issued["challenge"], solution)
    assert response.status_code == 201, response.text
    credential = response.json()["credential"]
    assert credential.startswith("bmi1.") and response.json()["header"] == "Installation-Credential"

    created = await post_report(intake, report_json(), headers=from_phone(credential))
    assert created.status_code == 202, created.text
    files = [("photos", ("later.jpg", make_jpeg(pattern=9), "image/jpeg"))]
    added = await intake.client.post(
        f"{created.json()['status_url']}/photos",
        files=files,
        headers={
            "Authorization": f"Bearer {created.json()['access_token']}",
            "Idempotency-Key": "later-photo-1",
            **from_phone(credential),
        },
    )
    assert added.status_code == 202, added.text
    # Verification (flood checks) and the bridge (counting witnesses) both get the installation's pseudonym,
    # with the report and with its later revision alike.
    sent = [json.loads(r["payload"]) for r in await outbox_rows(intake)]
    assert len(sent) == 4 and {(m["submitter_kind"], m["submitter_tag"]) for m in sent} == {
        ("installation", sent[0]["submitter_tag"])
    }
    assert sent[0]["submitter_tag"] and installation_id_of(credential) not in sent[0]["submitter_tag"]
    # What is stored identifies nobody: a random id, a hash of the secret, a day; the report only an HMAC.
    async with intake.runtime.db.sessions() as session:
        stored = (await session.execute(select(Installation))).scalars().one()
        report = (await session.execute(select(Report))).scalars().one()
    secret = credential.split(".")[2]
    assert secret not in stored.secret_hash and len(stored.created_on) == 10
    assert report.installation_binding and stored.id not in report.installation_binding
    assert CGNAT not in json.dumps([str(v) for v in vars(stored).values()] + [str(v) for v in vars(report).values()])


def installation_id_of(credential: str) -> str:
    return credential.split(".")[1]


async def test_an_installations_pseudonym_is_the_same_on_every_replica_and_after_a_restart() -> None:
    settings = IntakeSettings()
    one, other = (IntakeLimits.from_settings(settings, SharedState()) for _ in range(2))
    phone = Sender("203.0.113.7", "5f0c2a9e7b1d4c3a8e6f0b2d9c7a1e3f")
    assert await one.submitter(phone) == await other.submitter(phone)
    assert (await one.submitter(phone)).tag != (await one.submitter(Sender("203.0.113.7", "0" * 32))).tag
    # Without shared state an address's pseudonym is keyed by a salt that lives in one process only: never
    # comparable elsewhere (with Redis, replicas share the salt of the day: test_ratelimit.py).
    assert (await one.submitter(Sender("203.0.113.7"))).tag != (await other.submitter(Sender("203.0.113.7"))).tag


async def outbox_rows(intake: Any) -> list[Any]:
    async with intake.runtime.db.sessions() as session:
        return list((await session.execute(select(messaging.outbox))).mappings().all())


async def test_a_wrong_proof_of_work_is_refused_and_stores_nothing(intake: Any) -> None:
    issued = await challenge(intake)
    response = await redeem(intake, issued["challenge"], wrong_solution(issued["challenge"], BITS))
    assert response.status_code == 422 and response.json()["error"] == "proof_of_work_invalid"
    assert await count(intake, Installation) == 0 and await count(intake, SpentChallenge) == 0
    odd = await redeem(intake, issued["challenge"], "not a number; DROP TABLE")
    assert odd.status_code == 422 and odd.json()["error"] == "proof_of_work_invalid"


async def test_a_replayed_proof_of_work_is_refused(intake: Any) -> None:
    issued = await challenge(intake)
    solution = solve(issued["challenge"], BITS)
    assert (await redeem(intake, issued["challenge"], solution)).status_code == 201
    again = await redeem(intake, issued["challenge"], solution)
    assert again.status_code == 409 and again.json()["error"] == "proof_of_work_replayed"
    assert await count(intake, Installation) == 1


async def test_a_forged_or_expired_challenge_is_refused(intake: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    issued = (await challenge(intake))["challenge"]
    easier = issued.replace(f"c1.{BITS}.", "c1.0.", 1)  # claim a difficulty of zero bits
    forged = await redeem(intake, easier, "0")
    assert forged.status_code == 422 and forged.json()["error"] == "challenge_invalid"
    made_up = await redeem(intake, "c1.0.9999999999.abc.def", "0")
    assert made_up.json()["error"] == "challenge_invalid"
    later = credentials.utcnow() + registration.CHALLENGE_TTL + timedelta(seconds=5)
    for module in (registration, credentials):  # both read the clock
        monkeypatch.setattr(module, "utcnow", lambda: later)
    expired = await redeem(intake, issued, solve(issued, BITS))
    assert expired.status_code == 422 and expired.json()["error"] == "challenge_expired"
    assert await count(intake, Installation) == 0


async def test_a_forged_malformed_or_revoked_credential_is_refused_and_stores_nothing(intake: Any) -> None:
    credential = await register_installation(intake, CGNAT)
    prefix, installation_id, secret = credential.split(".")
    forged = f"{prefix}.{installation_id}.{secret[::-1]}"
    unknown = f"{prefix}.{'0' * 32}.{secret}"
    for bad in (forged, unknown, "bmi1.x.y", "Bearer " + credential, "x" * 5000):
        response = await post_report(intake, report_json(), headers=from_phone(bad))
        assert response.status_code == 401, (bad[:20], response.text)
        assert response.json()["error"] == "installation_credential_invalid" and response.json()["detail"]
    nothing = await stored_counts(intake)
    assert nothing["reports"] == 0 and nothing["outbox"] == 0 and nothing["keys"] == 0

    revoked = await intake.client.delete("/v1/installations/current", headers=from_phone(credential))
    assert revoked.status_code == 204
    after = await post_report(intake, report_json(), headers=from_phone(credential))
    assert after.status_code == 401 and after.json()["error"] == "installation_revoked"
    missing = await intake.client.delete("/v1/installations/current", headers=from_phone())
    assert missing.status_code == 401 and missing.json()["error"] == "installation_credential_required"
    assert (await stored_counts(intake))["reports"] == 0


async def test_a_credential_from_another_installation_cannot_touch_the_report(intake: Any) -> None:
    mine, theirs = await register_installation(intake, CGNAT), await register_installation(intake, CGNAT)
    created = (await post_report(intake, report_json(), headers=from_phone(mine))).json()
    token = {"Authorization": f"Bearer {created['access_token']}"}
    url = created["status_url"]
    assert (await intake.client.get(url, headers={**token, **from_phone(mine)})).status_code == 200
    elsewhere = await intake.client.get(url, headers={**token, **from_phone(theirs)})
    assert elsewhere.status_code == 403 and elsewhere.json()["error"] == "installation_mismatch"
    message = {"text": "Hij liep richting het station"}
    stolen = await intake.client.post(
        f"{url}/messages", json=message, headers={**token, **from_phone(theirs), "Idempotency-Key": "msg-000001"}
    )
    assert stolen.status_code == 403 and stolen.json()["error"] == "installation_mismatch"
    without = await intake.client.post(f"{url}/withdraw", headers={**token, **from_phone()})
    assert without.status_code == 401 and without.json()["error"] == "installation_credential_required"
    sent = await intake.client.post(
        f"{url}/messages", json=message, headers={**token, **from_phone(mine), "Idempotency-Key": "msg-000002"}
    )
    assert sent.status_code == 201, sent.text
    # A wrong token with the right credential is still the one 404.
    wrong = await intake.client.get(url, headers={"Authorization": "Bearer nope", **from_phone(mine)})
    assert wrong.status_code == 404


async def test_witnesses_behind_one_address_each_get_their_own_limit(intake: Any) -> None:
    limit = intake.settings.reports_per_client
    phones = [await register_installation(intake, CGNAT) for _ in range(3 * limit)]
    for n, credential in enumerate(phones):  # three times the per-address limit, from one address
        response = await post_report(intake, report_json(), key=f"witness-{n:05d}", headers=from_phone(credential))
        assert response.status_code == 202, (n, response.text)
    flooder = phones[0]
    refused = 0
    for n in range(limit):
        response = await post_report(intake, report_json(), key=f"flood-{n:05d}", headers=from_phone(flooder))
        refused += response.status_code == 429
        if response.status_code == 429:
            assert response.json()["error"] == "rate_limited" and response.headers["Retry-After"]
    assert refused == 1  # its own burst is used up after `limit` reports...
    honest = await post_report(intake, report_json(), key="honest-after-flood", headers=from_phone(phones[1]))
    assert honest.status_code == 202  # ...while the witness beside it keeps getting through


async def test_a_client_without_a_credential_keeps_the_per_address_limit(intake: Any) -> None:
    limit = intake.settings.reports_per_client
    answers = [
        (await post_report(intake, report_json(), key=f"old-app-{n:05d}", headers=from_phone())).status_code
        for n in range(limit + 1)
    ]
    assert answers[:limit] == [202] * limit and answers[limit] == 429
    other_address = await post_report(
        intake, report_json(), key="old-app-elsewhere", headers=from_phone(address="198.51.100.20")
    )
    assert other_address.status_code == 202


async def test_registrations_are_limited_per_address_and_junk_does_not_count(start_service: Callable[..., Any]) -> None:
    intake = await start_service(
        "report_intake",
        IntakeSettings,
        installation_pow_bits=BITS,
        trusted_proxies=["127.0.0.1"],
        installations_per_address=3,
    )
    for _ in range(10):  # junk proofs cost nothing and must not use up the address's registrations
        issued = await challenge(intake)
        await redeem(intake, issued["challenge"], wrong_solution(issued["challenge"], BITS))
    issued = await challenge(intake)
    solution = solve(issued["challenge"], BITS)
    assert (await redeem(intake, issued["challenge"], solution)).status_code == 201
    for _ in range(10):  # nor do replays of one solved challenge
        assert (await redeem(intake, issued["challenge"], solution)).status_code == 409
    for _ in range(2):
        await register_installation(intake, CGNAT)
    issued = await challenge(intake)
    refused = await redeem(intake, issued["challenge"], solve(issued["challenge"], BITS))
    assert refused.status_code == 429 and refused.json()["error"] == "rate_limited"
    assert await count(intake, Installation) == 3


async def test_an_operator_revokes_the_installation_behind_an_abusive_report(intake: Any) -> None:
    abuser, bystander = await register_installation(intake, CGNAT), await register_installation(intake, CGNAT)
    created = (await post_report(intake, report_json(), headers=from_phone(abuser))).json()
    env = {
        **os.environ,
        "BM_INTAKE_DATABASE_URL": intake.settings.database_url,
        "BM_INTAKE_TOKEN_SECRET": intake.settings.token_secret,
    }
    result = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "report_intake", "revoke-installation", "--report", created["reference"]],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    refused = await post_report(intake, report_json(), key="after-revoke", headers=from_phone(abuser))
    assert refused.status_code == 401 and refused.json()["error"] == "installation_revoked"
    still = await post_report(intake, report_json(), key="bystander-1", headers=from_phone(bystander))
    assert still.status_code == 202


async def sent_messages(intake: Any, destination: str = "verification") -> list[dict[str, Any]]:
    return [json.loads(r["payload"]) for r in await outbox_rows(intake) if r["destination"] == destination]


async def test_installations_new_from_one_address_are_one_independent_source(intake: Any) -> None:
    from tests.helpers import heic_photo, phone_photo

    fresh = [await register_installation(intake, CGNAT) for _ in range(10)]
    elsewhere = await register_installation(intake, "198.51.100.20")
    for n, credential in enumerate(fresh):
        # One of them with an iPhone photo, whose display copy (and so its messages) comes after the 202.
        photos = (
            [("p.heic", heic_photo(phone_photo(n, 52.0907, 5.1214), 52.0907, 5.1214), "image/heic")] if n == 0 else None
        )
        response = await post_report(
            intake, report_json(), photos, key=f"fresh-{n:04d}", headers=from_phone(credential)
        )
        assert response.status_code == 202, response.text  # still accepted, every one
    assert (
        await post_report(intake, report_json(), key="elsewhere-1", headers=from_phone(elsewhere, "198.51.100.20"))
    ).status_code == 202
    for _ in range(200):  # bounded wait for the display copy, after which its report's messages go out
        if len(await sent_messages(intake)) == 11:
            break
        await asyncio.sleep(0.05)
    sent = await sent_messages(intake)
    by_source = Counter(m["independent_source"] for m in sent)
    assert sorted(by_source.values()) == [1, 10] and None not in by_source
    source = next(s for s, n in by_source.items() if n == 10)  # one source: the address they registered from...
    assert len({m["submitter_tag"] for m in sent if m["independent_source"] == source}) == 10  # ...ten senders
    assert CGNAT not in source
    assert Counter(m["independent_source"] for m in await sent_messages(intake, "dispatch-bridge")) == by_source
    # Stored only for the installation's first hour: a keyed pseudonym, never the address.
    async with intake.runtime.db.sessions() as session:
        stored = (await session.execute(select(Installation))).scalars().all()
    assert {i.registered_from for i in stored} == set(by_source)
    assert all(i.new_until is not None and CGNAT not in json.dumps([str(v) for v in vars(i).values()]) for i in stored)


async def test_installations_older_than_an_hour_are_each_their_own_witness(
    intake: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    phones = [await register_installation(intake, CGNAT) for _ in range(5)]
    an_hour_later = credentials.utcnow() + registration.NEW_INSTALLATION + timedelta(seconds=1)
    for module in (registration, credentials):  # both read the clock
        monkeypatch.setattr(module, "utcnow", lambda: an_hour_later)
    for n, credential in enumerate(phones):
        assert (
            await post_report(intake, report_json(), key=f"older-{n:04d}", headers=from_phone(credential))
        ).status_code == 202
    sent = await sent_messages(intake)
    assert len(sent) == 5 and {m["independent_source"] for m in sent} == {None}
    # And the address they registered from is forgotten once the hour is over.
    await registration.RegistrationPurger(intake.runtime.db).run_once()
    async with intake.runtime.db.sessions() as session:
        stored = (await session.execute(select(Installation))).scalars().all()
    assert [(i.registered_from, i.new_until) for i in stored] == [(None, None)] * 5


async def test_installations_new_from_one_ipv6_network_are_one_source(intake: Any) -> None:
    # Each address of a /64 is the same subscriber: fresh credentials from many of them are still one witness.
    for n in range(1, 4):
        credential = await register_installation(intake, f"2001:db8:1:2::{n:x}")
        assert (
            await post_report(
                intake, report_json(), key=f"ipv6-{n:04d}", headers=from_phone(credential, f"2001:db8:1:2::{n:x}")
            )
        ).status_code == 202
    assert len({m["independent_source"] for m in await sent_messages(intake)} - {None}) == 1


async def test_a_report_keeps_the_source_it_was_made_with_when_photos_come_after_the_hour(
    intake: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Issue 29 (review): adding photos recomputed the source from the sender as it is now. Ten installations
    new from one address report within the hour (one witness); after the hour each adds a photo, and the
    revisions went without the source: ten witnesses at the bridge, which counts from the latest revision. A
    report keeps the source it was made with, in every later message: photos added, display copies made."""
    from tests.helpers import heic_photo, phone_photo

    fresh = [await register_installation(intake, CGNAT) for _ in range(10)]
    made = []
    for n, credential in enumerate(fresh):
        response = await post_report(
            intake, report_json(in_progress=n == 1), key=f"within-{n:04d}", headers=from_phone(credential)
        )
        assert response.status_code == 202, response.text
        made.append(response.json())
    first = await sent_messages(intake)
    assert len(first) == 10 and len({m["independent_source"] for m in first}) == 1
    source = first[0]["independent_source"]
    assert source is not None
    an_hour_later = credentials.utcnow() + registration.NEW_INSTALLATION + timedelta(minutes=1)
    for module in (registration, credentials):  # both read the clock
        monkeypatch.setattr(module, "utcnow", lambda: an_hour_later)
    await registration.RegistrationPurger(intake.runtime.db).run_once()  # the installations forget the address
    for n, (credential, created) in enumerate(zip(fresh, made, strict=True)):
        # Two with an iPhone photo (one urgent), whose messages the display job sends after the 202.
        photo = (
            ("p.heic", heic_photo(phone_photo(n, 52.0907, 5.1214), 52.0907, 5.1214), "image/heic")
            if n < 2
            else ("later.jpg", make_jpeg(pattern=n), "image/jpeg")
        )
        added = await intake.client.post(
            f"{created['status_url']}/photos",
            files=[("photos", photo)],
            headers={
                "Authorization": f"Bearer {created['access_token']}",
                "Idempotency-Key": f"after-{n:04d}",
                **from_phone(credential),
            },
        )
        assert added.status_code == 202, added.text
    for _ in range(200):  # bounded wait for the display copies, after which their revisions go out
        if len(await sent_messages(intake)) == 20:
            break
        await asyncio.sleep(0.05)
    sent, to_bridge = await sent_messages(intake), await sent_messages(intake, "dispatch-bridge")
    assert len(sent) == 20 and len(to_bridge) == 21  # the urgent one went to the bridge before its copy too
    assert {m["independent_source"] for m in sent + to_bridge} == {source}
    latest = {m["report_id"]: m for m in sorted(to_bridge, key=lambda m: m["revision"])}  # what the bridge counts
    assert independent_witnesses((m["submitter_tag"], m["independent_source"]) for m in latest.values()) == 1
    async with intake.runtime.db.sessions() as session:
        assert set((await session.execute(select(Report.independent_source))).scalars()) == {source}
    # A report made now, after the hour, has none: each installation is its own witness again.
    late = await post_report(intake, report_json(), key="after-the-hour", headers=from_phone(fresh[0]))
    assert late.status_code == 202
    assert [m["independent_source"] for m in await sent_messages(intake) if m["report_id"] == late.json()["id"]] == [
        None
    ]
