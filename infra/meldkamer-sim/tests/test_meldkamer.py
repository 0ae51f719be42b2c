"""The simulated meldkamer: one incident per requestId, whatever the retries; its script as scheduled callbacks."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy import select

from burgermelding_shared.service_auth import development_key
from meldkamer_sim.config import MeldkamerSettings
from meldkamer_sim.models import messaging

AGENCY = "burgermelding.politie.nl"


def eido_for(request_id: str, **components: Any) -> dict[str, Any]:
    """A small EIDO as NENA-STA-021 has it: the incident's tracking id as root `$id`, references as `{"$ref"}`."""
    prologue = {"lastUpdateTimeStamp": "2026-12-01T20:00:00+00:00", "updatedByAgencyReference": {"$ref": AGENCY}}
    document = {
        "$id": f"urn:emergency:uid:incidentid:{request_id}:{AGENCY}",
        **prologue,
        "eidoVersion": "1.0",
        "issuingElementIdentification": f"dispatch-bridge.{AGENCY}",
        "agencyComponent": [
            {"$id": AGENCY, **prologue, "agencyRoleDescriptionRegistryText": ["CallReceiving"], "agencyType": ["psap"]}
        ],
        "incidentComponent": {
            "$id": f"incident-{request_id}",
            **prologue,
            "incidentTypeCommonRegistryText": "BURGLARY",
            "incidentCommonPriorityNumber": 6,
            "notesReference": [{"$ref": f"notes-{request_id}"}],
        },
        "notesComponent": [{"$id": f"notes-{request_id}", **prologue, "notesActionComments": "inbraak &amp; rook"}],
        "callbackComponent": [
            {
                "$id": f"callback-{request_id}",
                **prologue,
                "callBackInformationUri": ["http://evil.example/v1/meldkamer/callbacks"],
            }
        ],
    }
    for name, value in components.items():
        if value is None:
            document.pop(name, None)
        else:
            document[name] = value
    return document


ADMIN = {"Authorization": "Bearer dev-only-meldkamer-admin-token-change-me"}  # the development default


@pytest.fixture
async def meldkamer(start_service: Callable[..., Any]) -> Any:
    return await start_service(
        "meldkamer_sim",
        MeldkamerSettings,
        bridge_url="http://127.0.0.1:9",
        relay_poll_seconds=3600,
        script=[("Active", 0.0), ("Closed", 60.0)],
    )


async def request(meldkamer: Any, request_id: str, eido: dict | None = None) -> Any:
    token = development_key("dispatch-bridge").issue("meldkamer")
    return await meldkamer.client.post(
        "/v1/requests-for-service",
        json={"requestId": request_id, "eido": eido or eido_for(request_id)},
        headers={"Authorization": f"Bearer {token}"},
    )


async def test_the_same_request_id_always_yields_the_same_incident(meldkamer: Any) -> None:
    answers = await asyncio.gather(*(request(meldkamer, "req-1") for _ in range(5)))
    assert {a.status_code for a in answers} == {200}
    assert len({a.json()["incidentId"] for a in answers}) == 1
    assert (await request(meldkamer, "req-2")).json()["incidentId"] != answers[0].json()["incidentId"]
    incidents = (await meldkamer.client.get("/v1/incidents", headers=ADMIN)).json()
    assert sorted(i["requestId"] for i in incidents) == ["req-1", "req-2"]


async def test_the_incident_list_holds_citizens_words_and_needs_the_admin_token(meldkamer: Any) -> None:
    await request(meldkamer, "req-9")
    for headers in (
        {},
        {"Authorization": "Bearer wrong"},
        {"Authorization": f"Bearer {development_key('dispatch-bridge').issue('meldkamer')}"},
    ):
        refused = await meldkamer.client.get("/v1/incidents", headers=headers)
        assert refused.status_code == 401 and refused.json()["error"] == "admin_token_required"
        assert "req-9" not in refused.text
    assert [i["requestId"] for i in (await meldkamer.client.get("/v1/incidents", headers=ADMIN)).json()] == ["req-9"]


async def test_the_script_is_scheduled_as_signed_callbacks_to_the_configured_host(meldkamer: Any) -> None:
    await request(meldkamer, "req-3")
    async with meldkamer.runtime.db.sessions() as session:
        rows = (await session.execute(select(messaging.outbox).order_by(messaging.outbox.c.id))).mappings().all()
    assert [json.loads(r["payload"])["status"] for r in rows] == ["Active", "Closed"]
    assert [json.loads(r["payload"])["sequence"] for r in rows] == [0, 1]
    assert rows[1]["next_attempt_at"] > rows[0]["next_attempt_at"]
    assert all(r["destination"] == "dispatch-bridge" and r["path"] == "/v1/meldkamer/callbacks" for r in rows)


