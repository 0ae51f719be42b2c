"""Many witnesses, one incident: reports of one event join the incident the meldkamer has, incidents that turn
out to be one event are merged there, and every update carries the event as a whole. The bridge runs
in-process on a real database with its destinations down, so what it would send is read from its outbox."""

from __future__ import annotations

import asyncio
import contextlib
import json
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from bridge_support import post_internal
from sqlalchemy import select

from burgermelding_shared.contracts import CheckResult, PhotoRef, PhotoVerification, ReportSubmitted
from burgermelding_shared.eido import problems
from dispatch_bridge.accounts.users import AccountExists, create_user
from dispatch_bridge.models import BridgeReport, Incident, messaging

DAM = (52.3731, 4.8926)
METRE_LAT = 1 / 111_320


def witness(
    bridge: Any,
    n: int,
    *,
    north_m: float = 0.0,
    urgent: bool = True,
    category: str = "violence",
    description: str | None = None,
    minutes_ago: float = 0.0,
    tag: str | None = None,
) -> ReportSubmitted:
    digest = bridge.runtime.blobs.put_bytes(f"photo of witness {n} {uuid.uuid4()}".encode())
    now = datetime.now(UTC)
    return ReportSubmitted(
        report_id=str(uuid.uuid4()),
        reference=f"BM-2026-{n:06d}",
        category=category,
        description=description or f"Vechtpartij op de Dam, getuige {n}",
        location={"lat": DAM[0] + north_m * METRE_LAT, "lon": DAM[1]},
        observed_at=now - timedelta(minutes=minutes_ago),
        received_at=now,
        in_progress=urgent,
        photos=[
            PhotoRef(
                photo_id=f"photo-{n}",
                sha256=digest,
                sanitised_sha256=digest,
                content_type="image/jpeg",
                size_bytes=20,
                width=4000,
                height=3000,
            )
        ],
        submitter_tag=tag or f"installation-{n}",
        submitter_kind="installation",
    )


async def post(bridge: Any, path: str, body: Any, caller: str) -> Any:
    response = await post_internal(bridge, path, body, caller)
    assert response.status_code == 200, response.text
    return response.json()


async def send(bridge: Any, report: ReportSubmitted) -> None:
    await post(bridge, "/internal/v1/reports", report.model_dump_json(), "report-intake")


async def meldkamer_messages(bridge: Any) -> list[dict[str, Any]]:
    async with bridge.runtime.db.sessions() as session:
        rows = (
            (
                await session.execute(
                    select(messaging.outbox)
                    .where(messaging.outbox.c.destination == "meldkamer")
                    .order_by(messaging.outbox.c.id)
                )
            )
            .mappings()
            .all()
        )
    return [{**row, "payload": json.loads(row["payload"])} for row in rows]


async def incidents_of(bridge: Any) -> dict[str, list[str]]:
    async with bridge.runtime.db.sessions() as session:
        reports = (await session.execute(select(BridgeReport))).scalars().all()
    found: dict[str, list[str]] = {}
    for stored in reports:
        if stored.incident_id:
            found.setdefault(stored.incident_id, []).append(stored.report_id)
    return found


