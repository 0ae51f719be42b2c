"""The console's changes, in-process: each form a dispatcher or supervisor submits (review decisions, merge,
split, Burgernet, questions, dead-letter replay), what it left in the database, the outbox and the audit chain,
and where it sent the browser back to; the list's filters (open and closed incidents), the map's data and the language of
the pages; what names an incident (its meldkamer number, its address, the clock) and how its address is found. The
bridge's destinations are down and its relay is stopped, so what it would send stays in its outbox to be read."""

from __future__ import annotations

import asyncio
import html
import json
import re
import uuid
from collections.abc import Callable
from datetime import timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit

import bridge_support
import httpx
from bridge_support import browser, log_in
from sqlalchemy import func, select, update

from burgermelding_shared.contracts import ReportSubmitted, VerificationCompleted
from burgermelding_shared.geocoding import GeocoderUnavailable, NearestAddress
from burgermelding_shared.messaging import DEAD, PENDING
from burgermelding_shared.timeutil import utcnow
from dispatch_bridge.console.texts import DUTCH_TIME
from dispatch_bridge.incidents.addresses import IncidentAddresses
from dispatch_bridge.models import (
    BridgeMessage,
    BridgeReport,
    BurgernetAction,
    ConsoleSession,
    Incident,
    audit,
    messaging,
)
from dispatch_bridge.reports import receiving, verdicts

UTRECHT = (52.0907, 5.1214)
AMSTERDAM = (52.3731, 4.8926)  # some 35 km away: another event


async def start_bridge(start_service: Callable[..., Any], **settings: Any) -> Any:
    """Its relay stopped: nothing leaves, the outbox keeps what the bridge would send."""
    return await bridge_support.start_bridge(start_service, relay=False, **settings)


# ---- what arrives at the bridge, and what it keeps ---------------------------------------------------------


def a_report(
    n: int, *, where: tuple[float, float] = UTRECHT, urgent: bool = False, category: str = "theft"
) -> ReportSubmitted:
    now = utcnow()
    return ReportSubmitted(
        report_id=str(uuid.uuid4()),
        reference=f"BM-2026-{n:06d}",
        category=category,
        description=f"Melding {n}",
        location={"lat": where[0], "lon": where[1]},
        observed_at=now,
        received_at=now,
        in_progress=urgent,
        submitter_tag=f"installation-{n}",
        submitter_kind="installation",
    )


async def arrives(bridge: Any, report: ReportSubmitted) -> ReportSubmitted:
    """From intake, as its message would bring it (an urgent one goes to the meldkamer at once)."""
    assert await receiving.receive_report(bridge.runtime, report, str(uuid.uuid4()), "report-intake") == "accepted"
    return report


async def verified(bridge: Any, report: ReportSubmitted, verdict: str, score: float = 0.4) -> None:
    result = VerificationCompleted(
        report_id=report.report_id,
        verdict=verdict,
        score=score,  # type: ignore[arg-type]
        verified_at=utcnow(),
    )
    assert await verdicts.receive_verification(bridge.runtime, result, str(uuid.uuid4()), "verification") == "applied"


async def stored(bridge: Any, report: ReportSubmitted) -> BridgeReport:
    async with bridge.runtime.db.sessions() as session:
        found = await session.get(BridgeReport, report.report_id)
    assert found is not None
    return found


async def incident(bridge: Any, incident_id: str) -> Incident:
    async with bridge.runtime.db.sessions() as session:
        found = await session.get(Incident, incident_id)
    assert found is not None
    return found


async def count(bridge: Any, table: Any) -> int:
    async with bridge.runtime.db.sessions() as session:
        return (await session.execute(select(func.count()).select_from(table))).scalar_one()


async def audited(bridge: Any, action: str) -> list[dict[str, Any]]:
    """The chain's entries of this action, oldest first."""
    entries = audit.entries
    async with bridge.runtime.db.sessions() as session:
        rows = (
            (await session.execute(select(entries).where(entries.c.action == action).order_by(entries.c.seq)))
            .mappings()
            .all()
        )
    return [dict(row) for row in rows]


async def told_citizen(bridge: Any, report: ReportSubmitted) -> list[str]:
    """The events on the citizen's timeline the bridge queued for intake, in order."""
    outbox = messaging.outbox
    async with bridge.runtime.db.sessions() as session:
        payloads = (
            (
                await session.execute(
                    select(outbox.c.payload)
                    .where(outbox.c.destination == "report-intake", outbox.c.kind == "report.events")
                    .order_by(outbox.c.id)
                )
            )
            .scalars()
            .all()
        )
    return [
        event["event"]
        for news in map(json.loads, payloads)
        if news["report_id"] == report.report_id
        for event in news["events"]
    ]


def outcome(answer: httpx.Response) -> tuple[str, dict[str, str]]:
    """Where a change sent the browser back to, and what it said there (done=1 or problem=...)."""
    assert answer.status_code == 303, (answer.status_code, answer.text[:500])
    location = urlsplit(answer.headers["location"])
    return location.path, {k: v[0] for k, v in parse_qs(location.query).items()}


