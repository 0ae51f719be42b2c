"""Chaos while reports stream in: services killed at random, PostgreSQL restarted, the meldkamer failing and going
dark, the photo disk full. Afterwards nothing accepted is lost, nothing is forwarded twice, every citizen's
status agrees with the meldkamer, and a reply other than 202 meant that nothing was stored.

Real processes, real HTTP, the photos on a real size-limited filesystem (a tmpfs). The CI run lasts
at least `BM_CHAOS_SECONDS` (30) and one round of every fault; the longer version (README, *Chaos*) sets it higher. The faults follow a seeded
random sequence (`BM_CHAOS_SEED`, printed at the start and in the summary) so that a failing run can be replayed;
the simulated meldkamer draws its own faults (which request fails, and whether after its commit) from the same
seed (`BM_MELDKAMER_FAULT_SEED`). Waits are bounded only so that
a broken run ends; nothing here asserts a duration.
"""

from __future__ import annotations

import itertools
import json
import os
import random
import signal
import subprocess
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import suppress
from dataclasses import dataclass, field
from pathlib import Path
from threading import Event, Lock
from typing import Any

import httpx
import pytest

from tests.databases import TEST_DATABASE
from tests.filesystems import fill, small_filesystem
from tests.helpers import phone_photo, report_json, report_parts
from tests.suite import SERVICES, Phone, Suite, create_dispatcher, local_http, start_suite
from tests.suite import meldkamer_incidents as meldkamer_list

CHAOS_SECONDS = float(os.environ.get("BM_CHAOS_SECONDS", "30"))
SEED = int(os.environ.get("BM_CHAOS_SEED", str(random.SystemRandom().randrange(1_000_000))))
PHONES = 6  # citizens sending at the same time
ADMIN = {"Authorization": "Bearer dev-only-meldkamer-admin-token-change-me"}
CHAOS_ENV = {
    "BM_MELDKAMER_SCRIPT": json.dumps([["Active", 0.2], ["ResourcesAssigned", 0.5], ["Closed", 1.5]]),
    "BM_BRIDGE_RELAY_REQUEST_TIMEOUT_SECONDS": "2",  # a meldkamer gone dark holds a try this long
    "BM_BRIDGE_CALL_112_DEADLINE_SECONDS": "3600",
    "BM_VERIFICATION_JOB_LEASE_SECONDS": "10",  # a killed verification's jobs come back after this
    # A phone whose request died with intake gets 409 (in progress) for its retries until the claim is this old
    # (2 minutes by default: the phones here would mostly wait); every write here takes well under a second.
    "BM_INTAKE_IDEMPOTENCY_CLAIM_SECONDS": "15",
    "BM_MELDKAMER_FAULT_SEED": str(SEED),  # the meldkamer's random faults replay with the chaos's order of faults
    **{f"{prefix}RELAY_LEASE_SECONDS": "5" for _package, prefix in SERVICES.values()},
}


@dataclass
class Tally:
    """What the citizens saw and what the chaos did."""

    accepted: list[dict[str, Any]] = field(default_factory=list)  # 202s: n, id, access_token, status_url
    refused: list[tuple[int, int, str]] = field(default_factory=list)  # first replies other than 202: n, status
    replies: Counter[str] = field(default_factory=Counter)  # every reply and unanswered try, by status
    faults: Counter[str] = field(default_factory=Counter)
    fault_seconds: Counter[str] = field(default_factory=Counter)
    lock: Lock = field(default_factory=Lock)