BROKEN_EIDOS = {  # what breaks NENA-STA-021, and the problem the meldkamer names
    "incident as a list": ({"incidentComponent": [{}]}, "one object"),
    "no incident type": (
        {
            "incidentComponent": {
                "$id": "i",
                "lastUpdateTimeStamp": "2026-12-01T20:00:00Z",
                "updatedByAgencyReference": {"$ref": AGENCY},
            }
        },
        "incidentTypeCommonRegistryText is required",
    ),
    "agency without role and type": (
        {
            "agencyComponent": [
                {
                    "$id": AGENCY,
                    "lastUpdateTimeStamp": "2026-12-01T20:00:00Z",
                    "updatedByAgencyReference": {"$ref": AGENCY},
                }
            ]
        },
        "agencyRoleDescriptionRegistryText is required",
    ),
    "bare string reference": ({"updatedByAgencyReference": AGENCY}, 'a reference {"$ref"'),
    "reference to nothing": ({"updatedByAgencyReference": {"$ref": "agency-x"}}, "no component of this document"),
    "null member": (
        {
            "notesComponent": [
                {
                    "$id": "notes-req-4",
                    "lastUpdateTimeStamp": "2026-12-01T20:00:00Z",
                    "updatedByAgencyReference": {"$ref": AGENCY},
                    "notesActionComments": "x",
                    "agentReference": None,
                }
            ]
        },
        "null is not a value",
    ),
    "undeclared member": ({"inProgress": True}, "not a member"),
    "location as JSON": (
        {
            "locationComponent": [
                {
                    "$id": "l",
                    "lastUpdateTimeStamp": "2026-12-01T20:00:00Z",
                    "updatedByAgencyReference": {"$ref": AGENCY},
                    "locationTypeDescriptionRegistryText": "CurrentIncident",
                    "locationByValue": {"latitude": 52.1, "longitude": 5.1},
                }
            ]
        },
        "PIDF-LO",
    ),
    "time without offset": ({"lastUpdateTimeStamp": "2026-12-01T20:00:00"}, "UTC offset"),
    "digest without its extension": (
        {
            "mediaComponent": [
                {
                    "$id": "m",
                    "lastUpdateTimeStamp": "2026-12-01T20:00:00Z",
                    "updatedByAgencyReference": {"$ref": AGENCY},
                    "uri": "http://x/p",
                    "contentType": "image/jpeg",
                    "digestSha256": "0" * 64,
                }
            ]
        },
        "not a member",
    ),
    "wrong version": ({"eidoVersion": "2.0"}, "one of 1.0"),
}


@pytest.mark.parametrize("case", BROKEN_EIDOS, ids=list(BROKEN_EIDOS))
async def test_a_document_that_breaks_the_eido_standard_is_refused(meldkamer: Any, case: str) -> None:
    change, problem = BROKEN_EIDOS[case]
    response = await request(meldkamer, "req-4", eido_for("req-4", **change))
    assert (response.status_code, response.json()["error"]) == (400, "invalid_eido"), response.text
    assert problem in response.json()["detail"]
    assert (await meldkamer.client.get("/v1/incidents", headers=ADMIN)).json() == []  # nothing stored
    assert (await request(meldkamer, "req-4")).status_code == 200  # the well-formed one is taken


async def test_faults_outage_and_errors_after_commit(meldkamer: Any) -> None:
    admin = {"Authorization": f"Bearer {meldkamer.settings.admin_token}"}
    assert (await meldkamer.client.put("/admin/faults", json={"error_rate": 1})).status_code == 401
    faults = {"error_rate": 1.0, "error_statuses": [503], "fail_after_commit": 1.0, "retry_after_seconds": 7}
    assert (await meldkamer.client.put("/admin/faults", json=faults, headers=admin)).status_code == 200
    failed = await request(meldkamer, "req-fault")
    assert failed.status_code == 503 and failed.headers["retry-after"] == "7"
    incidents = (await meldkamer.client.get("/v1/incidents", headers=ADMIN)).json()
    assert [i["requestId"] for i in incidents] == ["req-fault"]  # stored although the answer was an error
    await meldkamer.client.put("/admin/faults", json={}, headers=admin)
    assert (await request(meldkamer, "req-fault")).json()["incidentId"] == incidents[0]["incidentId"]
    await meldkamer.client.post("/admin/outage", json={"seconds": 30}, headers=admin)
    down = await request(meldkamer, "req-during-outage")
    assert (down.status_code, down.json()["error"]) == (503, "outage") and int(down.headers["retry-after"]) > 0