def incident_path(incident_id: str) -> str:
    return f"/console/incidents/{incident_id}"


def rows_shown(page: str) -> set[str]:
    return set(re.findall(r'data-incident-id="([^"]+)"', page))


# ---- review decisions ----------------------------------------------------------------------------------------


async def test_a_report_held_for_review_is_forwarded_or_rejected_from_its_own_page(
    start_service: Callable[..., Any],
) -> None:
    bridge = await start_bridge(start_service)
    held = await arrives(bridge, a_report(1))
    await verified(bridge, held, "review")
    doubted = await arrives(bridge, a_report(2, where=AMSTERDAM))
    await verified(bridge, doubted, "review")
    assert (await stored(bridge, held)).state == "held_for_review"
    # A held report has no incident yet: no incident page can show it.
    assert (await stored(bridge, held)).incident_id is None and await count(bridge, Incident) == 0
    async with browser(bridge) as client:
        csrf = await log_in(client)
        listing = await client.get("/console/incidents")
        assert f'href="/console/reports/{held.report_id}"' in listing.text and held.reference in listing.text
        page = await client.get(f"/console/reports/{held.report_id}")
        assert page.status_code == 200
        for decision in ("forward", "reject"):
            assert f'action="/console/reports/{held.report_id}/{decision}"' in page.text
        back = f"/console/reports/{held.report_id}"

        answer = await client.post(
            f"/console/reports/{held.report_id}/forward", data={"csrf_token": csrf, "back": back}
        )
        assert outcome(answer) == (back, {"done": "1"})
        forwarded = await stored(bridge, held)
        assert forwarded.state == "forwarded" and forwarded.incident_id is not None
        assert (await incident(bridge, forwarded.incident_id)).delivery_state == "queued"
        assert [(e["actor"], e["target_id"]) for e in await audited(bridge, "review_forward")] == [
            ("dirk", held.report_id)
        ]
        assert await told_citizen(bridge, held) == ["under_review", "forwarded"]
        after = await client.get(f"/console/reports/{held.report_id}")
        assert f"/console/reports/{held.report_id}/forward" not in after.text  # decided: no buttons any more
        assert f'href="/console/incidents/{forwarded.incident_id}"' in after.text

        answer = await client.post(
            f"/console/reports/{doubted.report_id}/reject",
            data={"csrf_token": csrf, "back": f"/console/reports/{doubted.report_id}"},
        )
        assert outcome(answer) == (f"/console/reports/{doubted.report_id}", {"done": "1"})
        rejected = await stored(bridge, doubted)
        assert rejected.state == "rejected" and rejected.incident_id is None
        assert [(e["actor"], e["target_id"]) for e in await audited(bridge, "review_reject")] == [
            ("dirk", doubted.report_id)
        ]
        assert await told_citizen(bridge, doubted) == ["under_review", "rejected"]
        assert await count(bridge, Incident) == 1  # the rejected one made none

        # Decided once: a second decision is refused, in Dutch, and changes nothing.
        answer = await client.post(
            f"/console/reports/{doubted.report_id}/forward",
            data={"csrf_token": csrf, "back": f"/console/reports/{doubted.report_id}"},
        )
        path, said = outcome(answer)
        assert path == f"/console/reports/{doubted.report_id}" and "wacht niet op beoordeling" in said["problem"]
        assert (await stored(bridge, doubted)).state == "rejected"
        assert len(await audited(bridge, "review_forward")) == 1
        # A "back" that is not one of our pages is not followed.
        answer = await client.post(
            f"/console/reports/{doubted.report_id}/reject", data={"csrf_token": csrf, "back": "https://evil.example/x"}
        )
        assert outcome(answer)[0] == "/console/incidents"


# ---- merge and split ----------------------------------------------------------------------------------------