def place(n: int) -> dict[str, float]:
    """Each report its own event, 2 km from any other: one incident each."""
    return {"lat": 51.5 + 0.02 * (n % 40), "lon": 4.0 + 0.03 * (n // 40)}


def send_report(suite: Suite, n: int, tally: Tally) -> None:
    """One citizen. Most phones send again with the same key until they get a 202; every fifth gives up at the
    first reply other than 202, when no earlier try of it can still be under way: what that reply said (nothing
    stored) is then checked at the end."""
    body = report_json(in_progress=n % 5 == 1, description=f"chaos report {n}", location=place(n))
    photo = phone_photo(n, **place(n), size=(800, 600))
    phone = Phone(suite.urls["intake"], f"198.51.{n // 250}.{n % 250 + 1}")
    key, impatient, unanswered = f"chaos-{SEED}-{n:05d}", n % 5 == 0, False
    files = report_parts(body, [photo])
    deadline, pause = time.monotonic() + 240, 0.2
    while time.monotonic() < deadline:
        try:
            response = local_http().post(
                f"{phone.base_url}/v1/reports",
                files=files,
                timeout=30,
                headers={"Idempotency-Key": key, "X-Forwarded-For": phone.address},
            )
        except httpx.TransportError:
            unanswered = True
            with tally.lock:
                tally.replies["no answer"] += 1
        else:
            with tally.lock:
                tally.replies[str(response.status_code)] += 1
            if response.status_code == 202:
                with tally.lock:
                    tally.accepted.append({**response.json(), "n": n})
                return
            if impatient and not unanswered:
                with tally.lock:
                    tally.refused.append((n, response.status_code, response.json().get("error", "")))
                return
            assert Phone.try_again(response), (n, response.status_code, response.text)  # only a retryable refusal
        time.sleep(pause)
        pause = min(2.0, pause * 2)
    raise AssertionError(f"report {n} was never accepted")


class Chaos:
    """The faults, one after another at random moments, until stopped."""

    def __init__(self, suite: Suite, disk: Path, tally: Tally) -> None:
        self.suite, self.disk, self.tally = suite, disk, tally
        self.random = random.Random(SEED)
        self.actions: list[tuple[str, Callable[[], None]]] = [
            *[(f"kill {name}", lambda name=name: self.kill(name)) for name in SERVICES],  # type: ignore[misc]
            ("meldkamer fails", self.meldkamer_fails),
            ("meldkamer dark", self.meldkamer_dark),
            ("photo disk full", self.disk_full),
        ]
        if TEST_DATABASE == "postgresql":
            self.actions.append(("postgresql restarted", self.restart_postgresql))

    def run(self, until: Callable[[], bool]) -> None:
        """Faults until `until()`. In the test's main thread: a service started again here is the child of a
        thread that outlives it (a child is killed when the thread that started it ends: die_with_parent)."""
        while True:
            # Rounds in a random order, in which every fault happens once; at least one whole round, so
            # that even the short run sees each one, and a long run sees each many times.
            for name, action in self.random.sample(self.actions, len(self.actions)):
                time.sleep(self.random.uniform(0.5, 2.0))
                began = time.monotonic()
                action()
                self.tally.faults[name] += 1
                self.tally.fault_seconds[name] += time.monotonic() - began
            if until():
                return

    def kill(self, name: str) -> None:
        self.suite.kill_service(name, signal.SIGKILL)  # mid-request, messages in flight, no goodbye
        time.sleep(self.random.uniform(0.2, 2.0))
        self.start(name)

    def start(self, name: str) -> None:
        for _attempt in range(5):  # a restart may fall in a PostgreSQL restart: as an orchestrator, try again
            try:
                self.suite.start_service(name)
                return
            except RuntimeError:
                time.sleep(2)
        raise AssertionError(f"{name} does not start again:\n{self.suite.log(name)[-3000:]}")

    def meldkamer_fails(self) -> None:
        faults = {"error_rate": 0.7, "error_statuses": [500, 502, 503], "fail_after_commit": 0.5}
        # In force, or the test stops here: a fault counted as done must have happened.
        answer = local_http().put(f"{self.suite.urls['meldkamer']}/admin/faults", json=faults, headers=ADMIN, timeout=5)
        assert answer.status_code == 200 and answer.json()["error_rate"] == 0.7, answer.text
        time.sleep(self.random.uniform(2, 5))
        self._faults({})

    def _faults(self, faults: dict[str, Any]) -> None:
        with suppress(httpx.HTTPError):  # killed just now: it starts again without faults
            local_http().put(f"{self.suite.urls['meldkamer']}/admin/faults", json=faults, headers=ADMIN, timeout=5)

    def meldkamer_dark(self) -> None:
        """No answer at all, not even a refusal: its process is frozen."""
        process = self.suite.processes["meldkamer"]
        os.killpg(process.pid, signal.SIGSTOP)
        time.sleep(self.random.uniform(2, 6))
        os.killpg(process.pid, signal.SIGCONT)

    def disk_full(self) -> None:
        filler = fill(self.disk)
        time.sleep(self.random.uniform(2, 4))
        filler.unlink()

    def restart_postgresql(self) -> None:
        version = sorted(os.listdir("/etc/postgresql"))[-1]
        subprocess.run(
            ["pg_ctlcluster", "--skip-systemctl-redirect", version, "main", "restart", "-m", "fast"],
            check=True,
            capture_output=True,
        )


def wait_until_closed(suite: Suite, accepted: list[dict[str, Any]], limit_seconds: float = 300) -> dict[int, Any]:
    """Each accepted report's citizen view, once it is closed (or when the bound runs out)."""
    deadline, views = time.monotonic() + limit_seconds, {}
    pending = list(accepted)
    while pending and time.monotonic() < deadline:
        still = []
        for report in pending:
            view = (
                local_http()
                .get(
                    f"{suite.urls['intake']}{report['status_url']}",
                    timeout=10,
                    headers={"Authorization": f"Bearer {report['access_token']}"},
                )
                .json()
            )
            views[report["n"]] = view
            if view["status"] != "closed":
                still.append(report)
        pending = still
        if pending:
            time.sleep(1)
    return views


@pytest.mark.serial  # restarts PostgreSQL, which every other test's database lives in
# CI's chaos runs as production does, on PostgreSQL, which it also restarts; the longer version (BM_CHAOS_SECONDS,
# README) also runs on the embedded default.
@pytest.mark.runs_on(*(("sqlite", "postgresql") if os.environ.get("BM_CHAOS_SECONDS") else ("postgresql",)))
def test_chaos_loses_nothing_duplicates_nothing_and_a_refusal_stores_nothing(tmp_path: Path) -> None:
    print(f"\nchaos seed {SEED} (replay: BM_CHAOS_SEED={SEED}; the meldkamer's faults: BM_MELDKAMER_FAULT_SEED={SEED})")
    with small_filesystem(tmp_path / "photos", size_mb=256) as disk:
        env = {**CHAOS_ENV, **{f"{prefix}BLOB_DIR": str(disk / "blobs") for _package, prefix in SERVICES.values()}}
        suite = start_suite(tmp_path / "suite", env)
        try:
            assert f"BM_MELDKAMER_FAULT_SEED={SEED} " in suite.log("meldkamer")  # its faults follow the seed
            tally = Tally()
            chaos = Chaos(suite, disk, tally)
            numbers, stop = itertools.count(), Event()
            end = time.monotonic() + CHAOS_SECONDS

            def citizen() -> None:
                while not stop.is_set():
                    send_report(suite, next(numbers), tally)

            started = time.monotonic()
            with ThreadPoolExecutor(PHONES) as pool:
                citizens = [pool.submit(citizen) for _ in range(PHONES)]
                try:
                    chaos.run(until=lambda: time.monotonic() > end or any(c.done() for c in citizens))
                finally:
                    stop.set()
                for done in citizens:
                    done.result()
            chaos_lasted = time.monotonic() - started
            assert set(tally.faults) == {name for name, _action in chaos.actions}, tally.faults  # each, once at least
            chaos._faults({})
            for name in SERVICES:  # whatever the last fault left down is up again
                if name not in suite.processes:
                    chaos.start(name)
            views = wait_until_closed(suite, tally.accepted)
            drained = time.monotonic() - started
            check_outcome(suite, tally, views, chaos_lasted, drained)
        finally:
            suite.stop()


def stuck(
    suite: Suite,
    dispatcher: dict[str, str],
    reports: list[dict[str, Any]],
    views: dict[int, Any],
    incidents: list[dict[str, Any]],
) -> str:
    """Where the reports that did not close are held: for the one reading the failure."""
    bridge = suite.urls["bridge"]
    lines = [f"delivery: {local_http().get(f'{bridge}/v1/dispatch/delivery', headers=dispatcher).text}"]
    for report in reports:
        view = views.get(report["n"], {})
        at_bridge = local_http().get(f"{suite.urls['bridge']}/v1/dispatch/reports/{report['id']}", headers=dispatcher)
        there = [(i["status"], i["incidentId"]) for i in incidents if i["description"] == f"chaos report {report['n']}"]
        lines.append(
            f"report {report['n']} {report['id']}: citizen {view.get('status')} "
            f"{[e['event'] for e in view.get('timeline', [])]}; meldkamer {there}; bridge "
            f"{at_bridge.status_code} {at_bridge.text[:600]}"
        )
    return "\n".join(lines)


def meldkamer_incidents(suite: Suite) -> list[dict[str, Any]]:
    incidents: list[dict[str, Any]] = []
    while page := meldkamer_list(suite.urls["meldkamer"], suite.env, limit=1000, offset=len(incidents)):
        incidents += page
    return incidents


def check_outcome(suite: Suite, tally: Tally, views: dict[int, Any], chaos_lasted: float, drained: float) -> None:
    dispatcher = {"Authorization": f"Bearer {create_dispatcher(suite, 'chaos-check', 'supervisor')}"}
    accepted = {report["n"]: report for report in tally.accepted}
    deadline = time.monotonic() + 60
    while True:  # the meldkamer marks an incident closed when the bridge has confirmed its last callback
        incidents = meldkamer_incidents(suite)
        closed_there = {i["description"] for i in incidents if i["status"] == "Closed"}
        disagree = sorted(
            n
            for n in accepted
            if views.get(n, {}).get("status") == "closed" and f"chaos report {n}" not in closed_there
        )
        if not disagree or time.monotonic() > deadline:
            break
        time.sleep(1)
    at_meldkamer = Counter(i["description"] for i in incidents)
    not_closed = sorted(n for n in accepted if views.get(n, {}).get("status") != "closed")
    lost = sorted(n for n in accepted if at_meldkamer[f"chaos report {n}"] == 0)
    twice = sorted(n for n in accepted if at_meldkamer[f"chaos report {n}"] > 1)
    forwarded_twice = sorted(
        n
        for n, view in views.items()
        if [e["event"] for e in view["timeline"]].count("forwarded") > 1
        or [e["event"] for e in view["timeline"]].count("accepted") > 1
    )
    stored_after_refusal = sorted(n for n, _status, _error in tally.refused if at_meldkamer[f"chaos report {n}"])
    dead = local_http().get(f"{suite.urls['bridge']}/v1/dispatch/dead-letters", headers=dispatcher, timeout=30).json()
    print(
        f"\nchaos (seed {SEED}, the meldkamer's fault seed {suite.env['BM_MELDKAMER_FAULT_SEED']}, "
        f"{chaos_lasted:.0f} s of faults, all closed after {drained:.0f} s): "
        f"{sum(tally.replies.values())} requests, {len(accepted)} reports accepted, "
        f"{len(tally.refused)} refused and not retried, replies {dict(sorted(tally.replies.items()))}; "
        f"faults {dict(sorted(tally.faults.items()))} (seconds each: "
        f"{ {name: round(t / tally.faults[name], 1) for name, t in sorted(tally.fault_seconds.items())} }); lost {len(lost)}, forwarded twice "
        f"{len(twice) + len(forwarded_twice)}, not closed {len(not_closed)}, status disagreeing {len(disagree)}, "
        f"stored after a refusal {len(stored_after_refusal)}, dead letters {len(dead)}"
    )
    assert accepted and sum(tally.faults.values()) > 0
    assert not lost, f"accepted but never at the meldkamer: {lost}"
    assert not twice and not forwarded_twice, f"forwarded twice: {twice} {forwarded_twice}"
    assert not not_closed, stuck(suite, dispatcher, [accepted[n] for n in not_closed[:5]], views, incidents)
    assert not disagree, [
        (n, [(i["status"], i["incidentId"]) for i in incidents if i["description"] == f"chaos report {n}"])
        for n in disagree
    ]
    assert not stored_after_refusal, f"a refusal that stored the report: {stored_after_refusal} {tally.refused}"
    assert len(incidents) == len(accepted), "the meldkamer holds incidents of reports no citizen saw accepted"
    assert not dead, dead
