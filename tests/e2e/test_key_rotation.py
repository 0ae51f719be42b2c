"""Rotating every service key and the meldkamer's webhook key, in production mode, while reports keep flowing.

Real processes: each step changes settings and restarts the services it names, as a rolling deploy would. A
report sent at every step must travel every hop (intake -> verification -> bridge -> meldkamer -> bridge ->
intake), each signed by the key of that moment; a refused credential would leave it stuck, and at the end the
old keys must be refused everywhere.
"""

from __future__ import annotations

import base64
import json
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from burgermelding_shared import webhooks
from tests.helpers import phone_photo, report_json
from tests.suite import (
    CALLERS,
    SERVICE_NAMES,
    Suite,
    follow,
    local_http,
    new_service_keys,
    production_secrets,
    service_key_settings,
    start_suite,
    submit,
    wait_ready,
)

# Runs on SQLite only (conftest.py, END_TO_END_DATABASES): service keys and webhook keys, which no database decides (production keys on PostgreSQL: test_production).
pytestmark = pytest.mark.runs_on("sqlite")

OLD_KEYS, NEW_KEYS = new_service_keys("2026-11"), new_service_keys("2026-12")
OLD_HOOK = {"hook-2026-11": "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()}
NEW_HOOK = {"hook-2026-12": "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()}


@pytest.fixture
def suite(tmp_path: Path) -> Iterator[Suite]:
    env = {
        **production_secrets(),
        **service_key_settings(OLD_KEYS),
        "BM_BRIDGE_MELDKAMER_WEBHOOK_KEYS": json.dumps(OLD_HOOK),
        "BM_MELDKAMER_WEBHOOK_KEYS": json.dumps(OLD_HOOK),
        # Each step's report is followed until the meldkamer closes it (its signed callbacks): closed at once.
        "BM_MELDKAMER_SCRIPT": json.dumps([["Active", 0.2], ["Closed", 0.6]]),
    }
    running = start_suite(tmp_path / "suite", env)
    yield running
    running.stop()


def redeploy(suite: Suite, changes: dict[str, str], services: list[str]) -> None:
    """New settings, then a restart of each service named: the services side by side, as each service's own
    rollout goes on independently of the others' (what is sent meanwhile waits in its outbox)."""
    suite.env.update(changes)
    for name in services:
        suite.kill_service(name, 15)
    for name in services:
        suite.launch_service(name)
    for name in services:
        wait_ready(suite.urls[name], suite.processes[name])


def a_report_travels_all_the_way(suite: Suite, n: int) -> None:
    place = {"lat": 52.3 + 0.05 * n, "lon": 4.9}  # each report an event of its own
    response = submit(
        suite,
        report_json(location=place, description=f"rotation step {n}"),
        [phone_photo(900 + n, **place)],
        f"rotation-{n}",
    )
    assert response.status_code == 202, response.text
    view = follow(suite, response.json(), "closed", limit_seconds=90)
    events = [item["event"] for item in view["timeline"]]
    # verified (verification called the bridge), forwarded and accepted (bridge and meldkamer), closed (a
    # signed callback, and the bridge calling intake): every hop worked with the keys of this step.
    assert view["status"] == "closed" and {"verified", "forwarded", "accepted", "closed"} <= set(events), events


def test_service_keys_and_webhook_keys_rotate_without_a_refused_call(suite: Suite) -> None:
    a_report_travels_all_the_way(suite, 0)

    # 1. Every service trusts its callers' new keys beside the old ones; the bridge accepts both webhook keys.
    redeploy(
        suite,
        {
            **service_key_settings(OLD_KEYS, also_trusted={n: [NEW_KEYS[n]] for n in NEW_KEYS}),
            "BM_BRIDGE_MELDKAMER_WEBHOOK_KEYS": json.dumps({**OLD_HOOK, **NEW_HOOK}),
        },
        list(CALLERS),
    )
    a_report_travels_all_the_way(suite, 1)

    # 2. Each service signs with its new key (the old ones still trusted); the meldkamer signs with both.
    redeploy(
        suite,
        {
            **service_key_settings(NEW_KEYS, also_trusted={n: [OLD_KEYS[n]] for n in OLD_KEYS}),
            "BM_MELDKAMER_WEBHOOK_KEYS": json.dumps({**OLD_HOOK, **NEW_HOOK}),
        },
        ["intake", "verification", "bridge", "meldkamer"],
    )
    a_report_travels_all_the_way(suite, 2)

    # 3. The meldkamer signs with the new webhook key only; then the old keys are dropped everywhere.
    redeploy(suite, {"BM_MELDKAMER_WEBHOOK_KEYS": json.dumps(NEW_HOOK)}, ["meldkamer"])
    a_report_travels_all_the_way(suite, 3)
    metrics = local_http().get(f"{suite.urls['bridge']}/metrics").text
    old_hook_id, new_hook_id = next(iter(OLD_HOOK)), next(iter(NEW_HOOK))
    assert f'bm_meldkamer_callbacks_total{{key_id="{new_hook_id}"}}' in metrics  # what tells the operator that
    before_drop = _count(metrics, old_hook_id)  # ... the old key has stopped, so it may go
    redeploy(
        suite,
        {**service_key_settings(NEW_KEYS), "BM_BRIDGE_MELDKAMER_WEBHOOK_KEYS": json.dumps(NEW_HOOK)},
        list(CALLERS),
    )
    a_report_travels_all_the_way(suite, 4)
    assert before_drop > 0
    for name in CALLERS:  # no call was refused for its key on the way
        assert "unknown_service_key" not in suite.log(name) and "bad_signature" not in suite.log(name), name

    # Old keys are refused now, by every service that trusted them.
    for callee, callers in CALLERS.items():
        for caller in callers:
            token = OLD_KEYS[caller].issue(SERVICE_NAMES[callee])
            answer = local_http().post(
                f"{suite.urls[callee]}/internal/v1/anything", headers={"Authorization": f"Bearer {token}"}, json={}
            )
            assert (answer.status_code, answer.json()["error"]) == (401, "unknown_service_key"), (caller, callee)
            fresh = local_http().post(
                f"{suite.urls[callee]}/internal/v1/anything",
                json={},
                headers={"Authorization": f"Bearer {NEW_KEYS[caller].issue(SERVICE_NAMES[callee])}"},
            )
            assert fresh.status_code == 404, (caller, callee)  # the new key is let in (to a path that is not there)
    body = b'{"transactionId": "t-old"}'
    stale_key = local_http().post(
        f"{suite.urls['bridge']}/v1/meldkamer/callbacks",
        content=body,
        headers=webhooks.signed_headers(OLD_HOOK, "old-hook-1", body),
    )
    assert (stale_key.status_code, stale_key.json()["error"]) == (401, "bad_signature")


def _count(metrics: str, key_id: str) -> float:
    line: Any = next(
        (
            line
            for line in metrics.splitlines()
            if line.startswith(f'bm_meldkamer_callbacks_total{{key_id="{key_id}"}}')
        ),
        None,
    )
    return float(line.split()[-1]) if line else 0.0
