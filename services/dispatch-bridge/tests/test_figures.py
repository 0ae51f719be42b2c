"""Issue #32: the supervisors' figures page. Known reports (forwarded, held, rejected, withdrawn; urgent and
ordinary with known times to the meldkamer), incidents started and joined, Burgernet actions with outcomes, and
incidents closed by the meldkamer give known numbers; each chart's CSV holds its table's rows; a dispatcher
cannot see the page; and the figures stay the same after retention anonymised or purged the reports."""

from __future__ import annotations

import csv
import html
import io
import json
import re
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from bridge_support import browser, log_in, post_internal, start_bridge
from sqlalchemy import select

from burgermelding_shared import webhooks
from burgermelding_shared.burgernet import Area, Circle, PublishedAction, link_of
from burgermelding_shared.contracts import ReportSubmitted
from burgermelding_shared.timeutil import utcnow
from burgermelding_shared.urgency import MeldkamerPriority
from dispatch_bridge.accounts.tokens import Actor
from dispatch_bridge.audit import BRIDGE, audit
from dispatch_bridge.burgernet import actions
from dispatch_bridge.config import BridgeSettings
from dispatch_bridge.console import figures as console_figures
from dispatch_bridge.models import BridgeReport, BurgernetAction, Incident
from dispatch_bridge.records import figures
from dispatch_bridge.states import DeliveryState, ReportState

UTRECHT, AMSTERDAM, ROTTERDAM = (52.09, 5.12), (52.37, 4.89), (51.92, 4.48)
SARA = Actor("sara", "supervisor")


@pytest.fixture
async def bridge(start_service: Callable[..., Any]) -> Any:
    """Its relay stopped: nothing reaches the meldkamer but what the test says it accepted (its callbacks)."""
    return await start_bridge(start_service, relay=False)


async def post(bridge: Any, path: str, body: Any, caller: str) -> Any:
    response = await post_internal(bridge, path, body, caller)
    assert response.status_code == 200, response.text
    return response.json()


async def send(
    bridge: Any, category: str, place: tuple[float, float], *, posted_ago: float = 0, **overrides: Any
) -> ReportSubmitted:
    """A report as intake sends it, its citizen's POST `posted_ago` seconds back."""
    now = datetime.now(UTC)
    report = ReportSubmitted(
        **{
            "report_id": str(uuid.uuid4()),
            "reference": "BM-2026-000032",
            "category": category,
            "description": "wat ik zag",
            "location": {"lat": place[0], "lon": place[1]},
            "observed_at": now,
            "received_at": now - timedelta(seconds=posted_ago),
            "in_progress": False,
            **overrides,
        }
    )
    await post(bridge, "/internal/v1/reports", report.model_dump(mode="json"), "report-intake")
    return report


async def judge(bridge: Any, report: ReportSubmitted, verdict: str) -> None:
    result = {"report_id": report.report_id, "verdict": verdict, "score": 0.5, "verified_at": utcnow().isoformat()}
    await post(bridge, "/internal/v1/verifications", result, "verification")


async def callback(bridge: Any, incident_id: str, status: str, sequence: int) -> None:
    """The meldkamer's signed status callback: proof it has the incident (and, at the end, its outcome)."""
    transaction = str(uuid.uuid4())
    body = json.dumps(
        {
            "transactionId": transaction,
            "requestId": incident_id,
            "incidentId": f"MK-{incident_id[:8]}",
            "status": status,
            "sequence": sequence,
            "lastUpdateTimeStamp": utcnow().isoformat(),
        }
    ).encode()
    headers = webhooks.signed_headers(BridgeSettings().meldkamer_webhook_keys, transaction, body)
    answer = await bridge.client.post("/v1/meldkamer/callbacks", content=body, headers=headers)
    assert answer.json() == {"status": "applied"}, answer.text


async def retention(bridge: Any, report: ReportSubmitted, action: str, rule: str) -> None:
    order = {"report_id": report.report_id, "action": action, "rule": rule, "applied_at": utcnow().isoformat()}
    await post(bridge, "/internal/v1/retention", order, "report-intake")


async def incident_of(bridge: Any, report: ReportSubmitted) -> str:
    async with bridge.runtime.db.sessions() as session:
        stored = await session.get(BridgeReport, report.report_id)
    assert stored is not None and stored.incident_id is not None
    return stored.incident_id


async def start_action(bridge: Any, incident_id: str) -> BurgernetAction:
    started = await actions.start_action(
        bridge.runtime,
        SARA,
        actions.ActionRequest(
            incident_id=incident_id,
            looking_for="person",
            headline_nl="Gezocht: man met rode jas",
            description_nl="Rode jas, fiets",
            area=Area(circle=Circle(lat=UTRECHT[0], lon=UTRECHT[1], radius_m=1000)),
        ),
    )
    async with bridge.runtime.db.sessions() as session:
        action = await session.get(BurgernetAction, started["action_id"])
    assert action is not None
    return action