async def test_two_incidents_are_merged_and_an_unknown_one_is_a_problem_in_the_dispatchers_language(
    start_service: Callable[..., Any],
) -> None:
    bridge = await start_bridge(start_service)
    north = await arrives(bridge, a_report(1, where=AMSTERDAM, urgent=True, category="violence"))
    south = await arrives(bridge, a_report(2, where=UTRECHT, urgent=True, category="violence"))
    first, second = (await stored(bridge, north)).incident_id, (await stored(bridge, south)).incident_id
    assert first and second and first != second
    async with browser(bridge) as client:
        csrf = await log_in(client)
        page = await client.get(incident_path(first))
        assert f'<option value="{second}">' in page.text  # offered by name, not asked for by id

        answer = await client.post(f"{incident_path(first)}/merge", data={"csrf_token": csrf, "other_id": second})
        path, said = outcome(answer)
        assert said == {"done": "1"}
        survivor_id = path.removeprefix("/console/incidents/")
        assert survivor_id in (first, second)
        absorbed_id = second if survivor_id == first else first
        assert (await incident(bridge, survivor_id)).merged_into is None
        assert (await incident(bridge, absorbed_id)).merged_into == survivor_id
        assert {(await stored(bridge, r)).incident_id for r in (north, south)} == {survivor_id}
        merges = await audited(bridge, "merge_incidents")
        assert [(e["actor"], e["target_id"]) for e in merges] == [("dirk", survivor_id)]
        assert json.loads(merges[0]["detail"])["merged"] == [absorbed_id]
        survivor_page = await client.get(path)
        assert north.reference in survivor_page.text and south.reference in survivor_page.text

        answer = await client.post(f"{incident_path(survivor_id)}/merge", data={"csrf_token": csrf, "other_id": "nope"})
        path, said = outcome(answer)
        assert path == incident_path(survivor_id) and said["problem"] == "dit incident bestaat niet: nope"
        assert "dit incident bestaat niet: nope" in (await client.get(answer.headers["location"])).text
        # The merged one is no longer open: refused, with the reason.
        answer = await client.post(
            f"{incident_path(survivor_id)}/merge", data={"csrf_token": csrf, "other_id": absorbed_id}
        )
        assert "minstens twee open incidenten" in outcome(answer)[1]["problem"]

        assert (await client.get("/console/incidents?lang=en")).status_code == 200  # the session goes English
        answer = await client.post(f"{incident_path(survivor_id)}/merge", data={"csrf_token": csrf, "other_id": "nope"})
        assert outcome(answer) == (
            incident_path(survivor_id),
            {"problem": "no such incident: nope", "seal": outcome(answer)[1]["seal"]},
        )
    assert len(await audited(bridge, "merge_incidents")) == 1
    assert (await incident(bridge, survivor_id)).merged_into is None


async def test_a_report_is_split_off_its_incident_into_a_new_one(start_service: Callable[..., Any]) -> None:
    bridge = await start_bridge(start_service)
    first = await arrives(bridge, a_report(1, urgent=True, category="violence"))
    second = await arrives(bridge, a_report(2, urgent=True, category="violence"))
    old = (await stored(bridge, first)).incident_id
    assert old and (await stored(bridge, second)).incident_id == old  # one event: one incident
    async with browser(bridge) as client:
        csrf = await log_in(client)
        page = await client.get(incident_path(old))
        assert f'action="/console/reports/{second.report_id}/split"' in page.text

        answer = await client.post(
            f"/console/reports/{second.report_id}/split", data={"csrf_token": csrf, "back": incident_path(old)}
        )
        path, said = outcome(answer)
        assert said == {"done": "1"}
        new = path.removeprefix("/console/incidents/")
        assert new != old and (await stored(bridge, second)).incident_id == new
        assert (await stored(bridge, first)).incident_id == old
        assert (await incident(bridge, new)).split_from == old
        splits = await audited(bridge, "split_report")
        assert [(e["actor"], e["target_id"]) for e in splits] == [("dirk", second.report_id)]
        assert json.loads(splits[0]["detail"]) == {"from_incident": old, "to_incident": new}
        assert f'href="/console/incidents/{old}"' in (await client.get(path)).text  # split from, linked

        # The old incident has one report left: nothing to split off.
        answer = await client.post(
            f"/console/reports/{first.report_id}/split", data={"csrf_token": csrf, "back": incident_path(old)}
        )
        path, said = outcome(answer)
        assert path == incident_path(old) and "enige melding" in said["problem"]
        assert (await stored(bridge, first)).incident_id == old
        assert await count(bridge, Incident) == 2


# ---- Burgernet ------------------------------------------------------------------------------------------------


