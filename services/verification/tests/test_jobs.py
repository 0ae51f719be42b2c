"""Jobs through verification's internal API: idempotent per report, verdict and outbox message to the bridge."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy import select

from burgermelding_shared.service_auth import issue_token
from tests.helpers import make_jpeg
from tests.verification_support import result, submission, submit
from verification.config import VerificationSettings
from verification.models import messaging


@pytest.fixture
async def verification(start_service: Callable[..., Any]) -> Any:
    # The bridge is not running: results stay in the outbox, where the test reads them.
    return await start_service("verification", VerificationSettings, workers=1, bridge_url="http://127.0.0.1:9")


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
    token = issue_token(verification.settings.internal_secret, "dispatch-bridge", "verification")
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
