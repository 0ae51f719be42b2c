"""A busy database never makes a citizen's request a 500: it is a 503 with Retry-After, nothing is stored, and
the same request sent again is accepted once."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy.engine import make_url

from report_intake.config import IntakeSettings
from tests.helpers import make_jpeg, report_json
from tests.intake_support import post_report, stored_counts

# A locked database file is how SQLite (the embedded default) is busy; PostgreSQL makes writers queue instead.
pytestmark = pytest.mark.runs_on("sqlite")


@pytest.fixture
async def intake(start_service: Callable[..., Any]) -> Any:
    # Every request comes from one test client: the per-client limit is not what is tested here.
    return await start_service("report_intake", IntakeSettings, sqlite_busy_timeout_ms=150, reports_per_client=1000)


def assert_busy(response: Any) -> None:
    assert response.status_code == 503, response.text
    assert response.json()["error"] == "busy" and int(response.headers["Retry-After"]) > 0


async def test_a_locked_database_answers_503_with_retry_after_and_stores_nothing(intake: Any) -> None:
    blocker = sqlite3.connect(make_url(intake.settings.database_url).database, timeout=5, isolation_level=None)
    blocker.execute("BEGIN IMMEDIATE")  # another writer holds the database for longer than requests wait
    try:
        photo = [("p.jpg", make_jpeg(pattern=3), "image/jpeg")]
        answers = await asyncio.gather(
            *(post_report(intake, report_json(), photo, key=f"locked-{n:04d}") for n in range(5))
        )
        for answer in answers:
            assert_busy(answer)
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()
    counts = await stored_counts(intake)
    assert counts["reports"] == counts["photos"] == counts["outbox"] == counts["keys"] == 0
    assert counts["blobs"] == counts["uploads"] == 0
    again = [await post_report(intake, report_json(), photo, key=f"locked-{n:04d}") for n in range(5)]
    assert [a.status_code for a in again] == [202] * 5


async def test_a_burst_gets_202_or_503_never_500_and_each_report_is_stored_once(intake: Any) -> None:
    bodies = {
        f"burst-{n:04d}": (
            report_json(description=f"melding {n} tijdens de drukte"),
            [("p.jpg", make_jpeg(pattern=n), "image/jpeg")],
        )
        for n in range(40)
    }

    async def send(key: str) -> int:
        body, photos = bodies[key]
        for _attempt in range(100):  # as the app does: the same key again after Retry-After
            answer = await post_report(intake, body, photos, key=key)
            if answer.status_code == 409:  # its first attempt still holds the key a moment: also "later"
                assert answer.json()["error"] == "request_in_progress" and answer.headers["Retry-After"]
            elif answer.status_code == 503:
                assert_busy(answer)
            else:
                return int(answer.status_code)
            await asyncio.sleep(0.05)
        raise AssertionError(f"{key} was never accepted")

    assert await asyncio.gather(*(send(key) for key in bodies)) == [202] * len(bodies)
    counts = await stored_counts(intake)
    assert counts["reports"] == len(bodies) and counts["photos"] == len(bodies)
