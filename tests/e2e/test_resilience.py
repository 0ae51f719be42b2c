"""Never lost, never twice: the whole suite against a meldkamer with faults, and a bridge that is killed.

Real processes and real HTTP. Waits are bounded only so a broken run ends; nothing here asserts a duration.
"""

from __future__ import annotations

import json
import signal
import statistics
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.helpers import report_json, report_parts
from tests.suite import Suite, create_dispatcher, local_http, meldkamer_incidents, start_suite

# Runs on PostgreSQL only (conftest.py, END_TO_END_DATABASES): the outbox under faults and a killed bridge: what production's database must keep.
pytestmark = pytest.mark.runs_on("postgresql")

FAULTS = {
    "error_rate": 0.3,
    "error_statuses": [500, 503, 429],
    "retry_after_seconds": 1,
    "fail_after_commit": 0.5,
    "timeout_rate": 0.02,
    "timeout_seconds": 4,
    "duplicate_callback_rate": 0.2,
    "out_of_order_jitter_seconds": 0.5,
}
FAULTY_ENV = {
    "BM_MELDKAMER_FAULTS": json.dumps(FAULTS),
    "BM_MELDKAMER_SCRIPT": json.dumps([["Active", 0.2], ["ResourcesAssigned", 0.6]]),
    "BM_BRIDGE_RELAY_REQUEST_TIMEOUT_SECONDS": "2",
    "BM_BRIDGE_RELAY_LEASE_SECONDS": "5",
    "BM_BRIDGE_CALL_112_DEADLINE_SECONDS": "600",
}
REPORTS = 120


@pytest.fixture
def faulty_suite(tmp_path: Path) -> Iterator[Suite]:
    suite = start_suite(tmp_path / "suite", FAULTY_ENV)
    yield suite
    suite.stop()