async def the_known_week(bridge: Any) -> dict[str, Any]:
    """Nine reports, three incidents, two Burgernet actions, two incidents ended by the meldkamer."""
    # Utrecht, burglary: an urgent one starts an incident, an ordinary one joins it; one held, one spam, one
    # withdrawn before its verdict.
    u1 = await send(bridge, "burglary", UTRECHT, posted_ago=10, in_progress=True)
    u2 = await send(bridge, "burglary", UTRECHT, posted_ago=40)
    await judge(bridge, u2, "forward")
    u3 = await send(bridge, "burglary", UTRECHT)
    await judge(bridge, u3, "review")
    u4 = await send(bridge, "burglary", UTRECHT)
    await judge(bridge, u4, "reject")
    u5 = await send(bridge, "burglary", UTRECHT)
    await post(
        bridge,
        "/internal/v1/withdrawals",
        {"report_id": u5.report_id, "withdrawn_at": utcnow().isoformat()},
        "report-intake",
    )
    await retention(bridge, u5, "anonymise", "withdrawn-by-citizen")  # what intake does on a withdrawal
    # Amsterdam, fire: an ordinary one starts an incident, an urgent one (danger to life) joins it.
    a1 = await send(bridge, "fire", AMSTERDAM, posted_ago=100)
    await judge(bridge, a1, "forward")
    a2 = await send(bridge, "fire", AMSTERDAM, posted_ago=20, danger_to_life=True)
    # Rotterdam, fire: an incident the meldkamer never accepts.
    r1 = await send(bridge, "fire", ROTTERDAM)
    await judge(bridge, r1, "forward")
    i1, i2, i3 = await incident_of(bridge, u1), await incident_of(bridge, a1), await incident_of(bridge, r1)
    assert await incident_of(bridge, u2) == i1 and await incident_of(bridge, a2) == i2 and len({i1, i2, i3}) == 3
    await callback(bridge, i1, "Active", 1)
    await callback(bridge, i2, "Active", 1)
    # A Burgernet action on the Utrecht incident, one sighting answers it (at once: the incident is accepted),
    # and it ends with the person found; another on the Amsterdam incident stays open.
    found = await start_action(bridge, i1)
    published = PublishedAction.model_validate_json(found.document)
    answer = await send(bridge, "burglary", UTRECHT, posted_ago=5, appeal=link_of(published).model_dump(mode="json"))
    assert await incident_of(bridge, answer) == i1
    await actions.close_action(bridge.runtime, SARA, found.id, actions.Closing(outcome="found"))
    still_open = await start_action(bridge, i2)
    await callback(bridge, i1, "Closed", 2)
    await callback(bridge, i2, "Cancelled", 2)
    return {
        "reports": [u1, u2, u3, u4, u5, a1, a2, r1, answer],
        "u4": u4,
        "u5": u5,
        "r1": r1,
        "incidents": (i1, i2, i3),
        "actions": (found.id, still_open.id),
    }


async def csv_rows(client: httpx.AsyncClient, chart: str, **query: str) -> list[dict[str, str]]:
    answer = await client.get(f"/console/figures/{chart}.csv", params=query)
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"].startswith("text/csv")
    return list(csv.DictReader(io.StringIO(answer.text)))


def total(rows: list[dict[str, str]]) -> dict[str, str]:
    found = [r for r in rows if r["period"] == "total"]
    assert len(found) == 1
    return found[0]


def html_table(page: str, chart: str) -> list[list[str]]:
    """The rows of a chart's table on the page, as text ("–" for an empty cell, the total as "total")."""
    table = re.search(rf'<table class="figures" id="table-{chart}">(.*?)</table>', page, re.S)
    assert table, chart
    body = table.group(1).split("<tbody>")[1]
    rows = []
    for row in re.findall(r"<tr[^>]*>(.*?)</tr>", body, re.S):
        cells = [html.unescape(c).strip() for c in re.findall(r"<t[hd][^>]*>(.*?)</t[hd]>", row, re.S)]
        rows.append(["total" if c in ("total", "totaal") and i == 0 else c for i, c in enumerate(cells)])
    return rows


async def all_csv(client: httpx.AsyncClient, **query: str) -> dict[str, list[dict[str, str]]]:
    return {chart: await csv_rows(client, chart, **query) for chart in figures.CHARTS}