async def test_a_burgernet_action_is_started_and_a_wrong_form_starts_none(start_service: Callable[..., Any]) -> None:
    bridge = await start_bridge(start_service)
    report = await arrives(bridge, a_report(1, urgent=True, category="violence"))
    incident_id = (await stored(bridge, report)).incident_id
    assert incident_id
    form = {
        "looking_for": "person",
        "headline_nl": "Gezocht: man met rode jas",
        "description_nl": "Man van ongeveer 30, rode jas, op de fiets",
        "lat": str(UTRECHT[0]),
        "lon": str(UTRECHT[1]),
        "radius_m": "1000",
        "duration_minutes": "60",
    }
    async with browser(bridge) as client:
        csrf = await log_in(client)
        page = await client.get(incident_path(incident_id))
        assert f'action="/console/incidents/{incident_id}/burgernet"' in page.text
        # Proposed: the incident's centre rounded to about 100 m, said so; never the lone witness's exact place.
        assert 'id="bn-lat" name="lat"' in page.text and 'value="52.091"' in page.text
        assert 'value="5.121"' in page.text and 'value="52.0907"' not in page.text
        assert "100 m" in page.text or "100 meter" in page.text

        answer = await client.post(f"{incident_path(incident_id)}/burgernet", data={"csrf_token": csrf, **form})
        assert outcome(answer) == (incident_path(incident_id), {"done": "1"})
        async with bridge.runtime.db.sessions() as session:
            actions = (await session.execute(select(BurgernetAction))).scalars().all()
        assert len(actions) == 1
        action = actions[0]
        assert (action.incident_id, action.started_by, action.status, action.kind) == (
            incident_id,
            "dirk",
            "open",
            "action",
        )
        assert action.closes_at - action.started_at == timedelta(minutes=60)
        document = json.loads(action.document)
        assert document["area"]["circle"] == {"lat": UTRECHT[0], "lon": UTRECHT[1], "radius_m": 1000.0}
        assert document["headline_nl"] == form["headline_nl"]
        assert [e["actor"] for e in await audited(bridge, "burgernet.started")] == ["dirk"]
        assert action.reference in (await client.get(incident_path(incident_id))).text

        answer = await client.post(
            f"{incident_path(incident_id)}/burgernet", data={"csrf_token": csrf, **form, "radius_m": "10"}
        )  # below the 50 m minimum
        path, said = outcome(answer)
        assert path == incident_path(incident_id) and said["problem"] == "Controleer deze velden: radius_m"
        answer = await client.post(
            f"{incident_path(incident_id)}/burgernet", data={"csrf_token": csrf, **form, "lat": "abc"}
        )
        assert outcome(answer)[1]["problem"] == "Controleer de getallen in het formulier"
        answer = await client.post(
            f"{incident_path(incident_id)}/burgernet", data={"csrf_token": csrf, **form, "headline_nl": ""}
        )
        assert outcome(answer)[1]["problem"] == "Controleer deze velden: headline_nl"
        for blank in ({"headline_nl": "   "}, {"description_nl": " \t\n "}):  # spaces are no words
            answer = await client.post(
                f"{incident_path(incident_id)}/burgernet", data={"csrf_token": csrf, **form, **blank}
            )
            assert outcome(answer)[1]["problem"] == f"Controleer deze velden: {next(iter(blank))}"
        answer = await client.post(
            f"{incident_path(incident_id)}/burgernet", data={"csrf_token": csrf, **form, "duration_minutes": "0"}
        )  # not the default
        assert outcome(answer)[1]["problem"] == "Controleer deze velden: duration_minutes"
        answer = await client.post(
            f"{incident_path(incident_id)}/burgernet", data={"csrf_token": csrf, **form, "duration_minutes": "100000"}
        )
        assert outcome(answer)[1]["problem"] == "hoogstens 240 minuten"  # the bridge's own limit, in Dutch
        answer = await client.post("/console/incidents/nope/burgernet", data={"csrf_token": csrf, **form})
        assert outcome(answer) == (
            "/console/incidents/nope",
            {"problem": "dit incident bestaat niet", "seal": outcome(answer)[1]["seal"]},
        )
    assert await count(bridge, BurgernetAction) == 1
    assert len(await audited(bridge, "burgernet.started")) == 1


async def test_a_burgernet_action_is_closed_by_a_dispatcher_and_cancelled_only_by_a_supervisor(
    start_service: Callable[..., Any],
) -> None:
    bridge = await start_bridge(start_service)
    report = await arrives(bridge, a_report(1, urgent=True, category="violence"))
    incident_id = (await stored(bridge, report)).incident_id
    assert incident_id
    back = incident_path(incident_id)
    form = {
        "looking_for": "person",
        "headline_nl": "Gezocht: man met rode jas",
        "description_nl": "Rode jas",
        "lat": str(UTRECHT[0]),
        "lon": str(UTRECHT[1]),
        "radius_m": "1000",
        "duration_minutes": "60",
    }

    async def actions() -> list[BurgernetAction]:
        async with bridge.runtime.db.sessions() as session:
            return list((await session.execute(select(BurgernetAction).order_by(BurgernetAction.number))).scalars())

    async with browser(bridge) as client:
        csrf = await log_in(client)
        for _ in "12":
            await client.post(f"{back}/burgernet", data={"csrf_token": csrf, **form})
        first, second = await actions()
        assert f'action="/console/burgernet/{first.id}/close"' in (await client.get(back)).text
        answer = await client.post(
            f"/console/burgernet/{first.id}/close", data={"csrf_token": csrf, "back": back, "outcome": "found"}
        )
        assert outcome(answer) == (back, {"done": "1"})
        answer = await client.post(
            f"/console/burgernet/{second.id}/cancel", data={"csrf_token": csrf, "back": back, "reason": "dubbel"}
        )
        assert answer.status_code == 403  # a dispatcher does not cancel
    async with browser(bridge) as client:
        csrf = await log_in(client, "sara")
        answer = await client.post(
            f"/console/burgernet/{second.id}/cancel", data={"csrf_token": csrf, "back": back, "reason": "   "}
        )
        assert "problem" in outcome(answer)[1]  # a reason of spaces is no reason
        answer = await client.post(
            f"/console/burgernet/{second.id}/cancel",
            data={"csrf_token": csrf, "back": back, "reason": "dubbel gestart"},
        )
        assert outcome(answer) == (back, {"done": "1"})
    assert [(a.status, a.outcome, a.closed_by) for a in await actions()] == [
        ("closed", "found", "dirk"),
        ("cancelled", "cancelled", "sara"),
    ]


# ---- questions to the citizen -------------------------------------------------------------------------------