def submit(suite: Suite, n: int) -> dict[str, Any]:
    urgent = n % 10 == 0
    # Each report its own event: at least 2 km apart, so grouping keeps them apart (one event, one incident).
    place = {"lat": 51.6 + (n % 20) * 0.02, "lon": 4.6 + (n // 20) * 0.03}
    body = report_json(in_progress=urgent, description=f"{'URGENT' if urgent else 'normal'} report {n}", location=place)
    files = report_parts(body)
    for _attempt in range(20):  # the app retries with the same key if the bridge or anything else hiccups
        try:
            response = local_http().post(
                f"{suite.urls['intake']}/v1/reports",
                files=files,
                timeout=30,
                headers={
                    "Idempotency-Key": f"resilience-{n:05d}",
                    "X-Forwarded-For": f"198.51.{n // 250}.{n % 250 + 1}",
                },
            )  # each report its own citizen
            if response.status_code == 202:
                return {**response.json(), "urgent": urgent, "n": n}
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    raise AssertionError(f"report {n} was never accepted by intake")


def dispatcher_headers(suite: Suite, username: str, role: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {create_dispatcher(suite, username, role)}"}


def wait_for_delivery_states(
    suite: Suite, headers: dict[str, str], done: Callable[[dict[str, int]], bool], what: str, limit_seconds: float = 300
) -> None:
    """Poll the bridge's incidents by delivery state until `done` holds for them."""
    deadline = time.monotonic() + limit_seconds
    states: dict[str, int] = {}
    while time.monotonic() < deadline:
        states = (
            local_http()
            .get(f"{suite.urls['bridge']}/v1/dispatch/delivery", headers=headers, timeout=10)
            .json()["incidents_by_delivery_state"]
        )
        if done(states):
            return
        time.sleep(0.5)
    raise AssertionError(f"{what}: {states}")


def wait_until_all_accepted(suite: Suite, headers: dict[str, str], count: int) -> None:
    wait_for_delivery_states(
        suite, headers, lambda states: states.get("accepted", 0) >= count, "not all incidents accepted"
    )


def assert_each_report_accepted_exactly_once(
    suite: Suite, created: list[dict[str, Any]], headers: dict[str, str]
) -> list[dict[str, Any]]:
    incidents = meldkamer_incidents(suite.urls["meldkamer"], suite.env, limit=1000)
    assert len(incidents) == len(created), "the meldkamer holds a different number of incidents than reports"
    assert len({i["requestId"] for i in incidents}) == len(created)
    bridge_reports = local_http().get(f"{suite.urls['bridge']}/v1/dispatch/reports?limit=500", headers=headers).json()
    assert sorted(r["report_id"] for r in bridge_reports) == sorted(c["id"] for c in created)
    assert len({r["incident_id"] for r in bridge_reports}) == len(created)
    assert {i["requestId"] for i in incidents} == {r["incident_id"] for r in bridge_reports}
    deadline = time.monotonic() + 120
    for report in created:  # and every citizen sees it accepted, once: nothing lost on the way back either
        while True:
            view = (
                local_http()
                .get(
                    f"{suite.urls['intake']}{report['status_url']}",
                    headers={"Authorization": f"Bearer {report['access_token']}"},
                )
                .json()
            )
            events = [e["event"] for e in view["timeline"]]
            if "accepted" in events or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        assert "accepted" in events, (report["n"], events)
        assert events.count("accepted") == 1 and events.count("forwarded") == 1, events
    return incidents


def test_faults_and_an_outage_lose_nothing_duplicate_nothing_and_urgent_goes_first(faulty_suite: Suite) -> None:
    suite = faulty_suite
    admin = {"Authorization": "Bearer dev-only-meldkamer-admin-token-change-me"}

    def outage(seconds: float) -> None:
        response = local_http().post(
            f"{suite.urls['meldkamer']}/admin/outage", json={"seconds": seconds}, headers=admin
        )
        assert response.status_code == 200

    # The meldkamer is down while every report comes in and is queued at the bridge, and 10 s more: so a full
    # backlog has built up however fast or slow this machine submits, and the test sees how it drains.
    outage(600)
    headers = dispatcher_headers(suite, "dora", "dispatcher")
    with ThreadPoolExecutor(8) as pool:
        created = list(pool.map(lambda n: submit(suite, n), range(REPORTS)))
    # Until the bridge has an incident for every report (ordinary ones only after their verification).
    wait_for_delivery_states(
        suite, headers, lambda states: sum(states.values()) >= REPORTS, "not every report reached the bridge"
    )
    outage(10)
    wait_until_all_accepted(suite, headers, REPORTS)
    incidents = assert_each_report_accepted_exactly_once(suite, created, headers)
    arrival = [i["description"].startswith("URGENT") for i in sorted(incidents, key=lambda i: i["receivedAt"])]
    urgent_ranks = [rank for rank, urgent in enumerate(arrival) if urgent]
    normal_ranks = [rank for rank, urgent in enumerate(arrival) if not urgent]
    assert len(urgent_ranks) == REPORTS // 10
    # After the outage the backlog drains urgent first (30% errors still delay some of them a little).
    assert statistics.mean(urgent_ranks) < statistics.mean(normal_ranks) / 2, urgent_ranks
    assert statistics.median(urgent_ranks) < REPORTS // 10, urgent_ranks  # most are among the first tenth
    delivery = local_http().get(f"{suite.urls['bridge']}/v1/dispatch/delivery", headers=headers).json()
    assert delivery["circuits"]["meldkamer"]["state"] == "closed"
    assert delivery["relay"]["retried"] > 0  # the faults really happened


def test_a_bridge_killed_mid_run_loses_nothing_and_duplicates_nothing(faulty_suite: Suite) -> None:
    suite = faulty_suite
    created: list[dict[str, Any]] = []
    with ThreadPoolExecutor(8) as pool:
        created += pool.map(lambda n: submit(suite, n), range(REPORTS // 2))
        suite.kill_service("bridge", signal.SIGKILL)  # no shutdown, no goodbye: mid-run, messages in flight
        created += pool.map(lambda n: submit(suite, n), range(REPORTS // 2, REPORTS * 3 // 4))
        suite.start_service("bridge")
        created += pool.map(lambda n: submit(suite, n), range(REPORTS * 3 // 4, REPORTS))
    headers = dispatcher_headers(suite, "dirk", "dispatcher")
    wait_until_all_accepted(suite, headers, REPORTS)
    assert_each_report_accepted_exactly_once(suite, created, headers)