async def test_the_figures_count_what_the_reports_brought(bridge: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    known = await the_known_week(bridge)
    found_id = known["actions"][0]

    async def intake(runtime: Any, service: str, method: str, path: str, body: Any = None) -> httpx.Response:
        if found_id in path:  # intake counted 120 installations that fetched the first action
            return httpx.Response(200, json={"installations": 120}, request=httpx.Request(method, path))
        raise httpx.ConnectError("intake is down")

    monkeypatch.setattr(console_figures.peers, "call_service", intake)
    async with browser(bridge) as client:
        await log_in(client, "sara")
        page = await client.get("/console/figures", params={"period": "week"})
        assert page.status_code == 200, page.text
        assert page.headers["content-security-policy"].startswith("default-src 'none'")
        assert " style=" not in page.text and "<script>" not in page.text  # the policy allows no inline style
        assert page.text.count('role="img"') >= 6 and "<title id=" in page.text
        assert "Definities" in page.text and "nearest-rank" in page.text
        for report in known["reports"]:  # nothing about anyone
            assert report.report_id not in page.text and report.reference not in page.text
        tables = {chart: html_table(page.text, chart) for chart in figures.CHARTS}
        sheets = await all_csv(client, period="week")
        for chart in figures.CHARTS:  # each CSV holds its table's rows, cell for cell
            rows = [[value or "–" for value in row.values()] for row in sheets[chart]]
            assert rows == tables[chart], chart

        reports = total(sheets["reports"])
        assert {k: int(v) for k, v in reports.items() if k != "period"} == {
            "received": 9,
            "forwarded": 6,
            "held_for_review": 1,
            "rejected": 1,
            "withdrawn": 1,
        }
        started = total(sheets["incidents"])
        assert (started["started_an_incident"], started["joined_an_incident"], started["answered_burgernet"]) == (
            "3",
            "2",
            "1",
        )
        # Urgent: 5 s (the sighting), 10 s, 20 s; ordinary: 40 s, 100 s; the Rotterdam report was never accepted.
        latency = total(sheets["latency"])
        assert (latency["urgent_n"], latency["ordinary_n"]) == ("3", "2")
        for column, seconds in (
            ("urgent_p50_s", 10),
            ("urgent_p90_s", 20),
            ("ordinary_p50_s", 40),
            ("ordinary_p90_s", 100),
        ):
            assert seconds <= float(latency[column]) < seconds + 10, (column, latency[column])
        witnesses = total(sheets["witnesses"])
        assert (witnesses["incidents"], witnesses["reports"], witnesses["mean_per_incident"]) == ("3", "5", "1.67")
        assert (witnesses["most_in_one"], witnesses["incidents_with_2_or_more"]) == ("2", "2")
        burgernet = total(sheets["burgernet"])
        assert (burgernet["actions"], burgernet["answers"], burgernet["found"], burgernet["still_open"]) == (
            "2",
            "1",
            "1",
            "1",
        )
        assert (burgernet["reach_installations"], burgernet["reach_unknown"]) == ("120", "1")
        assert "intake" in page.text and ("1 actie(s)" in page.text)  # the page says a reach is missing
        closed = total(sheets["closed"])
        assert (closed["closed"], closed["cancelled"]) == ("1", "1")

        # By category and by region.
        burglary = total((await all_csv(client, category="burglary"))["reports"])
        assert (burglary["received"], burglary["forwarded"], burglary["rejected"]) == ("6", "3", "1")
        fire = await all_csv(client, category="fire")
        assert total(fire["reports"])["received"] == "3" and total(fire["closed"])["cancelled"] == "1"
        assert total(fire["witnesses"])["incidents"] == "2" and total(fire["burgernet"])["actions"] == "1"
        rotterdam = await all_csv(client, region="51.9,4.4")
        assert total(rotterdam["reports"])["received"] == "1" and total(rotterdam["witnesses"])["incidents"] == "1"
        # Per day: today holds everything, the other days of the period nothing.
        days = await csv_rows(client, "reports", period="day")
        assert len(days) == console_figures.DEFAULT_DAYS + 1
        assert [r["received"] for r in days[:-1]].count("0") == console_figures.DEFAULT_DAYS - 1


async def test_the_figures_stay_the_same_after_retention(bridge: Any) -> None:
    known = await the_known_week(bridge)
    async with browser(bridge) as client:
        await log_in(client, "sara")
        before = await all_csv(client)
        before_fire = await all_csv(client, category="fire")
        before_burglary = await all_csv(client, category="burglary")
        # Retention: the spam purged (30 days), the withdrawn one and the never-accepted Rotterdam report purged
        # too (as after five years), every other report anonymised.
        for report in known["reports"]:
            if report in (known["u4"], known["u5"], known["r1"]):
                await retention(bridge, report, "purge", "rejected-purged")
            else:
                await retention(bridge, report, "anonymise", "anonymised-after-a-year")
        async with bridge.runtime.db.sessions() as session:
            left = (await session.execute(select(BridgeReport.report_id))).scalars().all()
        assert len(left) == 6
        assert await all_csv(client) == before  # every figure, unfiltered
        assert await all_csv(client, category="fire") == before_fire  # the purged report: by its incident
        # The purged spam and withdrawn reports never reached an incident: their report.received entries still
        # say their category and region, so a filter places them as before.
        assert await all_csv(client, category="burglary") == before_burglary
        page = await client.get("/console/figures", params={"category": "burglary", "lang": "en"})
        assert "no longer have a category or region" not in page.text


async def test_a_dispatcher_cannot_see_the_figures(bridge: Any) -> None:
    async with browser(bridge) as client:
        await log_in(client, "dirk")
        for path in ("/console/figures", "/console/figures/reports.csv"):
            answer = await client.get(path)
            assert answer.status_code == 403 and "supervisors" in answer.text, path
    async with browser(bridge) as client:
        assert (await client.get("/console/figures")).headers["location"] == "/console/login?reason=none"
        await log_in(client, "sara")
        assert (await client.get("/console/figures/nothing.csv")).status_code == 404
        wrong = await client.get("/console/figures", params={"start": "2026-12-07", "end": "2026-11-01"})
        assert wrong.status_code == 422 and "periode begint na haar einde" in wrong.text
        assert (await client.get("/console/figures", params={"region": "Utrecht"})).status_code == 422


def test_regions_are_cells_that_anonymisation_does_not_move() -> None:
    assert figures.region_of(52.0951, 5.1234) == figures.region_of(52.10, 5.12) == "52.1,5.1"
    assert figures.region_of(52.0949, 5.1299) == figures.region_of(52.09, 5.13) == "52.0,5.1"
    assert figures.region_of(None, 5.1) is None
    assert figures.nearest_rank([5.0, 10.0, 20.0], 0.5) == 10.0 and figures.nearest_rank([40.0, 100.0], 0.9) == 100.0
    assert figures.nearest_rank([], 0.5) is None


async def test_the_figures_count_right_at_the_scale_of_a_busy_month(bridge: Any) -> None:
    """5,000 reports over 500 incidents: every one counted (the SQL aggregates and the IN lists in batches). How
    long the page takes is a benchmark's question (bench/console_latency.py's load), not a test's."""
    now = utcnow()
    async with bridge.runtime.db.transaction() as session:
        for number in range(500):
            place = (52.0 + number % 20 / 50, 4.5 + number % 25 / 30)
            incident = Incident(
                id=str(uuid.uuid4()),
                category="burglary" if number % 2 else "fire",
                priority=MeldkamerPriority.URGENT if number % 3 == 0 else MeldkamerPriority.HIGH,
                delivery_state=DeliveryState.ACCEPTED,
                lat=place[0],
                lon=place[1],
                created_at=now - timedelta(hours=number % 600),
                updated_at=now,
            )
            session.add(incident)
            for witness in range(10):
                report_id = str(uuid.uuid4())
                posted = incident.created_at - timedelta(seconds=30)
                session.add(
                    BridgeReport(
                        report_id=report_id,
                        reference=f"BM-2026-{number:03d}{witness}",
                        category=incident.category,
                        in_progress=witness == 0,
                        danger_to_life=False,
                        submission=ReportSubmitted(
                            report_id=report_id,
                            reference="BM-2026-000001",
                            category=incident.category,
                            description="",
                            location={"lat": place[0], "lon": place[1]},
                            observed_at=posted,
                            received_at=posted,
                            in_progress=witness == 0,
                        ).model_dump_json(),
                        received_at=incident.created_at,
                        state=ReportState.FORWARDED,
                        incident_id=incident.id,
                        lat=place[0],
                        lon=place[1],
                    )
                )
                audit(session, BRIDGE, "report.received", "report", report_id, {}, report_id=report_id)
                if witness:
                    audit(session, BRIDGE, "report.verdict", "report", report_id, {"verdict": "forward"}, report_id)
                how = {"incident_id": incident.id, "as": "incident_update" if witness else "request_for_service"}
                audit(session, BRIDGE, "report.sent_to_meldkamer", "report", report_id, how, report_id=report_id)
                audit(session, BRIDGE, "report.accepted", "report", report_id, {}, report_id=report_id)
    async with browser(bridge) as client:
        await log_in(client, "sara")
        page = await client.get("/console/figures", params={"period": "day"})
        assert page.status_code == 200
        reports = total(await csv_rows(client, "reports"))
    assert int(reports["received"]) == 5000 and int(reports["forwarded"]) == 5000
