"""A mass incident for real: a hundred witnesses of one fight on the Dam, all behind one mobile network's
address, each with their own app installation and photo, within half a minute; a quarter of them in progress.
Four uvicorn processes, real HTTP, real photos with camera EXIF. Every witness gets through, the meldkamer gets
one incident for the event with every report attached, another event a kilometre away gets its own, and the
limits still stop a flooding installation and an address without credentials."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from burgermelding_shared.events import distance_m
from tests.helpers import phone_photo, register_installation_at, report_parts
from tests.suite import Suite, start_suite
from tests.suite import meldkamer_incidents as meldkamer_list

# Runs on PostgreSQL only (conftest.py, END_TO_END_DATABASES): concurrent reports into one incident: production's locking.
pytestmark = pytest.mark.runs_on("postgresql")

DAM = (52.3731, 4.8926)
ONE_KM_NORTH = (DAM[0] + 1000 / 111_320, DAM[1])
ELSEWHERE = (52.3500, 4.9200)  # where the flooder and the old app report from, far from both events
CGNAT = "203.0.113.50"  # the one public address of every phone in this test
WITNESSES = 100
FLOOD_SECONDS = 30.0
# The dispatcher keeps the incident open while the fight goes on (the default test script closes it in 4 s).
OPEN_SCRIPT = [["Active", 0.3], ["ResourcesAssigned", 1.0], ["Closed", 900.0]]


@pytest.fixture(scope="module")
def suite(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Suite]:
    running = start_suite(
        tmp_path_factory.mktemp("flood"),
        {
            "BM_INTAKE_REPORTS_PER_CLIENT": "10",
            "BM_INTAKE_TOKEN_USES_PER_CLIENT": "120",
            "BM_INTAKE_INSTALLATION_POW_BITS": "12",
            "BM_MELDKAMER_SCRIPT": json.dumps(OPEN_SCRIPT),
            "BM_VERIFICATION_GROUP_MERGE_SECONDS": "5",
        },
    )
    yield running
    running.stop()


def post_report(
    client: httpx.Client, intake: str, body: dict[str, Any], photo: bytes | None, key: str, credential: str | None
) -> httpx.Response:
    files = report_parts(body, [photo] if photo is not None else [])
    headers = {
        "Idempotency-Key": key,
        "X-Forwarded-For": CGNAT,
        **({"Installation-Credential": credential} if credential else {}),
    }
    return client.post(f"{intake}/v1/reports", files=files, headers=headers, timeout=60)


def body_at(place: tuple[float, float], n: int, in_progress: bool, description: str) -> dict[str, Any]:
    categories = ("violence", "robbery", "public_nuisance", "violence")
    return {
        "category": categories[n % 4],
        "description": description,
        "in_progress": in_progress,
        "location": {"lat": place[0], "lon": place[1], "accuracy_m": 10},
        "observed_at": datetime.now(UTC).isoformat(),
    }


def near_dam(n: int) -> tuple[float, float]:
    """Spread within about 120 m of the Dam, as witnesses standing around a fight."""
    north, east = ((n * 37) % 240 - 120) / 2, ((n * 53) % 240 - 120) / 2
    return DAM[0] + north / 111_320, DAM[1] + east / (111_320 * 0.61)


def installed_days_ago(suite: Suite) -> None:
    """The witnesses' apps were installed long before the fight. Registered just now from one address, they would
    count as one witness (report_intake.installations.senders.independent_source): their first hour is over instead."""
    from sqlalchemy import text
    from sqlalchemy.ext.asyncio import create_async_engine

    async def age() -> None:
        engine = create_async_engine(suite.env["BM_INTAKE_DATABASE_URL"])
        async with engine.begin() as connection:
            await connection.execute(text("UPDATE installations SET registered_from = NULL, new_until = NULL"))
        await engine.dispose()

    asyncio.run(age())


def meldkamer_incidents(suite: Suite) -> list[dict[str, Any]]:
    return meldkamer_list(suite.urls["meldkamer"], suite.env, limit=1000)


FIGHT = "Vechtpartij op de Dam"  # how every witness of the fight begins their description


def incidents_of_the_fight(incidents: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Every incident the meldkamer got for a witness's report, by the words it was opened with: merged away or
    live, with an event summary or without one, wherever its summary's centre lies."""
    return [i for i in incidents if (i["description"] or "").startswith(FIGHT)]