async def test_witnesses_of_one_event_join_its_incident_and_another_event_gets_its_own(bridge: Any) -> None:
    first = witness(bridge, 1)
    await send(bridge, first)
    later = [
        witness(bridge, n, north_m=(n % 12) * 10.0, category="robbery" if n % 3 else "violence") for n in range(2, 12)
    ]
    for report in later:
        await send(bridge, report)
    elsewhere = witness(bridge, 99, north_m=1000.0)  # a kilometre away: another event
    await send(bridge, elsewhere)
    incidents = await incidents_of(bridge)
    assert len(incidents) == 2
    event = next(reports for reports in incidents.values() if first.report_id in reports)
    assert sorted(event) == sorted([first.report_id, *[r.report_id for r in later]])

    messages = await meldkamer_messages(bridge)
    requests = [m for m in messages if m["kind"] == "meldkamer.request_for_service"]
    assert len(requests) == 2  # one incident per event, not one per witness
    updates = [m["payload"] for m in messages if m["kind"] == "meldkamer.update"]
    added = [u for u in updates if u["kind"] == "report_added"]
    assert len(added) == len(later)
    assert all(len(u["eido"]["mediaComponent"]) == 1 for u in added)  # each witness's photo reaches the incident
    assert all(problems(m["payload"]["eido"]) == [] for m in messages)
    summary = max((u["eventSummary"] for u in added), key=lambda s: s["version"])
    assert summary["witnessCount"] == 11 and summary["reportCount"] == 11
    assert 0 < summary["radiusMeters"] <= 130 and summary["inProgress"] is True
    assert len(summary["photos"]) == 11 and len(summary["descriptions"]) == 11
    first_summary = requests[0]["payload"]["eventSummary"]
    assert first_summary["witnessCount"] == 1 and first_summary["version"] == 1


async def test_one_phone_sending_many_reports_is_one_witness_and_repeats_are_shown_once(bridge: Any) -> None:
    for n in range(4):
        await send(bridge, witness(bridge, n, tag="the-same-phone", description="Twee mannen vechten!"))
    await send(bridge, witness(bridge, 7, description="twee MANNEN vechten"))
    await send(bridge, witness(bridge, 8, description="Eén man heeft een mes"))
    summary = (await meldkamer_messages(bridge))[-1]["payload"]["eventSummary"]
    assert summary["reportCount"] == 6 and summary["witnessCount"] == 3
    assert summary["descriptions"] == ["Twee mannen vechten!", "Eén man heeft een mes"]


async def test_an_ordinary_report_of_the_event_joins_after_its_forward_verdict(bridge: Any) -> None:
    await send(bridge, witness(bridge, 1))
    ordinary = witness(bridge, 2, urgent=False, north_m=50)
    await send(bridge, ordinary)
    assert len(await incidents_of(bridge)) == 1  # it waits for its verdict
    await post(
        bridge,
        "/internal/v1/verifications",
        {
            "report_id": ordinary.report_id,
            "verdict": "forward",
            "score": 0.9,
            "verified_at": datetime.now(UTC).isoformat(),
        },
        "verification",
    )
    incidents = await incidents_of(bridge)
    assert len(incidents) == 1 and len(next(iter(incidents.values()))) == 2


def verified_photo(report: ReportSubmitted, sharpness: float, *findings: str) -> dict[str, Any]:
    # As verification says it: the same picture in a nearby recent report is a finding, not a doubt.
    checks = [CheckResult(code=code, outcome="not_applicable", detail_en="x", detail_nl="x") for code in findings]
    return PhotoVerification(
        photo_id=report.photos[0].photo_id, sha256=report.photos[0].sha256, sharpness=sharpness, checks=checks
    ).model_dump(mode="json")


async def test_the_photos_are_ordered_best_first(bridge: Any) -> None:
    reports = [witness(bridge, n, north_m=n * 5.0) for n in range(4)]
    for report in reports:
        await send(bridge, report)
    qualities = [(0.9, 5.0, ()), (0.9, 40.0, ()), (0.9, 80.0, ("near_duplicate",)), (None, 0.0, ())]
    for report, (score, sharpness, findings) in zip(reports, qualities, strict=True):
        if score is None:
            continue  # not verified yet
        await post(
            bridge,
            "/internal/v1/verifications",
            {
                "report_id": report.report_id,
                "verdict": "forward",
                "score": score,
                "photos": [verified_photo(report, sharpness, *findings)],
                "verified_at": datetime.now(UTC).isoformat(),
            },
            "verification",
        )
    summary = max(
        (m["payload"]["eventSummary"] for m in await meldkamer_messages(bridge) if m["payload"].get("eventSummary")),
        key=lambda s: s["version"],
    )
    order = [p["reportReference"] for p in summary["photos"]]
    # Verified and sharp first, then verified but blurred, then the duplicate, then the unverified one.
    assert order == [reports[1].reference, reports[0].reference, reports[2].reference, reports[3].reference]
    assert summary["photos"][2]["duplicate"] is True and summary["photos"][3]["verified"] is None


