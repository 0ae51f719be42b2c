"""The production configuration, without Docker: production mode, PostgreSQL, the S3 store, each service installed
from its own package in its own environment, two replicas of every service behind nginx.

A burst of reports goes in while one replica of each service is killed (SIGKILL), and afterwards every report
that was accepted is at the meldkamer exactly once. A photo sent twice, through different replicas, is found
as a duplicate. This runs in the suite's PostgreSQL pass (production runs on PostgreSQL, not SQLite).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.databases import (
    REDIS_URL,
    create_database,
    drop_database,
    drop_redis_keys,
    redis_keyspace,
)
from tests.helpers import phone_photo, report_json
from tests.loadbalancer import LoadBalancer, start_nginx
from tests.s3 import S3Server, start_s3_server
from tests.standalone import standalone_python
from tests.suite import (
    FAST_SCRIPT,
    SERVICES,
    Phone,
    credential_in,
    die_with_parent,
    free_port,
    local_http,
    production_secrets,
    wait_ready,
    wiring,
)
from tests.suite import meldkamer_incidents as meldkamer_list

# Runs on PostgreSQL only (conftest.py, END_TO_END_DATABASES): the production configuration runs on PostgreSQL.
pytestmark = pytest.mark.runs_on("postgresql")

REPLICAS = 2


@dataclass
class Deployment:
    folder: Path
    env: dict[str, str]
    pythons: dict[str, str]
    fronts: dict[str, str] = field(default_factory=dict)  # service -> the load balancer's address for it
    replica_ports: dict[str, list[int]] = field(default_factory=dict)
    processes: dict[tuple[str, int], subprocess.Popen[bytes]] = field(default_factory=dict)
    databases: list[str | None] = field(default_factory=list)
    balancer: LoadBalancer | None = None
    s3: S3Server | None = None
    redis_prefix: str = ""
    bucket: str = ""

    def replica_url(self, name: str, index: int) -> str:
        return f"http://127.0.0.1:{self.replica_ports[name][index]}"

    def start_replica(self, name: str, index: int) -> None:
        package, prefix = SERVICES[name]
        env = {**self.env, f"{prefix}PORT": str(self.replica_ports[name][index])}
        log = (self.folder / f"{name}-{index}.log").open("ab")
        process = subprocess.Popen(
            [self.pythons[name], "-m", package, "serve"],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=die_with_parent,
        )
        self.processes[(name, index)] = process
        wait_ready(self.replica_url(name, index), process)

    def kill(self, name: str, index: int) -> None:
        process = self.processes.pop((name, index))
        with suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=30)

    def stop(self) -> None:
        for name, index in list(self.processes):
            process = self.processes.pop((name, index))
            with suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGTERM)
            with suppress(subprocess.TimeoutExpired):
                process.wait(timeout=20)
        if self.balancer:
            self.balancer.stop()
        if self.s3:
            self.s3.stop()
        for database in self.databases:
            drop_database(database)


@pytest.fixture(scope="module")
def deployment(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    folder = tmp_path_factory.mktemp("production")
    pythons = {name: standalone_python(name) for name in SERVICES}
    env = {k: v for k, v in os.environ.items() if not k.startswith("BM_") or k.startswith("BM_TEST_")}
    deployment = Deployment(folder, env, pythons)
    try:
        deployment.s3 = start_s3_server()
        deployment.bucket = deployment.s3.new_bucket()
        fronts = {name: free_port() for name in SERVICES}
        deployment.replica_ports = {name: [free_port() for _ in range(REPLICAS)] for name in SERVICES}
        deployment.fronts = {name: f"http://127.0.0.1:{port}" for name, port in fronts.items()}
        env.update(production_secrets())
        deployment.redis_prefix = redis_keyspace()
        for name, (package, prefix) in SERVICES.items():
            env.update({f"{prefix}REDIS_URL": REDIS_URL, f"{prefix}REDIS_KEY_PREFIX": deployment.redis_prefix})
            url, database = create_database(name, folder)
            deployment.databases.append(database)
            env.update(
                {
                    **deployment.s3.env(prefix, deployment.bucket),
                    f"{prefix}DATABASE_URL": url,
                    f"{prefix}BLOB_DIR": str(folder / f"{name}-blobs"),
                    f"{prefix}RELAY_POLL_SECONDS": "0.5",
                    f"{prefix}RELAY_BACKOFF_BASE_SECONDS": "0.1",
                    f"{prefix}RELAY_BACKOFF_CAP_SECONDS": "2",
                    f"{prefix}RELAY_LEASE_SECONDS": "5",
                }
            )
        env.update(wiring(deployment.fronts))  # the services find each other through the load balancer
        env.update(
            {
                "BM_MELDKAMER_SCRIPT": json.dumps(FAST_SCRIPT),
                "BM_VERIFICATION_WORKERS": "1",
                "BM_VERIFICATION_JOB_LEASE_SECONDS": "20",
                "BM_INTAKE_REPORTS_PER_CLIENT": "100000",
                "BM_INTAKE_TOKEN_USES_PER_CLIENT": "100000",
                "BM_INTAKE_TRUSTED_PROXIES": '["127.0.0.1"]',
                "BM_BRIDGE_TRUSTED_PROXIES": '["127.0.0.1"]',
            }
        )
        for name, (package, _prefix) in SERVICES.items():
            subprocess.run([pythons[name], "-m", package, "migrate"], env=env, check=True, capture_output=True)
        deployment.balancer = start_nginx(
            folder / "nginx", fronts, {name: ports for name, ports in deployment.replica_ports.items()}
        )
        for name in SERVICES:
            for index in range(REPLICAS):
                deployment.start_replica(name, index)
        yield deployment
    finally:
        deployment.stop()
        if deployment.redis_prefix:
            drop_redis_keys(deployment.redis_prefix)


def place(n: int) -> dict[str, float]:
    """A place of its own for each report, 2 km apart: each is its own event and so its own incident."""
    return {"lat": 51.60 + 0.02 * (n // 10), "lon": 4.40 + 0.03 * (n % 10)}


def status_of(deployment: Deployment, created: dict[str, Any]) -> str:
    view = local_http().get(
        f"{deployment.fronts['intake']}{created['status_url']}",
        timeout=10,
        headers={"Authorization": f"Bearer {created['access_token']}"},
    )
    return str(view.json()["status"]) if view.status_code == 200 else "unknown"


def meldkamer_incidents(deployment: Deployment) -> list[dict[str, Any]]:
    return meldkamer_list(deployment.fronts["meldkamer"], deployment.env, limit=500)


def test_the_happy_path_through_the_load_balancer(deployment: Deployment) -> None:
    phone = Phone(deployment.fronts["intake"], "203.0.113.200")
    body = report_json(description="Productie: inbraak bij de bakker", location=place(99))
    response = phone.send(body, [phone_photo(9001, **place(99))], "production-happy-0001")
    assert response.status_code == 202, response.text
    created = response.json()
    deadline = time.monotonic() + 90
    while status_of(deployment, created) != "closed" and time.monotonic() < deadline:
        time.sleep(0.3)
    assert status_of(deployment, created) == "closed"
    ours = [i for i in meldkamer_incidents(deployment) if i["description"] == body["description"]]
    assert len(ours) == 1 and ours[0]["photos"] == "verified", ours
    # /metrics stays behind the load balancer.
    assert local_http().get(f"{deployment.fronts['intake']}/metrics", timeout=10).status_code == 404


def test_a_burst_survives_one_replica_of_each_service_killed(deployment: Deployment) -> None:
    reports = 24
    photos = {n: phone_photo(7000 + n, **place(n), size=(1200, 900)) for n in range(reports)}
    bodies = {
        n: report_json(description=f"Burst {n}: twee mannen bij een busje", location=place(n), in_progress=n % 2 == 0)
        for n in range(reports)
    }
    answers: dict[int, httpx.Response] = {}
    phones = {n: Phone(deployment.fronts["intake"], f"203.0.113.{n + 1}") for n in range(reports)}
    sent_before_kill: list[int] = []

    def send(n: int) -> None:
        time.sleep(n * 0.35)  # about three a second, over eight seconds
        answers[n] = phones[n].send(bodies[n], [photos[n]], f"production-burst-{n:04d}")

    def kill_one_replica_of_each() -> None:
        sent_before_kill.append(len(answers))
        for name in SERVICES:
            deployment.kill(name, 0)

    killer = threading.Timer(3.0, kill_one_replica_of_each)
    killer.start()
    with ThreadPoolExecutor(reports) as pool:
        list(pool.map(send, range(reports)))
    killer.join()

    refused = {n: a.text for n, a in answers.items() if a.status_code != 202}
    assert not refused, refused  # with a retry, as the app does, every report got its 202
    created = {n: a.json() for n, a in answers.items()}
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        states = {n: status_of(deployment, c) for n, c in created.items()}
        if all(s in ("accepted", "unit_assigned", "closed") for s in states.values()):
            break
        time.sleep(1)
    assert all(s in ("accepted", "unit_assigned", "closed") for s in states.values()), states
    incidents = meldkamer_incidents(deployment)
    for n, body in bodies.items():
        at_meldkamer = [i for i in incidents if i["description"] == body["description"]]
        assert len(at_meldkamer) == 1, (n, at_meldkamer)  # exactly once
    assert 0 < sent_before_kill[0] < reports  # the kills came in the middle of the burst
    print(
        f"burst: {reports} reports, {sent_before_kill[0]} answered before 4 replicas were killed, "
        f"{sum(p.retries for p in phones.values())} retries by the phones, 0 lost, 0 twice"
    )
    for name in SERVICES:  # back again, as an orchestrator would start them
        deployment.start_replica(name, 0)


def test_a_photo_sent_twice_through_different_replicas_is_a_duplicate(deployment: Deployment) -> None:
    photo = phone_photo(8123, **place(50))
    for name, index in [(name, i) for name in SERVICES for i in range(REPLICAS)]:
        if (name, index) not in deployment.processes:  # a test before this one failed half-way
            deployment.start_replica(name, index)
    first_replica = Phone(deployment.replica_url("intake", 1), "203.0.113.101")
    second_replica = Phone(deployment.replica_url("intake", 0), "203.0.113.102")
    token = credential_in(deployment.env, "bridge", "verification")

    def verified(report_id: str) -> dict[str, Any]:
        deadline = time.monotonic() + 90
        while True:
            found = local_http().get(
                f"{deployment.fronts['verification']}/internal/v1/verifications/{report_id}",
                timeout=10,
                headers={"Authorization": f"Bearer {token}"},
            )
            if (found.status_code == 200 and found.json()["status"] == "done") or time.monotonic() > deadline:
                assert found.status_code == 200, found.text
                return dict(found.json())
            time.sleep(0.5)

    first = first_replica.send(report_json(description="Eerste foto", location=place(50)), [photo], "dup-0001")
    assert first.status_code == 202, first.text
    first_id = first.json()["id"]
    assert verified(first_id)["duplicate_of_reports"] == []
    second = second_replica.send(report_json(description="Dezelfde foto", location=place(51)), [photo], "dup-0002")
    assert second.status_code == 202, second.text
    second_id = second.json()["id"]
    result = verified(second_id)
    assert first_id in result["duplicate_of_reports"], result  # whichever verification replica took the job


def test_a_limit_holds_across_the_replicas(deployment: Deployment) -> None:
    """Guessing a report's access token through the load balancer, which sends each try to the other replica:
    the replicas count the guesses together in Redis, so the limit is the limit, not twice it."""
    phone = Phone(deployment.fronts["intake"], "203.0.113.201")
    response = phone.send(report_json(description="Productie: fiets gestolen"), [], "production-limit-0001")
    assert response.status_code == 202, response.text
    status_url = deployment.fronts["intake"] + response.json()["status_url"]
    limit = 10  # wrong_tokens_per_report's default
    answers = [
        local_http().get(status_url, headers={"Authorization": f"Bearer guess-{n}"}, timeout=10).status_code
        for n in range(limit + 1)
    ]
    assert answers == [404] * limit + [429], answers


def test_the_replicas_answer_after_the_kills(deployment: Deployment) -> None:
    for name in SERVICES:
        ready = local_http().get(f"{deployment.fronts[name]}/readyz", timeout=10).json()
        assert ready == {"status": "ready", "shared_state": "redis"}, name
