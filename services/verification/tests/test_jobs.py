"""Jobs through verification's internal API: idempotent per report, verdict and outbox message to the bridge."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy import select

from burgermelding_shared.service_auth import development_key
from tests.helpers import make_jpeg
from tests.verification_support import result, submission, submit
from verification.config import VerificationSettings
from verification.models import messaging


async def test_a_job_is_verified_and_the_result_queued_for_the_bridge(verification: Any) -> None:
    report = submission(verification, [make_jpeg(pattern=1)])
    assert (await submit(verification, report)).json() == {"status": "accepted"}
    outcome = await result(verification, report.report_id)
    assert outcome["verdict"] == "forward" and outcome["photos"][0]["sha256"] == report.photos[0].sha256
    async with verification.runtime.db.sessions() as session:
        rows = (await session.execute(select(messaging.outbox.c.destination, messaging.outbox.c.kind))).all()
    assert rows == [("dispatch-bridge", "verification.completed")]


async def test_submitting_the_same_report_twice_changes_nothing(verification: Any) -> None:
    report = submission(verification, [make_jpeg(pattern=2)])
    assert (await submit(verification, report, "msg-1")).json() == {"status": "accepted"}
    assert (await submit(verification, report, "msg-1")).json() == {"status": "duplicate"}  # same message again
    assert (await submit(verification, report, "msg-2")).json() == {"status": "duplicate"}  # same report again
    await result(verification, report.report_id)


async def test_a_late_revision_cannot_bring_back_what_retention_removed(verification: Any) -> None:
    """Issue #29: a revision sent before a withdrawal and delivered after it makes no new job with the words."""
    import uuid

    from burgermelding_shared.contracts import RetentionApplied
    from burgermelding_shared.timeutil import utcnow
    from verification import records
    from verification.models import VerificationJob

    report = submission(verification, [make_jpeg(pattern=3)])
    assert (await submit(verification, report)).json() == {"status": "accepted"}
    await result(verification, report.report_id)
    order = RetentionApplied(
        report_id=report.report_id, action="anonymise", rule="withdrawn-by-citizen", applied_at=utcnow()
    )
    assert await records.apply_retention(verification.runtime, order, str(uuid.uuid4()), "report-intake") == "applied"
    late = report.model_copy(update={"revision": 1, "description": "woorden die weg moesten"})
    assert (await submit(verification, late, "msg-late")).json() == {"status": "removed"}
    async with verification.runtime.db.sessions() as session:
        jobs = (await session.execute(select(VerificationJob))).scalars().all()
    assert [j.revision for j in jobs] == [0] and all("woorden" not in j.request for j in jobs)


async def test_an_exact_duplicate_photo_sends_the_report_to_review(verification: Any) -> None:
    photo = make_jpeg(pattern=5)
    first = submission(verification, [photo])
    await submit(verification, first)
    await result(verification, first.report_id)
    second = submission(verification, [photo], description="same photo again")
    await submit(verification, second)
    outcome = await result(verification, second.report_id)
    assert outcome["verdict"] == "review"
    assert outcome["duplicate_of_reports"] == [first.report_id]
    assert "exact_duplicate" in {r["code"] for r in outcome["reasons"]}


async def test_a_photo_that_cannot_be_decoded_is_rejected(verification: Any) -> None:
    report = submission(verification, [make_jpeg()[:300]])
    await submit(verification, report)
    outcome = await result(verification, report.report_id)
    assert outcome["verdict"] == "reject" and outcome["score"] == 0


async def test_the_result_is_readable_internally_with_a_credential(verification: Any) -> None:
    report = submission(verification, [])
    await submit(verification, report)
    await result(verification, report.report_id)
    path = f"/internal/v1/verifications/{report.report_id}"
    assert (await verification.client.get(path)).status_code == 401
    token = development_key("dispatch-bridge").issue("verification")
    body = (await verification.client.get(path, headers={"Authorization": f"Bearer {token}"})).json()
    assert body["verdict"] == "forward" and body["score"] == 0.7  # a text-only tip


async def test_every_image_worker_is_started_and_warm_before_the_service_is_ready() -> None:
    """Spawned workers start on demand and import the image libraries with their first photo; warmed at start,
    the first reports after a start do not wait for that (it made them take up to a second)."""
    import multiprocessing
    import os
    from concurrent.futures import ProcessPoolExecutor

    from verification.main import warm

    pool = ProcessPoolExecutor(max_workers=2, mp_context=multiprocessing.get_context("spawn"))
    try:
        started = await warm(pool, 2)
        assert len(started) == 2 and os.getpid() not in started
    finally:
        pool.shutdown()