async def tried_to_send_both_requests(bridge: Any) -> None:
    for _ in range(200):  # bounded: the relay tries at once, the destination is down
        requests = [m for m in await meldkamer_messages(bridge) if m["kind"] == "meldkamer.request_for_service"]
        if len(requests) == 2 and all(m["attempts"] >= 1 for m in requests):
            return
        await asyncio.sleep(0.02)
    raise AssertionError("the relay never tried the requests")


async def merge_groups(bridge: Any, kept: ReportSubmitted, merged: ReportSubmitted) -> None:
    """Verification's merge pass found reports in between that make the two one event."""
    await post(
        bridge,
        "/internal/v1/group-merges",
        {
            "group_id": "g-kept",
            "merged_group_id": "g-merged",
            "report_ids": [kept.report_id],
            "merged_report_ids": [merged.report_id],
            "merged_at": datetime.now(UTC).isoformat(),
        },
        "verification",
    )


async def test_an_incident_merged_before_its_request_went_out_never_reaches_the_meldkamer(bridge: Any) -> None:
    await bridge.runtime.relay.stop()  # nothing goes out: the second request is still unsent at the merge
    north, south = witness(bridge, 1), witness(bridge, 2, north_m=-600.0)
    await send(bridge, north)
    await send(bridge, south)
    await merge_groups(bridge, north, south)
    requests = [m for m in await meldkamer_messages(bridge) if m["kind"] == "meldkamer.request_for_service"]
    assert sorted(r["status"] for r in requests) == ["cancelled", "pending"]
    merges = [m["payload"] for m in await meldkamer_messages(bridge) if m["payload"].get("kind") == "merged"]
    assert len(merges) == 1 and "mergeComponent" not in merges[0]["eido"]  # nothing to link: never there
    assert merges[0]["eventSummary"]["witnessCount"] == 2 and len(merges[0]["eido"]["mediaComponent"]) == 1
    assert problems(merges[0]["eido"]) == []
    async with bridge.runtime.db.sessions() as session:
        states = sorted(i.delivery_state for i in (await session.execute(select(Incident))).scalars())
    assert states == ["cancelled", "queued"]


async def test_two_incidents_of_one_event_are_merged_and_the_meldkamer_is_told(bridge: Any) -> None:
    north = witness(bridge, 1, north_m=0.0)
    south = witness(bridge, 2, north_m=-600.0)  # too far for the rule alone: two incidents
    await send(bridge, north)
    await send(bridge, south)
    assert len(await incidents_of(bridge)) == 2
    await tried_to_send_both_requests(bridge)  # so the meldkamer may have both
    await merge_groups(bridge, north, south)
    incidents = await incidents_of(bridge)
    assert len(incidents) == 1 and len(next(iter(incidents.values()))) == 2
    async with bridge.runtime.db.sessions() as session:
        rows = {i.id: i for i in (await session.execute(select(Incident))).scalars()}
    survivor = next(i for i in rows.values() if i.merged_into is None)
    absorbed = next(i for i in rows.values() if i.merged_into is not None)
    assert absorbed.merged_into == survivor.id
    merges = [m["payload"] for m in await meldkamer_messages(bridge) if m["payload"].get("kind") == "merged"]
    assert all(problems(m["eido"]) == [] for m in merges)
    told = {
        (m["requestId"], c["incidentMergeDirectionCode"], c["incidentTrackingIdentifier"])
        for m in merges
        for c in m["eido"]["mergeComponent"]
    }

    def tracking(incident: Incident) -> str:
        return f"urn:emergency:uid:incidentid:{incident.id}:burgermelding.politie.nl"

    assert told == {(absorbed.id, "REPLACED", tracking(survivor)), (survivor.id, "REPLACING", tracking(absorbed))}
    to_survivor = next(m for m in merges if m["requestId"] == survivor.id)
    assert to_survivor["eventSummary"]["witnessCount"] == 2 and len(to_survivor["eido"]["mediaComponent"]) == 1

    # The dispatchers' API shows one incident with all reports.
    await create_user(bridge.runtime.db, "anna", "a long enough password", "dispatcher")
    token = (
        await bridge.client.post("/v1/auth/token", data={"username": "anna", "password": "a long enough password"})
    ).json()
    listed = (
        await bridge.client.get("/v1/dispatch/incidents", headers={"Authorization": f"Bearer {token['access_token']}"})
    ).json()
    assert len(listed) == 1 and listed[0]["incident_id"] == survivor.id
    assert listed[0]["merged_from"] == [absorbed.id] and len(listed[0]["reports"]) == 2
    assert listed[0]["event"]["witnessCount"] == 2