async def test_a_question_to_the_citizen_is_kept_and_sent_and_a_wrong_one_is_not(
    start_service: Callable[..., Any],
) -> None:
    bridge = await start_bridge(start_service)
    report = await arrives(bridge, a_report(1, urgent=True, category="violence"))
    incident_id = (await stored(bridge, report)).incident_id
    assert incident_id
    back = incident_path(incident_id)
    path = f"/console/reports/{report.report_id}/question"

    async def questions() -> list[BridgeMessage]:
        async with bridge.runtime.db.sessions() as session:
            return list((await session.execute(select(BridgeMessage).order_by(BridgeMessage.sent_at))).scalars())

    async with browser(bridge) as client:
        csrf = await log_in(client)
        answer = await client.post(path, data={"csrf_token": csrf, "back": back, "text": "  Welke kant op?  "})
        assert outcome(answer) == (back, {"done": "1"})
        kept = await questions()
        assert [(m.direction, m.author, m.text, m.report_id) for m in kept] == [
            ("to_citizen", "dirk", "Welke kant op?", report.report_id)
        ]
        outbox = messaging.outbox
        async with bridge.runtime.db.sessions() as session:
            sent = (
                await session.execute(
                    select(outbox.c.destination, outbox.c.payload).where(outbox.c.kind == "dispatcher.message")
                )
            ).all()
        assert [(d, json.loads(p)["message_id"], json.loads(p)["text"]) for d, p in sent] == [
            ("report-intake", kept[0].id, "Welke kant op?")
        ]
        asked = await audited(bridge, "ask_citizen")
        assert [(e["actor"], e["target_id"]) for e in asked] == [("dirk", report.report_id)]
        assert "Welke kant op?" not in (asked[0]["detail"] or "")  # the chain keeps the id, not the words
        assert "Welke kant op?" in (await client.get(back)).text

        for text in ("", "   ", "x" * 2001):
            answer = await client.post(path, data={"csrf_token": csrf, "back": back, "text": text})
            assert outcome(answer) == (back, {"problem": "Vraag: 1–2000", "seal": outcome(answer)[1]["seal"]})
        answer = await client.post(path, data={"csrf_token": csrf, "back": back, "text": "y" * 2000})
        assert outcome(answer) == (back, {"done": "1"})  # the longest allowed
        # A double click sends the same form (its nonce) twice, at once: the citizen is asked once.
        form = re.search(r'name="nonce" value="([^"]+)"', (await client.get(back)).text)
        assert form is not None
        twice = await asyncio.gather(
            *[
                client.post(path, data={"csrf_token": csrf, "back": back, "nonce": form.group(1), "text": "Hoe laat?"})
                for _ in "12"
            ]
        )
        assert [outcome(a) for a in twice] == [(back, {"done": "1"})] * 2
    assert [m.text for m in await questions()] == ["Welke kant op?", "y" * 2000, "Hoe laat?"]
    assert len(await audited(bridge, "ask_citizen")) == 3


# ---- dead letters --------------------------------------------------------------------------------------------


async def test_a_supervisor_replays_a_dead_letter_and_a_dispatcher_cannot(start_service: Callable[..., Any]) -> None:
    bridge = await start_bridge(start_service)
    report = await arrives(bridge, a_report(1, urgent=True, category="violence"))
    incident_id = (await stored(bridge, report)).incident_id
    outbox = messaging.outbox
    async with bridge.runtime.db.transaction() as session:  # as if the meldkamer refused it for good
        await session.execute(
            update(outbox)
            .where(outbox.c.destination == "meldkamer")
            .values(status=DEAD, attempts=7, last_error="HTTP 400: bad request")
        )
        await session.execute(
            update(Incident)
            .where(Incident.id == incident_id)  # type: ignore[arg-type]
            .values(delivery_state="dead_lettered")
        )
    async with bridge.runtime.db.sessions() as session:
        message_id = (
            await session.execute(select(outbox.c.message_id).where(outbox.c.destination == "meldkamer"))
        ).scalar_one()

    async def letter() -> tuple[str, int]:
        async with bridge.runtime.db.sessions() as session:
            row = (
                await session.execute(
                    select(outbox.c.status, outbox.c.attempts).where(outbox.c.message_id == message_id)
                )
            ).one()
        return row.status, row.attempts

    async with browser(bridge) as client:
        csrf = await log_in(client, "dirk")
        answer = await client.post(f"/console/dead-letters/{message_id}/replay", data={"csrf_token": csrf})
        assert answer.status_code == 403
        assert await letter() == (DEAD, 7)
    async with browser(bridge) as client:
        csrf = await log_in(client, "sara")
        supervision = await client.get("/console/supervision")
        assert f'action="/console/dead-letters/{message_id}/replay"' in supervision.text
        answer = await client.post(f"/console/dead-letters/{message_id}/replay", data={"csrf_token": csrf})
        assert outcome(answer) == ("/console/supervision", {"done": "1"})
        assert await letter() == (PENDING, 0)
        assert (await incident(bridge, incident_id)).delivery_state == "queued"  # type: ignore[arg-type]
        assert [(e["actor"], e["target_id"]) for e in await audited(bridge, "replay_dead_letter")] == [
            ("sara", message_id)
        ]
        # No longer dead: a second replay finds nothing, and says so.
        answer = await client.post(f"/console/dead-letters/{message_id}/replay", data={"csrf_token": csrf})
        path, said = outcome(answer)
        assert path == "/console/supervision" and said["problem"] == "geen onbestelbaar bericht met dit nummer"
    assert len(await audited(bridge, "replay_dead_letter")) == 1


