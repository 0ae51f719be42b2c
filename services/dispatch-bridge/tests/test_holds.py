"""Issue #29: a legal hold holds, whatever happens to the incident: a report that joins while the hold is being
set is held too (a barrier inside the call to intake, not luck), holds follow merges both ways and splits, and
an evidence export says what retention removed before it instead of leaving it out silently. intake's side
(versions, locks) is tested in its own suite; here intake is the test's stand-in, which records what it is told.
"""

from __future__ import annotations

import io
import json
import uuid
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from bridge_support import api_login, queued, start_bridge
from sqlalchemy import select

from burgermelding_shared.contracts import PhotoRef, ReportSubmitted, RetentionApplied
from burgermelding_shared.timeutil import utcnow
from dispatch_bridge.desk import decisions
from dispatch_bridge.models import BridgeReport, Incident, LegalHold
from dispatch_bridge.records import evidence, holds, retention
from dispatch_bridge.reports import receiving

UTRECHT = (52.0907, 5.1214)
AMSTERDAM = (52.3731, 4.8926)  # some 35 km away: another event


@dataclass
class Person:
    username: str
    role: str


SARA = Person("sara", "supervisor")


@pytest.fixture
async def bridge(start_service: Callable[..., Any]) -> Any:
    """Its relay stopped: nothing leaves, the outbox keeps what the bridge would send."""
    return await start_bridge(start_service, relay=False, accounts=[("sara", "supervisor")])