async def test_a_report_held_for_review_is_forwarded_when_witnesses_corroborate_it(bridge: Any) -> None:
    await send(bridge, witness(bridge, 1))
    doubtful = witness(bridge, 2, urgent=False)
    await send(bridge, doubtful)
    base = {"report_id": doubtful.report_id, "verified_at": datetime.now(UTC).isoformat()}
    await post(bridge, "/internal/v1/verifications", {**base, "verdict": "review", "score": 0.4}, "verification")
    async with bridge.runtime.db.sessions() as session:
        assert (await session.get(BridgeReport, doubtful.report_id)).state == "held_for_review"
    again = {**base, "verdict": "forward", "score": 0.7, "assessment": 1, "independent_witnesses": 3}
    assert (await post(bridge, "/internal/v1/verifications", again, "verification"))["status"] == "applied"
    async with bridge.runtime.db.sessions() as session:
        stored = await session.get(BridgeReport, doubtful.report_id)
    assert stored.state == "forwarded" and stored.verified_assessment == 1
    assert len(await incidents_of(bridge)) == 1
    stale = {**base, "verdict": "review", "score": 0.4}
    assert (await post(bridge, "/internal/v1/verifications", stale, "verification"))["status"] == "stale"


async def test_a_cancelled_or_closed_incident_is_not_joined(bridge: Any) -> None:
    only = witness(bridge, 1)
    await send(bridge, only)
    await post(
        bridge,
        "/internal/v1/withdrawals",
        {"report_id": only.report_id, "withdrawn_at": datetime.now(UTC).isoformat()},
        "report-intake",
    )
    again = witness(bridge, 2)
    await send(bridge, again)  # its only witness withdrew: the meldkamer cancels it, so this is a new incident
    incidents = await incidents_of(bridge)
    assert len(incidents) == 2
    async with bridge.runtime.db.transaction() as session:
        stored = await session.get(BridgeReport, again.report_id)
        incident = await session.get(Incident, stored.incident_id)
        incident.operational_status = "Closed"  # the dispatcher closed it
    await send(bridge, witness(bridge, 3))
    assert len(await incidents_of(bridge)) == 3


async def test_a_witness_rejected_as_spam_no_longer_counts_for_the_event(bridge: Any) -> None:
    for n in range(3):
        await send(bridge, witness(bridge, n))
    spam = witness(bridge, 9, description="koop nu goedkope zonnebrillen")
    await send(bridge, spam)  # urgent: it joined before verification could say it is spam
    await post(
        bridge,
        "/internal/v1/verifications",
        {"report_id": spam.report_id, "verdict": "reject", "score": 0.0, "verified_at": datetime.now(UTC).isoformat()},
        "verification",
    )
    summary = max(
        (m["payload"]["eventSummary"] for m in await meldkamer_messages(bridge) if m["payload"].get("eventSummary")),
        key=lambda s: s["version"],
    )
    assert summary["witnessCount"] == 3 and summary["reportCount"] == 3
    assert "koop nu goedkope zonnebrillen" not in summary["descriptions"]