async def test_requests_without_the_bridges_credential_are_refused_unread(meldkamer: Any) -> None:
    for path in ("/v1/requests-for-service", "/v1/requests-for-service/req-1/updates"):
        response = await meldkamer.client.post(path, content=b"{broken", headers={"content-type": "application/json"})
        assert (response.status_code, response.json()["error"]) == (401, "missing_service_credential"), path
    assert (await meldkamer.client.get("/v1/incidents", headers=ADMIN)).status_code == 200


def summary(version: int, witnesses: int) -> dict[str, Any]:
    return {
        "version": version,
        "witnessCount": witnesses,
        "reportCount": witnesses,
        "firstObserved": "2026-12-01T20:00:00+00:00",
        "lastObserved": "2026-12-01T20:01:00+00:00",
        "centre": {"lat": 52.37, "lon": 4.89},
        "radiusMeters": 80.0,
        "inProgress": True,
        "dangerToLife": False,
        "descriptions": ["vechtpartij"],
        "photos": [],
    }


def merged_into(request_id: str, other: str) -> dict[str, Any]:
    """An update's EIDO saying that this incident was taken into the other (MergeInformationType REPLACED)."""
    merge = {
        "$id": f"merge-{request_id}",
        "lastUpdateTimeStamp": "2026-12-01T20:05:00+00:00",
        "updatedByAgencyReference": {"$ref": AGENCY},
        "incidentMergeDirectionCode": "REPLACED",
        "incidentTrackingIdentifier": f"urn:emergency:uid:incidentid:{other}:{AGENCY}",
    }
    return eido_for(
        request_id, incidentComponent=None, notesComponent=None, callbackComponent=None, mergeComponent=[merge]
    )


async def update(meldkamer: Any, request_id: str, **fields: Any) -> Any:
    token = development_key("dispatch-bridge").issue("meldkamer")
    fields.setdefault("eido", eido_for(request_id, incidentComponent=None, callbackComponent=None))
    body = {
        "updateId": f"u-{request_id}-{fields.get('kind')}-{len(json.dumps(fields))}",
        "requestId": request_id,
        "kind": "report_added",
        **fields,
    }
    return await meldkamer.client.post(
        f"/v1/requests-for-service/{request_id}/updates", json=body, headers={"Authorization": f"Bearer {token}"}
    )


async def test_the_newest_event_summary_is_kept_and_a_merge_is_recorded(meldkamer: Any) -> None:
    token = development_key("dispatch-bridge").issue("meldkamer")
    for request_id in ("req-north", "req-south"):
        await meldkamer.client.post(
            "/v1/requests-for-service",
            json={"requestId": request_id, "eido": eido_for(request_id), "eventSummary": summary(1, 1)},
            headers={"Authorization": f"Bearer {token}"},
        )
    assert (await update(meldkamer, "req-north", eventSummary=summary(3, 3))).status_code == 200
    assert (await update(meldkamer, "req-north", kind="verification", eventSummary=summary(2, 2))).status_code == 200
    merged = await update(meldkamer, "req-south", kind="merged", eido=merged_into("req-south", "req-north"))
    assert merged.status_code == 200, merged.text
    incidents = {i["requestId"]: i for i in (await meldkamer.client.get("/v1/incidents", headers=ADMIN)).json()}
    assert incidents["req-north"]["eventSummary"]["witnessCount"] == 3  # version 2 came late: ignored
    assert incidents["req-south"]["mergedInto"] == incidents["req-north"]["incidentId"]
    async with meldkamer.runtime.db.sessions() as session:
        states = {r["message_id"]: r["status"] for r in (await session.execute(select(messaging.outbox))).mappings()}
    south = incidents["req-south"]["incidentId"]
    assert {states[f"{south}-0"], states[f"{south}-1"]} == {"cancelled"}  # its dispatcher script stops
    north = incidents["req-north"]["incidentId"]
    assert states[f"{north}-1"] == "pending"
    unknown = await update(meldkamer, "req-north", kind="merged", eido=merged_into("req-north", "req-not-yet"))
    assert unknown.status_code == 409  # the incident merged into has not arrived yet: asked again later


def test_in_production_the_meldkamer_holds_only_the_bridges_public_key_and_its_webhook_keys() -> None:
    """It makes no service credential, so it needs no private key; a private key in its trust is refused."""
    import base64

    from burgermelding_shared.service_auth import new_key

    bridge = new_key("dispatch-bridge", "bridge-1")
    real = {
        "environment": "production",
        "admin_token": "a" * 40,
        "webhook_keys": {"hook-1": "whsec_" + base64.b64encode(b"w" * 32).decode()},
    }
    MeldkamerSettings(**real, trusted_service_keys={"dispatch-bridge": [bridge.public_jwk()]})
    with pytest.raises(ValueError, match="private key"):
        MeldkamerSettings(**real, trusted_service_keys={"dispatch-bridge": [bridge.private_jwk()]})
    published = {name: value for name, value in real.items() if name != "webhook_keys"}
    with pytest.raises(ValueError, match="placeholder"):  # the development webhook key
        MeldkamerSettings(**published, trusted_service_keys={"dispatch-bridge": [bridge.public_jwk()]})
    with pytest.raises(ValueError, match="at least one"):
        MeldkamerSettings(webhook_keys={})
    with pytest.raises(ValueError, match="whsec"):
        MeldkamerSettings(webhook_keys={"hook-1": "not base64 !"})