def incidents_near(incidents: list[dict[str, Any]], place: tuple[float, float]) -> list[dict[str, Any]]:
    return [
        i
        for i in incidents
        if i["eventSummary"]
        and distance_m(i["eventSummary"]["centre"]["lat"], i["eventSummary"]["centre"]["lon"], *place) < 400
    ]


def test_a_hundred_witnesses_behind_one_address_become_one_incident(suite: Suite) -> None:
    intake = suite.urls["intake"]
    with httpx.Client(timeout=60) as client:
        credentials = [register_installation_at(intake, CGNAT, client)["credential"] for _ in range(WITNESSES + 4)]
    installed_days_ago(suite)
    witnesses, others, flooder = credentials[:WITNESSES], credentials[WITNESSES : WITNESSES + 3], credentials[-1]
    photos = [phone_photo(n, *near_dam(n)) for n in range(WITNESSES)]

    # An open model: each witness posts at their own moment, whatever the answers before theirs took.
    started = time.monotonic()

    def witness(n: int) -> int:
        time.sleep(max(0.0, started + n * FLOOD_SECONDS / WITNESSES - time.monotonic()))
        with httpx.Client(timeout=60) as client:
            body = body_at(
                near_dam(n),
                n,
                in_progress=n % 4 == 0,
                description=f"{FIGHT}, ik zie persoon {n} slaan / fight, person {n}",
            )
            return post_report(client, intake, body, photos[n], f"flood-witness-{n:04d}", witnesses[n]).status_code

    with ThreadPoolExecutor(max_workers=12) as pool:
        answers = list(pool.map(witness, range(WITNESSES)))
        with httpx.Client(timeout=60) as client:
            elsewhere = [
                post_report(
                    client,
                    intake,
                    body_at(ONE_KM_NORTH, n, True, f"brand en ruzie {n}"),
                    phone_photo(500 + n, *ONE_KM_NORTH),
                    f"other-event-{n}",
                    others[n],
                ).status_code
                for n in range(3)
            ]
            flooding = [
                post_report(
                    client, intake, body_at(ELSEWHERE, n, False, f"spam {n}"), None, f"flooder-{n:03d}", flooder
                ).status_code
                for n in range(30)
            ]
            old_app = [
                post_report(
                    client, intake, body_at(ELSEWHERE, n, False, f"oude app {n}"), None, f"old-app-{n:03d}", None
                ).status_code
                for n in range(11)
            ]
    assert answers == [202] * WITNESSES  # no witness refused, though all share one address
    assert elsewhere == [202] * 3
    assert flooding[:10] == [202] * 10 and set(flooding[10:]) == {429}  # one installation: throttled
    assert old_app[:10] == [202] * 10 and old_app[10] == 429  # no credential: today's per-address limit

    deadline = time.monotonic() + 120  # bounds a broken run; the benchmark measures how fast it really is
    while True:
        incidents = meldkamer_incidents(suite)
        fight = incidents_of_the_fight(incidents)
        live = [i for i in fight if not i["mergedInto"]]
        attached = sum(i["eventSummary"]["reportCount"] for i in live if i["eventSummary"])
        if attached >= WITNESSES or time.monotonic() > deadline:
            break
        time.sleep(1)
    # One event, one live incident: exactly one, holding every witness; any other the meldkamer was sent before
    # the reports were seen to be one event was merged into it, and no witness's report opened one of its own.
    assert len(live) == 1, [
        (i["incidentId"], i["mergedInto"], i["eventSummary"] and i["eventSummary"]["reportCount"]) for i in fight
    ]
    assert attached == WITNESSES
    assert all(i["mergedInto"] == live[0]["incidentId"] for i in fight if i is not live[0])
    assert [i for i in incidents_near(incidents, DAM) if not i["mergedInto"]] == live  # no other live one there
    summary = live[0]["eventSummary"]
    assert summary["witnessCount"] == summary["senderCount"] == WITNESSES and summary["inProgress"] is True
    assert summary["radiusMeters"] < 150 and len(summary["photos"]) == WITNESSES
    assert len(summary["descriptions"]) == WITNESSES
    assert live[0]["priorityNumber"] == 10  # the first witness was in progress: prio 1
    other = incidents_near(incidents, ONE_KM_NORTH)
    assert len(other) == 1 and other[0]["incidentId"] != live[0]["incidentId"]
    assert other[0]["eventSummary"]["reportCount"] == 3