# ---- a dispatcher merges incidents and splits a report off ----


async def dispatcher(bridge: Any, role: str = "dispatcher") -> dict[str, str]:
    with contextlib.suppress(AccountExists):  # the desk's account, made the first time it is asked for
        await create_user(bridge.runtime.db, f"desk-{role}", "a long enough password", role)
    token = (
        await bridge.client.post(
            "/v1/auth/token", data={"username": f"desk-{role}", "password": "a long enough password"}
        )
    ).json()
    return {"Authorization": f"Bearer {token['access_token']}"}


async def incident_rows(bridge: Any) -> dict[str, Incident]:
    async with bridge.runtime.db.sessions() as session:
        return {i.id: i for i in (await session.execute(select(Incident))).scalars()}


async def incident_id_of(bridge: Any, report: ReportSubmitted) -> str:
    async with bridge.runtime.db.sessions() as session:
        return (await session.get(BridgeReport, report.report_id)).incident_id


async def audited(bridge: Any, action: str) -> list[dict[str, Any]]:
    log = (await bridge.client.get("/v1/dispatch/audit", headers=await dispatcher(bridge, "supervisor"))).json()
    return [e for e in log if e["action"] == action]


def notes_of(update: dict[str, Any]) -> str:
    return " ".join(n["notesActionComments"] for n in update["eido"]["notesComponent"])


async def test_a_dispatcher_merges_two_incidents_and_the_meldkamer_is_told_both_ways(bridge: Any) -> None:
    north, south = witness(bridge, 1), witness(bridge, 2, north_m=-600.0)  # too far apart for the rule alone
    await send(bridge, north)
    await send(bridge, south)
    kept, other = await incident_id_of(bridge, north), await incident_id_of(bridge, south)
    assert kept != other
    await tried_to_send_both_requests(bridge)  # so the meldkamer may have both
    desk = await dispatcher(bridge)
    answer = await bridge.client.post(
        f"/v1/dispatch/incidents/{other}/merge", json={"incident_ids": [kept]}, headers=desk
    )
    assert answer.status_code == 200, answer.text
    merged = answer.json()
    # The oldest goes on, whichever the dispatcher started from; the summary is the one the list shows.
    assert merged["incident_id"] == kept and merged["merged_from"] == [other]
    assert sorted(r["report_id"] for r in merged["reports"]) == sorted([north.report_id, south.report_id])
    assert merged["event"]["witnessCount"] == 2 and merged["split_from"] is None
    listed = (await bridge.client.get("/v1/dispatch/incidents", headers=desk)).json()
    assert [i["incident_id"] for i in listed] == [kept] and listed[0].keys() == merged.keys()
    assert (listed[0]["merged_from"], listed[0]["reports"]) == (merged["merged_from"], merged["reports"])
    assert {k: sorted(v) for k, v in (await incidents_of(bridge)).items()} == {
        kept: sorted([north.report_id, south.report_id])
    }
    assert (await incident_rows(bridge))[other].merged_into == kept

    merges = [m["payload"] for m in await meldkamer_messages(bridge) if m["payload"].get("kind") == "merged"]
    told = {
        (m["requestId"], c["incidentMergeDirectionCode"], c["incidentTrackingIdentifier"].split(":")[4])
        for m in merges
        for c in m["eido"]["mergeComponent"]
    }
    assert told == {(other, "REPLACED", kept), (kept, "REPLACING", other)}
    assert all(problems(m["eido"]) == [] for m in merges)
    [entry] = await audited(bridge, "merge_incidents")
    assert entry["username"] == "desk-dispatcher" and entry["target_id"] == kept
    assert entry["detail"]["merged"] == [other]