async def test_the_fault_seed_is_said_at_start_and_replays_the_same_faults(start_service: Callable[..., Any]) -> None:
    """A chaos run can be replayed: the faults are drawn from `fault_seed`, and the seed (given or drawn) is
    logged at start. The same seed fails the same requests in the same way; another seed, others."""
    import logging

    from meldkamer_sim.faults import Faults

    said: list[logging.LogRecord] = []
    handler = logging.Handler()
    handler.emit = said.append  # type: ignore[method-assign]
    logger = logging.getLogger("meldkamer_sim.main")
    logger.addHandler(handler)
    faults = Faults(error_rate=0.5, error_statuses=[500, 503, 429], fail_after_commit=0.5)

    async def run(name: str, seed: int | None) -> list[int]:
        """The answers to 24 requests of a meldkamer started with the seed, and how many incidents it stored.
        (On SQLite the meldkamers of one test share their database: each run's requests have ids of their own,
        and no script, so that no earlier meldkamer's relay writes callbacks while a later one is asked.)"""
        meldkamer = await start_service(
            "meldkamer_sim",
            MeldkamerSettings,
            bridge_url="http://127.0.0.1:9",
            relay_poll_seconds=3600,
            faults=faults,
            fault_seed=seed,
            script=[],
        )
        incidents_before = len((await meldkamer.client.get("/v1/incidents", headers=ADMIN)).json())
        answers = [(await request(meldkamer, f"req-{name}-{n}")).status_code for n in range(24)]
        stored = len((await meldkamer.client.get("/v1/incidents", headers=ADMIN)).json()) - incidents_before
        return [*answers, stored]

    try:
        first, again = await run("first", 1234), await run("again", 1234)
        other, unseeded = await run("other", 4321), await run("unseeded", None)
        drawn = said[-1].fault_seed  # type: ignore[attr-defined]
        replayed = await run("replayed", drawn)
    finally:
        logger.removeHandler(handler)
    assert set(first[:-1]) == {200, 500, 503, 429}  # faults of every kind happened...
    assert first == again and unseeded == replayed  # ...and the same seed made the same ones, stored or not
    assert other != first
    seeds = [record.fault_seed for record in said]  # type: ignore[attr-defined]
    assert seeds == [1234, 1234, 4321, drawn, drawn] and isinstance(drawn, int)
    assert "BM_MELDKAMER_FAULT_SEED=1234" in said[0].getMessage()


async def test_an_operator_ends_an_incident_at_once_and_the_script_stops(meldkamer: Any) -> None:
    incident_id = (await request(meldkamer, "req-end")).json()["incidentId"]
    refused = await meldkamer.client.post(f"/admin/incidents/{incident_id}/end", json={"status": "Closed"})
    assert refused.status_code == 401
    ended = await meldkamer.client.post(f"/admin/incidents/{incident_id}/end", json={"status": "Closed"}, headers=ADMIN)
    assert ended.json() == {"incident_id": incident_id, "status": "Closed"}
    async with meldkamer.runtime.db.sessions() as session:
        rows = (await session.execute(select(messaging.outbox).order_by(messaging.outbox.c.id))).mappings().all()
    states = {r["message_id"]: r["status"] for r in rows}
    assert states[f"{incident_id}-operator"] == "pending"  # the operator's callback, due now
    assert states[f"{incident_id}-1"] == "cancelled"  # the script's later "Closed" is called off
    payload = next(r["payload"] for r in rows if r["message_id"] == f"{incident_id}-operator")
    callback = payload if isinstance(payload, dict) else json.loads(payload)
    assert callback["status"] == "Closed" and callback["sequence"] > 1000
    incidents = (await meldkamer.client.get("/v1/incidents", headers=ADMIN)).json()
    assert [i["status"] for i in incidents if i["incidentId"] == incident_id] == ["Closed"]
    for wrong, status in (("MK-1999-000001", "Closed"), (incident_id, "Open")):
        answer = await meldkamer.client.post(f"/admin/incidents/{wrong}/end", json={"status": status}, headers=ADMIN)
        assert answer.status_code == (404 if wrong != incident_id else 422)