# ---- the list's filters, the map, the language ----------------------------------------------------------------


async def test_the_incident_list_filters_and_its_rows_are_audited(start_service: Callable[..., Any]) -> None:
    bridge = await start_bridge(start_service)
    now = utcnow()
    made = {}
    async with bridge.runtime.db.transaction() as session:
        for name, category, priority, state in (
            ("urgent_fire", "fire", 1, "accepted"),
            ("urgent_theft", "theft", 1, "queued"),
            ("fire", "fire", 3, "queued"),
            ("theft", "theft", 2, "accepted"),
        ):
            made[name] = str(uuid.uuid4())
            session.add(
                Incident(
                    id=made[name],
                    category=category,
                    priority=priority,
                    delivery_state=state,
                    created_at=now,
                    updated_at=now,
                )
            )
    async with browser(bridge) as client:
        await log_in(client)
        assert rows_shown((await client.get("/console/incidents")).text) == set(made.values())
        assert rows_shown((await client.get("/console/incidents?priority=1")).text) == {
            made["urgent_fire"],
            made["urgent_theft"],
        }
        assert rows_shown((await client.get("/console/incidents?category=fire")).text) == {
            made["urgent_fire"],
            made["fire"],
        }
        assert rows_shown((await client.get("/console/incidents?category=fire&priority=3")).text) == {made["fire"]}
        assert (await client.get("/console/incidents?priority=9")).status_code == 422
        rows = await client.get("/console/incidents/rows?delivery_state=accepted", headers={"X-Console": "fetch"})
        assert rows.status_code == 200 and "<html" not in rows.text  # the rows alone
        assert rows_shown(rows.text) == {made["urgent_fire"], made["theft"]}
    listing = (await audited(bridge, "list_incidents"))[-1]
    assert listing["actor"] == "dirk" and "delivery_state='accepted'" in listing["detail"]
    assert made["urgent_fire"] in listing["detail"] and made["theft"] in listing["detail"]
    assert made["urgent_theft"] not in listing["detail"] and made["fire"] not in listing["detail"]


async def test_the_map_data_names_the_incidents_and_their_reports_places(start_service: Callable[..., Any]) -> None:
    bridge = await start_bridge(start_service)
    urgent = await arrives(bridge, a_report(1, where=AMSTERDAM, urgent=True, category="violence"))
    ordinary = await arrives(bridge, a_report(2, where=UTRECHT, category="theft"))
    await verified(bridge, ordinary, "forward", 0.9)
    held = await arrives(bridge, a_report(3, where=(51.44, 5.47)))
    await verified(bridge, held, "review")
    async with browser(bridge) as client:
        await log_in(client)
        before = len(await audited(bridge, "list_incidents"))
        answer = await client.get("/console/map/data", headers={"X-Console": "fetch"})
        assert answer.status_code == 200 and answer.headers["cache-control"] == "no-store"
        shown = {i["incident_id"]: i for i in answer.json()}
        assert len(await audited(bridge, "list_incidents")) == before + 1  # audited as the list is
    first, second = (await stored(bridge, urgent)).incident_id, (await stored(bridge, ordinary)).incident_id
    assert set(shown) == {first, second}  # the held report has no incident, so it is not on the map
    assert (shown[first]["priority"], shown[first]["category"]) == (1, "violence")
    assert shown[first]["reports"] == [
        {"reference": urgent.reference, "lat": AMSTERDAM[0], "lon": AMSTERDAM[1], "urgent": True}
    ]
    assert shown[second]["reports"] == [
        {"reference": ordinary.reference, "lat": UTRECHT[0], "lon": UTRECHT[1], "urgent": False}
    ]
    assert shown[first]["witnesses"] == 1 and shown[first]["label"].startswith("SPOED")
    async with browser(bridge) as stranger:
        answer = await stranger.get("/console/map/data", headers={"X-Console": "fetch"})
        assert answer.status_code == 401 and answer.json() == {"login": "none"}


async def test_the_language_chosen_on_a_page_stays_for_the_session(start_service: Callable[..., Any]) -> None:
    bridge = await start_bridge(start_service)

    def language(page: str) -> tuple[str, str]:
        found = re.search(r'<html lang="([a-z]+)">', page)
        heading = re.search(r"<h1>([^<]*)</h1>", page)
        assert found and heading
        return found.group(1), heading.group(1)

    async with browser(bridge) as client:
        await log_in(client)
        assert language((await client.get("/console/incidents")).text) == ("nl", "Incidenten")
        assert language((await client.get("/console/incidents?lang=en")).text) == ("en", "Incidents")
        assert language((await client.get("/console/incidents")).text) == ("en", "Incidents")  # no parameter
        assert '<html lang="en">' in (await client.get("/console/map")).text
        async with bridge.runtime.db.sessions() as session:
            assert (await session.execute(select(ConsoleSession.language))).scalar_one() == "en"
        assert language((await client.get("/console/map?lang=nl")).text)[0] == "nl"
        assert language((await client.get("/console/incidents")).text) == ("nl", "Incidenten")
        assert language((await client.get("/console/incidents?lang=fr")).text) == ("nl", "Incidenten")