async def test_a_dispatchers_merge_cancels_a_request_that_never_went_out(bridge: Any) -> None:
    await bridge.runtime.relay.stop()  # nothing goes out: both requests are still unsent at the merge
    north, south = witness(bridge, 1), witness(bridge, 2, north_m=-600.0)
    await send(bridge, north)
    await send(bridge, south)
    kept, other = await incident_id_of(bridge, north), await incident_id_of(bridge, south)
    answer = await bridge.client.post(
        f"/v1/dispatch/incidents/{kept}/merge", json={"incident_ids": [other]}, headers=await dispatcher(bridge)
    )
    assert answer.status_code == 200, answer.text
    requests = {
        m["payload"]["requestId"]: m["status"]
        for m in await meldkamer_messages(bridge)
        if m["kind"] == "meldkamer.request_for_service"
    }
    assert requests == {kept: "pending", other: "cancelled"}
    assert (await incident_rows(bridge))[other].delivery_state == "cancelled"
    merges = [m["payload"] for m in await meldkamer_messages(bridge) if m["payload"].get("kind") == "merged"]
    assert [m["requestId"] for m in merges] == [kept] and "mergeComponent" not in merges[0]["eido"]


async def test_a_split_report_becomes_its_own_incident_and_verification_does_not_merge_it_back(bridge: Any) -> None:
    reports = [witness(bridge, n, north_m=n * 10.0) for n in range(3)]
    for report in reports:
        await send(bridge, report)
    old = await incident_id_of(bridge, reports[0])
    assert (await incidents_of(bridge)).keys() == {old}
    desk = await dispatcher(bridge)
    split_off = reports[2]
    answer = await bridge.client.post(f"/v1/dispatch/reports/{split_off.report_id}/split", headers=desk)
    assert answer.status_code == 200, answer.text
    new = answer.json()
    assert new["incident_id"] != old and new["split_from"] == old
    assert [r["report_id"] for r in new["reports"]] == [split_off.report_id] and new["event"]["witnessCount"] == 1
    rows = await incident_rows(bridge)
    assert rows[new["incident_id"]].split_from == old and rows[old].split_from is None
    assert sorted(map(sorted, (await incidents_of(bridge)).values())) == sorted(
        [sorted([reports[0].report_id, reports[1].report_id]), [split_off.report_id]]
    )

    messages = await meldkamer_messages(bridge)
    requests = [m["payload"] for m in messages if m["kind"] == "meldkamer.request_for_service"]
    assert [r["requestId"] for r in requests] == [old, new["incident_id"]]  # a request of its own
    own = requests[1]
    assert problems(own["eido"]) == [] and own["eventSummary"]["witnessCount"] == 1
    assert own["eido"]["$id"] != requests[0]["eido"]["$id"]
    removed = [m["payload"] for m in messages if m["payload"].get("kind") == "report_removed"]
    assert len(removed) == 1 and removed[0]["requestId"] == old and problems(removed[0]["eido"]) == []
    assert split_off.reference in notes_of(removed[0]) and new["incident_id"] in notes_of(removed[0])
    assert removed[0]["eventSummary"]["witnessCount"] == 2 and removed[0]["eventSummary"]["reportCount"] == 2
    assert split_off.reference not in {p["reportReference"] for p in removed[0]["eventSummary"]["photos"]}
    [entry] = await audited(bridge, "split_report")
    assert entry["target_id"] == split_off.report_id
    assert entry["detail"] == {"from_incident": old, "to_incident": new["incident_id"]}

    # Verification still finds them one group: neither its merge pass nor a verdict merges them back.
    await merge_groups(bridge, reports[0], split_off)
    await post(
        bridge,
        "/internal/v1/verifications",
        {
            "report_id": split_off.report_id,
            "verdict": "forward",
            "score": 0.9,
            "group_id": "g-kept",
            "group_reports": [reports[0].report_id, reports[1].report_id],
            "verified_at": datetime.now(UTC).isoformat(),
        },
        "verification",
    )
    assert len(await incidents_of(bridge)) == 2
    assert all(i.merged_into is None for i in (await incident_rows(bridge)).values())
    assert not [m for m in await meldkamer_messages(bridge) if m["payload"].get("kind") == "merged"]

    # A dispatcher who changes their mind may merge them again.
    again = await bridge.client.post(
        f"/v1/dispatch/incidents/{old}/merge", json={"incident_ids": [new["incident_id"]]}, headers=desk
    )
    assert again.status_code == 200, again.text
    assert again.json()["incident_id"] == old and len(again.json()["reports"]) == 3
    assert len(await incidents_of(bridge)) == 1