async def test_a_job_that_keeps_failing_ends_as_a_dead_job_that_can_be_replayed(
    start_service: Callable[..., Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    import asyncio

    from verification.models import VerificationJob

    verification = await start_service(
        "verification",
        VerificationSettings,
        workers=1,
        job_max_attempts=3,
        job_lease_seconds=0.05,
        bridge_url="http://127.0.0.1:9",
    )
    worker = verification.runtime.extras["worker"]
    process = worker.process

    report = submission(verification, [make_jpeg(pattern=7)], in_progress=True)

    async def poison(job: Any) -> None:
        if job.report_id != report.report_id:
            return await process(job)
        raise RuntimeError("the image library crashed on this photo")

    monkeypatch.setattr(worker, "process", poison)
    await submit(verification, report)

    async def job() -> VerificationJob:
        async with verification.runtime.db.sessions() as session:
            found = await session.get(VerificationJob, f"{report.report_id}:0")
        assert found is not None
        return found

    for _ in range(200):  # bounded: three tries a few seconds apart at most
        if (await job()).status == "dead":
            break
        await asyncio.sleep(0.05)
    dead = await job()
    assert (dead.status, dead.attempts) == ("dead", 3) and "image library crashed" in (dead.last_error or "")
    # A later, ordinary report is verified: the one worker has claimed again since, and would have taken the
    # urgent dead job first had it been due. It was not: given up on, never tried again on its own.
    later = submission(verification, [make_jpeg(pattern=8)])
    await submit(verification, later)
    await result(verification, later.report_id)
    after = await job()
    assert (after.status, after.attempts, after.last_error) == ("dead", 3, dead.last_error)

    token = development_key("dispatch-bridge").issue("verification")
    bridge = {"Authorization": f"Bearer {token}"}
    listed = (await verification.client.get("/internal/v1/dead-jobs", headers=bridge)).json()
    assert [(j["report_id"], j["urgent"], j["attempts"]) for j in listed] == [(report.report_id, True, 3)]
    assert "image library crashed" in listed[0]["reason"]
    intake_token = development_key("report-intake").issue("verification")
    intake = {"Authorization": f"Bearer {intake_token}"}
    assert (await verification.client.get("/internal/v1/dead-jobs", headers=intake)).status_code == 403
    metrics = (await verification.client.get("/metrics")).text
    assert 'bm_verification_dead_jobs{urgent="true"} 1.0' in metrics

    # The cause is fixed; a supervisor replays it (through the bridge): verified as any other job.
    monkeypatch.setattr(worker, "process", process)
    replay = f"/internal/v1/dead-jobs/{dead.job_id}/replay"
    assert (await verification.client.post(replay, headers=bridge)).json() == {"status": "queued"}
    assert (await result(verification, report.report_id))["verdict"] in ("forward", "review")
    assert (await verification.client.post(replay, headers=bridge)).status_code == 404  # no longer dead


async def test_a_job_whose_worker_keeps_dying_is_given_up_on_at_its_next_claim(
    start_service: Callable[..., Any],
) -> None:
    import asyncio
    from datetime import UTC, datetime

    from verification.models import VerificationJob

    verification = await start_service(
        "verification", VerificationSettings, workers=1, job_max_attempts=3, bridge_url="http://127.0.0.1:9"
    )
    report = submission(verification, [])
    async with verification.runtime.db.transaction() as session:  # claimed three times, no failure recorded
        session.add(
            VerificationJob(
                job_id=f"{report.report_id}:0",
                report_id=report.report_id,
                revision=0,
                request=report.model_dump_json(),
                status="pending",
                priority=0,
                received_at=datetime.now(UTC),
                attempts=3,
                lease_until=None,
            )
        )
    verification.runtime.extras["worker"].wake()
    for _ in range(200):
        async with verification.runtime.db.sessions() as session:
            job = await session.get(VerificationJob, f"{report.report_id}:0")
        if job is not None and job.status == "dead":
            break
        await asyncio.sleep(0.05)
    assert job is not None and (job.status, job.attempts) == ("dead", 3)
    assert "its worker stopped while holding it (3 tries)" in (job.last_error or "")


async def test_a_failure_after_the_verdict_is_stored_does_not_reopen_the_job(
    verification: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from verification.models import VerificationJob

    index = verification.runtime.extras["near_index"]
    sync, failed_after = index.sync, []
    report = submission(verification, [make_jpeg(pattern=9)])

    async def status() -> str | None:
        async with verification.runtime.db.sessions() as session:
            job = await session.get(VerificationJob, f"{report.report_id}:0")
        return job.status if job is not None else None

    async def sync_that_fails_once_the_verdict_is_stored(db: Any) -> None:
        # The first sync after the job's commit fails, whenever it comes (process() syncs after its commit).
        if not failed_after and await status() == "done":
            failed_after.append("done")
            raise RuntimeError("index sync failed")
        await sync(db)

    monkeypatch.setattr(index, "sync", sync_that_fails_once_the_verdict_is_stored)
    await submit(verification, report)
    outcome = await result(verification, report.report_id)
    # A later report verified: the one worker finished with the first, its failure included, before it.
    later = submission(verification, [make_jpeg(pattern=10)])
    await submit(verification, later)
    await result(verification, later.report_id)
    assert failed_after == ["done"]  # the failure happened, after the verdict was stored
    async with verification.runtime.db.sessions() as session:
        job = await session.get(VerificationJob, f"{report.report_id}:0")
        sent = (await session.execute(select(messaging.outbox.c.payload))).scalars().all()
    assert job is not None and (job.status, job.attempts, job.last_error) == ("done", 1, None) and outcome["verdict"]
    # One verdict each, not a second for the first after a retry.
    assert sorted(json.loads(payload)["report_id"] for payload in sent) == sorted([report.report_id, later.report_id])