# ---- what a dispatcher reads in a few seconds: names, places, clock times, open or closed --------------------

DOMPLEIN = (52.090737, 5.121420)  # Domplein 29, Utrecht: in the offline geocoder's gazetteer


async def add_incident(bridge: Any, **fields: Any) -> str:
    now = utcnow()
    incident_id = str(uuid.uuid4())
    values = {
        "category": "fire",
        "priority": 2,
        "delivery_state": "accepted",
        "created_at": now,
        "updated_at": now,
        "last_seen": now,
    }
    async with bridge.runtime.db.transaction() as session:
        session.add(Incident(id=incident_id, **{**values, **fields}))
    return incident_id


async def test_the_list_names_an_incident_by_its_meldkamer_number_its_address_and_the_clock(
    start_service: Callable[..., Any],
) -> None:
    bridge = await start_bridge(start_service)  # the offline geocoder: the embedded default
    created = utcnow() - timedelta(minutes=22)
    at_the_dom = await add_incident(
        bridge, meldkamer_incident_id="MK-2026-000123", lat=DOMPLEIN[0], lon=DOMPLEIN[1], created_at=created
    )
    near_the_dom = await add_incident(bridge, lat=DOMPLEIN[0] + 0.00496, lon=DOMPLEIN[1])  # some 550 m north
    nowhere = await add_incident(bridge, lat=52.7, lon=5.9)  # kilometres from any address it knows
    await IncidentAddresses(bridge.runtime).run_once()  # (the bridge's own loop may have been first)
    assert (await incident(bridge, at_the_dom)).address == "Domplein 29, 3512JE Utrecht"
    assert (await incident(bridge, nowhere)).address is None and (await incident(bridge, nowhere)).address_lat == 52.7
    async with browser(bridge) as client:
        await log_in(client)
        listing = (await client.get("/console/incidents")).text
        row = {i: re.search(rf'data-incident-id="{i}">(.*?)</tr>', listing, re.S) for i in (at_the_dom, near_the_dom)}
        assert row[at_the_dom] and row[near_the_dom]
        first = row[at_the_dom].group(1)
        assert "MK-2026-000123 · Brand" in first and "Domplein 29, Utrecht" in first  # no postcode: read faster
        clock = created.astimezone(DUTCH_TIME).strftime("%H:%M")
        assert f"{clock} · 22 min" in first and at_the_dom[:8] not in first.replace(at_the_dom, "")
        assert "550 m van Domplein 29, Utrecht" in row[near_the_dom].group(1)
        assert "52.70000, 5.90000" in listing  # no address near: its coordinates
        page = (await client.get(incident_path(at_the_dom))).text
        assert "<title>MK-2026-000123 · Brand · Burgermelding</title>" in page
        assert "Domplein 29, Utrecht" in page and "52.09074, 5.12142" in page  # the coordinates stay at hand
        english = (await client.get(incident_path(near_the_dom) + "?lang=en")).text
        assert "550 m from Domplein 29, Utrecht" in english and "no MK number yet" in english
        shown = {i["incident_id"]: i for i in (await client.get("/console/map/data")).json()}
        assert shown[at_the_dom]["label"] == "MK-2026-000123 · Fire"
        assert shown[at_the_dom]["place"] == "Domplein 29, Utrecht"


async def test_an_address_is_found_off_the_way_to_the_meldkamer_and_asked_again_when_pdok_was_down(
    start_service: Callable[..., Any],
) -> None:
    # The bridge's own loop asks a PDOK that is down (it backs off); this test drives a loop of its own.
    bridge = await start_bridge(start_service, geocoder="pdok", pdok_locatieserver_url=bridge_support.DOWN)

    class Pdok:  # PDOK's Locatieserver as the loop sees it: down at first
        def __init__(self) -> None:
            self.down, self.asked = True, []

        async def locate(self, address: str) -> None:
            return None

        async def describe(self, lat: float, lon: float) -> NearestAddress | None:
            self.asked.append((lat, lon))
            if self.down:
                raise GeocoderUnavailable("PDOK Locatieserver: 503")
            return NearestAddress("Domplein 29, 3512JE Utrecht", 12.0)

    pdok = Pdok()
    loop = IncidentAddresses(bridge.runtime, geocoder=pdok)
    report = await arrives(bridge, a_report(1, where=DOMPLEIN, urgent=True, category="violence"))
    incident_id = (await stored(bridge, report)).incident_id
    assert incident_id
    # Forwarded at once, the geocoder never asked on the way: the request is in the outbox without an address.
    assert len(await bridge_support.queued(bridge, "meldkamer.request_for_service")) == 1
    assert (await incident(bridge, incident_id)).address is None

    assert await loop.run_once() == 0 and loop.backoff >= loop.poll_seconds  # down: it waits, longer each time
    assert (await incident(bridge, incident_id)).address_lat is None
    pdok.down = False
    assert await loop.run_once() == 1 and loop.backoff == 0
    found = await incident(bridge, incident_id)
    assert (found.address, found.address_distance_m) == ("Domplein 29, 3512JE Utrecht", 12.0)
    assert (found.address_lat, found.address_lon) == (found.lat, found.lon)
    assert await loop.run_once() == 0 and len(pdok.asked) == 2  # known: not asked again
    async with bridge.runtime.db.transaction() as session:  # a report moved the centre
        await session.execute(update(Incident).where(Incident.id == incident_id).values(lat=52.0931))  # type: ignore[arg-type]
    assert await loop.run_once() == 1 and pdok.asked[-1] == (52.0931, found.lon)
    assert (await incident(bridge, incident_id)).address_lat == 52.0931