async def test_a_split_off_incident_is_kept_apart_from_the_one_it_left_in_any_order(bridge: Any) -> None:
    """The split goes both ways: the older incident may be the one split off (the survivor's order differs)."""
    first, second = witness(bridge, 1), witness(bridge, 2, north_m=20.0)
    await send(bridge, first)
    await send(bridge, second)
    desk = await dispatcher(bridge)
    old = await incident_id_of(bridge, first)
    new = (await bridge.client.post(f"/v1/dispatch/reports/{first.report_id}/split", headers=desk)).json()
    async with bridge.runtime.db.transaction() as session:  # the split-off one accepted: it would survive a merge
        (await session.get(Incident, new["incident_id"])).delivery_state = "accepted"
    await merge_groups(bridge, second, first)
    assert {await incident_id_of(bridge, first), await incident_id_of(bridge, second)} == {new["incident_id"], old}


async def test_merge_and_split_refuse_what_cannot_be_done(bridge: Any) -> None:
    desk = await dispatcher(bridge)
    alone = witness(bridge, 1)
    await send(bridge, alone)
    waiting = witness(bridge, 2, urgent=False, north_m=2000.0)  # waits for its verdict: in no incident
    await send(bridge, waiting)
    far = witness(bridge, 3, north_m=-3000.0)
    await send(bridge, far)
    incident, far_incident = await incident_id_of(bridge, alone), await incident_id_of(bridge, far)

    async def refused(path: str, body: Any = None, **headers: str) -> tuple[int, str, str]:
        answer = await bridge.client.post(path, json=body, headers={**desk, **headers})
        return answer.status_code, answer.json().get("error", ""), answer.json().get("detail", "")

    merge = f"/v1/dispatch/incidents/{incident}/merge"
    status, error, detail = await refused(merge, {"incident_ids": ["no-such-incident"]})
    assert (status, error) == (404, "incident_not_found") and "no-such-incident" in detail
    status, error, detail = await refused(
        "/v1/dispatch/incidents/no-such-incident/merge", {"incident_ids": [incident]}, **{"Accept-Language": "nl"}
    )
    assert (status, error) == (404, "incident_not_found") and "bestaat niet" in detail
    assert (await refused(merge, {"incident_ids": [incident]}))[:2] == (409, "incident_not_open")  # only itself
    async with bridge.runtime.db.transaction() as session:
        (await session.get(Incident, far_incident)).operational_status = "Closed"
    status, error, detail = await refused(merge, {"incident_ids": [far_incident]})
    assert (status, error) == (409, "incident_not_open") and f"{far_incident} is closed" in detail
    assert (await refused(merge, {"incident_ids": []}))[0] == 422
    assert (await refused(merge, {"incident_ids": [str(uuid.uuid4()) for _ in range(21)]}))[0] == 422
    assert (await refused(merge, {"incident_ids": ["x" * 37]}))[0] == 422
    assert (await incident_rows(bridge))[far_incident].merged_into is None

    split = "/v1/dispatch/reports/{}/split"
    assert (await refused(split.format("no-such-report")))[:2] == (404, "report_not_found")
    assert (await refused(split.format(waiting.report_id)))[:2] == (409, "report_not_forwarded")
    assert (await refused(split.format(alone.report_id)))[:2] == (409, "last_report_of_incident")
    assert len(await incidents_of(bridge)) == 2 and not await audited(bridge, "split_report")
    assert not await audited(bridge, "merge_incidents")