@pytest.fixture
def intake_told(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    """intake's stand-in for the holds the bridge sets and lifts at once (answering as intake does)."""
    told: list[dict[str, Any]] = []
    told_hooks.clear()
    intake_lifted.clear()

    async def call_service(
        runtime: Any, service: str, method: str, path: str, body: dict | None = None
    ) -> httpx.Response:
        assert (service, method, path) == ("report-intake", "POST", "/internal/v1/legal-holds") and body
        told.append(body)
        hook = told_hooks.pop(0) if told_hooks else None
        if hook is not None:
            await hook()
        if body["hold_id"] in intake_lifted and body["active"]:  # as intake answers a lifted hold's id
            return httpx.Response(200, json={"held": [], "unknown": [], "stale": True})
        if not body["active"]:
            intake_lifted.add(body["hold_id"])
        return httpx.Response(200, json={"held": body["report_ids"] if body["active"] else [], "unknown": []})

    monkeypatch.setattr(holds, "call_service", call_service)
    return told


told_hooks: list[Callable[[], Any]] = []
intake_lifted: set[str] = set()


async def arrives(bridge: Any, n: int, where: tuple[float, float] = UTRECHT) -> ReportSubmitted:
    """An urgent report as intake sends it: into the open incident of its event, or a new one."""
    now = utcnow()
    photo = bridge.runtime.blobs.put_bytes(f"photo {n}".encode())
    report = ReportSubmitted(
        report_id=str(uuid.uuid4()),
        reference=f"BM-2026-{n:06d}",
        category="violence",
        description=f"Melding {n}",
        location={"lat": where[0], "lon": where[1]},
        observed_at=now,
        received_at=now,
        in_progress=True,
        submitter_tag=f"inst-{n}",
        submitter_kind="installation",
        photos=[
            PhotoRef(
                photo_id=f"ph{n}",
                sha256=photo,
                sanitised_sha256=None,
                content_type="image/jpeg",
                size_bytes=7,
                width=1,
                height=1,
            )
        ],
    )
    assert await receiving.receive_report(bridge.runtime, report, str(uuid.uuid4()), "report-intake") == "accepted"
    return report


async def incident_of(bridge: Any, report: ReportSubmitted) -> str:
    async with bridge.runtime.db.sessions() as session:
        stored = await session.get(BridgeReport, report.report_id)
    assert stored is not None and stored.incident_id
    return stored.incident_id


async def extensions(bridge: Any) -> list[dict[str, Any]]:
    """The legal hold messages queued for intake through the outbox, in order."""
    return await queued(bridge, "legal_hold")


def held_under(messages: list[dict[str, Any]], hold_id: str) -> set[str]:
    return {r for m in messages if m["hold_id"] == hold_id and m["active"] for r in m["report_ids"]}


async def hold_of(bridge: Any, incident_id: str) -> LegalHold:
    async with bridge.runtime.db.sessions() as session:
        hold = await holds.active_hold(session, incident_id)
    assert hold is not None, f"incident {incident_id} is not held"
    return hold


async def test_a_report_that_joins_while_the_hold_is_set_is_held(bridge: Any, intake_told: list[dict]) -> None:
    first = await arrives(bridge, 1)
    incident_id = await incident_of(bridge, first)
    joined: list[ReportSubmitted] = []

    async def another_witness_meanwhile() -> None:  # the barrier: intake is being asked right now
        joined.append(await arrives(bridge, 2))

    told_hooks.append(another_witness_meanwhile)
    answer = await holds.set_hold(bridge.runtime, SARA, incident_id, "zaak 2026-17")
    assert await incident_of(bridge, joined[0]) == incident_id
    assert intake_told[0]["report_ids"] == [first.report_id]  # what was read before the join
    hold = await hold_of(bridge, incident_id)
    assert answer["hold_id"] == hold.id and answer["reports_held"] == [first.report_id]
    assert held_under(await extensions(bridge), hold.id) == {joined[0].report_id}  # the join: by the outbox
    # And one that joins afterwards, as before.
    later = await arrives(bridge, 3)
    assert held_under(await extensions(bridge), hold.id) == {joined[0].report_id, later.report_id}
    assert all(m["version"] == 1 for m in await extensions(bridge))


async def test_a_held_incident_that_absorbs_another_holds_its_reports(bridge: Any, intake_told: list) -> None:
    held = await arrives(bridge, 1, UTRECHT)  # the older: it survives the merge
    other = await arrives(bridge, 2, AMSTERDAM)
    held_incident, other_incident = await incident_of(bridge, held), await incident_of(bridge, other)
    await holds.set_hold(bridge.runtime, SARA, held_incident, "zaak 2026-18")
    survivor = await decisions.merge_incidents(bridge.runtime, SARA, held_incident, [other_incident])
    assert survivor["incident_id"] == held_incident
    hold = await hold_of(bridge, held_incident)
    assert other.report_id in held_under(await extensions(bridge), hold.id)


async def test_a_held_incident_merged_into_another_makes_the_survivor_held(bridge: Any, intake_told: list) -> None:
    survivor_first = await arrives(bridge, 1, UTRECHT)  # the older: it survives
    held = await arrives(bridge, 2, AMSTERDAM)
    survivor_id, held_incident = await incident_of(bridge, survivor_first), await incident_of(bridge, held)
    first_hold = (await holds.set_hold(bridge.runtime, SARA, held_incident, "zaak 2026-19"))["hold_id"]
    merged = await decisions.merge_incidents(bridge.runtime, SARA, held_incident, [survivor_id])
    assert merged["incident_id"] == survivor_id
    follows = await hold_of(bridge, survivor_id)
    assert follows.follows_hold == first_hold and "zaak 2026-19" in follows.reason
    assert held_under(await extensions(bridge), follows.id) >= {survivor_first.report_id, held.report_id}
    # The survivor's later witnesses are held too (one where the merged event now lies).
    async with bridge.runtime.db.sessions() as session:
        now_at = await session.get(Incident, survivor_id)
    assert now_at is not None and now_at.lat is not None and now_at.lon is not None
    later = await arrives(bridge, 3, (now_at.lat, now_at.lon))
    assert await incident_of(bridge, later) == survivor_id
    assert later.report_id in held_under(await extensions(bridge), follows.id)


async def test_a_report_split_off_a_held_incident_stays_held_with_its_new_incident(
    bridge: Any, intake_told: list
) -> None:
    first, second = await arrives(bridge, 1), await arrives(bridge, 2)
    incident_id = await incident_of(bridge, first)
    assert await incident_of(bridge, second) == incident_id
    first_hold = (await holds.set_hold(bridge.runtime, SARA, incident_id, "zaak 2026-20"))["hold_id"]
    new = await decisions.split_report(bridge.runtime, SARA, second.report_id)
    follows = await hold_of(bridge, new["incident_id"])
    assert follows.follows_hold == first_hold
    assert second.report_id in held_under(await extensions(bridge), follows.id)
    assert (await hold_of(bridge, incident_id)).id == first_hold  # the old incident stays held


async def test_an_export_says_what_retention_removed_before_it(bridge: Any) -> None:
    kept, anonymised, purged = await arrives(bridge, 1), await arrives(bridge, 2), await arrives(bridge, 3)
    incident_id = await incident_of(bridge, kept)
    for report, action in ((anonymised, "anonymise"), (purged, "purge")):
        order = RetentionApplied(report_id=report.report_id, action=action, rule="test-rule", applied_at=utcnow())
        assert await retention.apply_retention(bridge.runtime, order, str(uuid.uuid4()), "report-intake") == "applied"
    path, signed = await evidence.export_evidence(bridge.runtime, SARA, incident_id)
    removed = {r["reference"]: r for r in signed["removed_by_retention"]}
    assert set(removed) == {anonymised.reference, purged.reference}
    assert removed[anonymised.reference]["photos"] == 1 and not removed[anonymised.reference]["report_removed"]
    assert removed[purged.reference]["report_removed"] is True
    with zipfile.ZipFile(io.BytesIO(path.read_bytes())) as package:
        manifest = json.loads(package.read("manifest.json"))
    about = manifest.get("about", manifest)
    assert about["complete"] is False
    assert {r["reference"] for r in about["removed_by_retention"]} == {anonymised.reference, purged.reference}
    # The supervisor is told at once, through the API.
    answer = await bridge.client.post(
        f"/v1/dispatch/incidents/{incident_id}/evidence-export", headers=await api_login(bridge, "sara")
    )
    assert answer.status_code == 200, answer.text
    assert answer.headers["evidence-complete"] == "false"
    assert set(answer.headers["evidence-removed-by-retention"].split(", ")) == {anonymised.reference, purged.reference}


async def test_a_late_copy_cannot_bring_back_what_retention_removed(bridge: Any) -> None:
    """A revision sent before a withdrawal and delivered after it (report messages travel without an ordering
    key) neither restores an anonymised report's words nor makes a purged report again."""
    anonymised, purged = await arrives(bridge, 1), await arrives(bridge, 2, AMSTERDAM)
    for report, action in ((anonymised, "anonymise"), (purged, "purge")):
        order = RetentionApplied(
            report_id=report.report_id, action=action, rule="withdrawn-by-citizen", applied_at=utcnow()
        )
        assert await retention.apply_retention(bridge.runtime, order, str(uuid.uuid4()), "report-intake") == "applied"
    for report in (anonymised, purged):
        late = report.model_copy(update={"revision": 1, "description": "Melding met woorden die weg moesten"})
        assert await receiving.receive_report(bridge.runtime, late, str(uuid.uuid4()), "report-intake") == "removed"
    async with bridge.runtime.db.sessions() as session:
        kept = await session.get(BridgeReport, anonymised.report_id)
        assert await session.get(BridgeReport, purged.report_id) is None
    assert kept is not None and "woorden" not in kept.submission and kept.revision == 0


async def test_two_supervisors_setting_a_hold_at_once_share_one(bridge: Any, intake_told: list) -> None:
    import asyncio

    report = await arrives(bridge, 1)
    incident_id = await incident_of(bridge, report)
    first, second = await asyncio.gather(*(holds.set_hold(bridge.runtime, SARA, incident_id, "zaak") for _ in range(2)))
    assert first["hold_id"] == second["hold_id"] == (await hold_of(bridge, incident_id)).id
    assert {m["hold_id"] for m in intake_told} == {first["hold_id"]}


async def test_a_hold_intake_did_not_confirm_is_lifted_again(bridge: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    report = await arrives(bridge, 1)
    incident_id = await incident_of(bridge, report)
    with pytest.raises(Exception) as refused:  # intake is down (the bridge's settings point nowhere)
        await holds.set_hold(bridge.runtime, SARA, incident_id, "zaak")
    assert getattr(refused.value, "status_code", None) == 503
    async with bridge.runtime.db.sessions() as session:
        assert await holds.active_hold(session, incident_id) is None
        [given_up] = (await session.execute(select(LegalHold))).scalars().all()
    assert given_up.version == holds.LIFTED
    lifts = [m for m in await extensions(bridge) if not m["active"]]
    assert [(m["hold_id"], m["version"]) for m in lifts] == [(given_up.id, holds.LIFTED)]


async def test_a_hold_intake_had_lifted_is_set_again_under_a_new_id(bridge: Any, intake_told: list) -> None:
    report = await arrives(bridge, 1)
    incident_id = await incident_of(bridge, report)
    first = (await holds.set_hold(bridge.runtime, SARA, incident_id, "zaak"))["hold_id"]
    intake_lifted.add(first)  # a lift that reached intake, whose record here was lost
    again = await holds.set_hold(bridge.runtime, SARA, incident_id, "zaak")
    assert again["hold_id"] != first and (await hold_of(bridge, incident_id)).id == again["hold_id"]


async def test_a_hold_on_a_merged_away_incident_holds_the_event(bridge: Any, intake_told: list) -> None:
    older, newer = await arrives(bridge, 1, UTRECHT), await arrives(bridge, 2, AMSTERDAM)
    survivor, merged = await incident_of(bridge, older), await incident_of(bridge, newer)
    await decisions.merge_incidents(bridge.runtime, SARA, survivor, [merged])
    answer = await holds.set_hold(bridge.runtime, SARA, merged, "zaak")
    assert answer["incident_id"] == survivor
    assert sorted(answer["reports_held"]) == sorted([older.report_id, newer.report_id])
    lifted = await holds.lift_hold(bridge.runtime, SARA, merged)
    assert lifted["active"] is False
    async with bridge.runtime.db.sessions() as session:
        assert await holds.active_hold(session, survivor) is None


async def test_lifting_an_event_lifts_the_holds_that_followed_it(bridge: Any, intake_told: list) -> None:
    older, newer = await arrives(bridge, 1, UTRECHT), await arrives(bridge, 2, AMSTERDAM)
    survivor, held = await incident_of(bridge, older), await incident_of(bridge, newer)
    first = (await holds.set_hold(bridge.runtime, SARA, held, "zaak"))["hold_id"]
    await decisions.merge_incidents(bridge.runtime, SARA, held, [survivor])  # the survivor's hold follows the first
    await holds.lift_hold(bridge.runtime, SARA, survivor)
    async with bridge.runtime.db.sessions() as session:
        left = (await session.execute(select(LegalHold).where(LegalHold.lifted_at.is_(None)))).scalars().all()
    assert left == []
    assert {m["hold_id"] for m in intake_told if not m["active"]} >= {first}