async def test_closed_incidents_leave_the_list_and_are_a_link_away(start_service: Callable[..., Any]) -> None:
    bridge = await start_bridge(start_service)
    made = {
        status or "new": await add_incident(bridge, operational_status=status)
        for status in (None, "Active", "ResourcesOnscene", "ReOpened", "Closed", "Cancelled")
    }
    still_open = {made[s] for s in ("new", "Active", "ResourcesOnscene", "ReOpened")}
    closed = {made["Closed"], made["Cancelled"]}
    async with browser(bridge) as client:
        await log_in(client)
        listing = await client.get("/console/incidents")
        assert rows_shown(listing.text) == still_open  # by default: the open ones only
        assert 'href="/console/incidents?show=closed"' in listing.text  # a plain link, no script needed
        assert 'name="show" value="open"' in listing.text  # the filter form keeps the choice
        shown = await client.get("/console/incidents?show=closed")
        assert rows_shown(shown.text) == closed and 'name="show" value="closed"' in shown.text
        assert rows_shown((await client.get("/console/incidents?show=all")).text) == still_open | closed
        assert (await client.get("/console/incidents?show=everything")).status_code == 422
        # The live rows and the map ask with the page's choice, and get the same incidents.
        assert 'data-source="/console/map/data?show=closed"' in shown.text
        fetch = {"X-Console": "fetch"}
        assert rows_shown((await client.get("/console/incidents/rows", headers=fetch)).text) == still_open
        rows = await client.get("/console/incidents/rows?show=closed", headers=fetch)
        assert rows_shown(rows.text) == closed
        on_map = await client.get("/console/map/data", headers=fetch)
        assert {i["incident_id"] for i in on_map.json()} == still_open
        priority_kept = await client.get("/console/incidents?priority=2&show=open")
        assert 'href="/console/incidents?priority=2&amp;show=closed"' in priority_kept.text
        assert rows_shown((await client.get("/console/map?show=closed")).text) == closed
    listing_audit = (await audited(bridge, "list_incidents"))[-1]
    assert "closed=True" in listing_audit["detail"]  # the map page's choice, audited with its ids


async def test_the_incident_page_counts_near_duplicates_and_links_to_them(start_service: Callable[..., Any]) -> None:
    bridge = await start_bridge(start_service)
    first = await arrives(bridge, a_report(1, urgent=True, category="violence"))
    second = await arrives(bridge, a_report(2, urgent=True, category="violence"))
    elsewhere = [str(uuid.uuid4()) for _ in range(100)]
    result = VerificationCompleted(
        report_id=second.report_id,
        verdict="forward",
        score=0.8,
        verified_at=utcnow(),
        near_duplicate_of_reports=[first.report_id, *elsewhere],
    )
    assert await verdicts.receive_verification(bridge.runtime, result, str(uuid.uuid4()), "verification") == "applied"
    incident_id = (await stored(bridge, second)).incident_id
    assert incident_id
    async with browser(bridge) as client:
        csrf = await log_in(client)
        page = (await client.get(incident_path(incident_id))).text
        collapsed = re.search(r'<details class="matches"[^>]*><summary>([^<]*)<', page)
        assert (
            collapsed and html.unescape(collapsed.group(1)).strip() == "Bijna gelijke foto's in andere meldingen: 101"
        )
        assert f'href="#report-{first.report_id}"' in page  # in this incident: a jump to it
        assert all(f'href="/console/reports/{other}"' in page for other in elsewhere)  # elsewhere: its page
        # The event leads, the actions sit in the side panel: a question from there reaches the chosen report.
        assert page.index('id="h-event"') < page.index('id="h-reports"') < page.index('class="side"')
        assert f'action="/console/reports/{second.report_id}/split"' in page.split('class="side"')[1]
        answer = await client.post(
            f"{incident_path(incident_id)}/question",
            data={"csrf_token": csrf, "report_id": second.report_id, "text": "Welke kant op?"},
        )
        assert outcome(answer) == (incident_path(incident_id), {"done": "1"})
    async with bridge.runtime.db.sessions() as session:
        asked = (await session.execute(select(BridgeMessage))).scalars().all()
    assert [(m.report_id, m.text) for m in asked] == [(second.report_id, "Welke kant op?")]
