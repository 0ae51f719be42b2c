"""The flood: many witnesses of one event behind one mobile network's address, while other events start.

Starts the whole suite as real processes (SQLite by default; BM_TEST_DATABASE=postgresql for PostgreSQL), as
`tests/suite.py` does for the end-to-end tests. Every witness registers an app installation first (proof of
work), then reports at a fixed moment whatever the system does (an open model): one big event (`--witnesses`
over `--seconds`), and `--events` smaller ones starting while it runs, each opened by an in-progress report,
a quarter of the rest in progress too, each report with its own phone-like photo (camera EXIF and GPS, sensor
noise). Meanwhile one installation floods and an old app without a credential sends from the same address.

Prints a table and one JSON line: accepted and refused reports, incidents per event at the meldkamer, the
time from an event's first (urgent) POST to its incident at the meldkamer, and from a later witness's POST
to its attachment to the incident (the meldkamer has the update), p50 and p99.

    uv run python bench/flood.py [--witnesses 100] [--seconds 90] [--events 5] [--photo 4000x3000]
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import tempfile
import threading
import time
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench.throughput import percentile, register
from burgermelding_shared.events import distance_m
from report_intake.installations.registration import solves
from tests.helpers import phone_photo
from tests.suite import meldkamer_incidents, start_suite

CGNAT = "203.0.113.50"
OPEN_SCRIPT = [["Active", 0.5], ["ResourcesAssigned", 3.0], ["Closed", 3600.0]]
REFERENCE = re.compile(r"\((BM-\d{4}-\d{6})\)")


@dataclass
class Planned:
    event: int
    n: int
    at: float  # seconds after the start
    place: tuple[float, float]
    urgent: bool
    photo_seed: int


@dataclass
class Sent:
    planned: Planned
    posted_at: float  # wall clock, seconds since the epoch
    answered_ms: float
    status: int
    reference: str | None


def place_of(event: int, n: int) -> tuple[float, float]:
    """Events 2 km apart; witnesses within about 120 m of their event's centre."""
    centre = (52.3731 + 0.018 * event, 4.8926)
    north, east = ((n * 37) % 240 - 120) / 2, ((n * 53) % 240 - 120) / 2
    return centre[0] + north / 111_320, centre[1] + east / (111_320 * 0.61)


def plan(witnesses: int, seconds: float, events: int, side_witnesses: int) -> list[Planned]:
    planned = [
        Planned(0, n, n * seconds / witnesses, place_of(0, n), n == 0 or n % 4 == 0, n) for n in range(witnesses)
    ]
    for event in range(1, events + 1):
        start = seconds * event / (events + 1)
        planned += [
            Planned(
                event,
                n,
                start + n * 20.0 / side_witnesses,
                place_of(event, n),
                n == 0 or n % 4 == 0,
                event * 10_000 + n,
            )
            for n in range(side_witnesses)
        ]
    return sorted(planned, key=lambda p: p.at)


def make_photo(args: tuple[int, tuple[float, float], tuple[int, int]]) -> bytes:
    seed, place, size = args
    return phone_photo(seed, *place, size=size, noise=9.0)


def post(
    client: httpx.Client,
    intake: str,
    place: tuple[float, float],
    urgent: bool,
    description: str,
    photo: bytes | None,
    key: str,
    credential: str | None,
) -> httpx.Response:
    body = {
        "category": "violence",
        "description": description,
        "in_progress": urgent,
        "location": {"lat": place[0], "lon": place[1], "accuracy_m": 10},
        "observed_at": datetime.now(UTC).isoformat(),
    }
    files: list[Any] = [("report", (None, json.dumps(body), "application/json"))]
    if photo is not None:
        files.append(("photos", ("photo.jpg", photo, "image/jpeg")))
    headers = {
        "Idempotency-Key": key,
        "X-Forwarded-For": CGNAT,
        **({"Installation-Credential": credential} if credential else {}),
    }
    return client.post(f"{intake}/v1/reports", files=files, headers=headers)


def solves_probe(n: int) -> bool:
    return solves("bench-pow-calibration", str(n), 64)


def timestamp(value: str) -> float:
    return datetime.fromisoformat(value).timestamp()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--witnesses", type=int, default=100, help="witnesses of the big event")
    parser.add_argument("--seconds", type=float, default=90.0, help="over how long they report")
    parser.add_argument("--events", type=int, default=5, help="smaller events starting during the flood")
    parser.add_argument("--side-witnesses", type=int, default=12, help="witnesses of each smaller event")
    parser.add_argument("--photo", default="4000x3000", help="photo size (12 MP like a phone by default)")
    parser.add_argument(
        "--pow-bits",
        type=int,
        default=16,
        help="registration proof of work for this run (the "
        "default deployment asks 20; the bench solves in Python, slower than an app)",
    )
    args = parser.parse_args()
    size = tuple(int(v) for v in args.photo.split("x"))
    planned = plan(args.witnesses, args.seconds, args.events, args.side_witnesses)

    # What a 20-bit proof costs here: the hash rate of the solver, times the 2**20 tries it needs on average
    # (one solve alone says little: the number of tries is geometric).
    started = time.perf_counter()
    for n in range(200_000):
        solves_probe(n)
    pow_20_seconds = (time.perf_counter() - started) / 200_000 * 2**20
    with ProcessPoolExecutor() as pool:
        photos = list(pool.map(make_photo, [(p.photo_seed, p.place, size) for p in planned], chunksize=4))
    photo_mb = sum(len(p) for p in photos) / len(photos) / 1e6

    with tempfile.TemporaryDirectory() as folder:
        suite = start_suite(
            Path(folder),
            {
                "BM_INTAKE_REPORTS_PER_CLIENT": "10",
                "BM_INTAKE_TOKEN_USES_PER_CLIENT": "120",
                "BM_INTAKE_INSTALLATION_POW_BITS": str(args.pow_bits),
                "BM_MELDKAMER_SCRIPT": json.dumps(OPEN_SCRIPT),
            },
        )
        try:
            intake = suite.urls["intake"]
            with httpx.Client(timeout=60) as client:
                started = time.perf_counter()
                credentials = [register(client, intake, CGNAT) for _ in planned]
                registration_ms = (time.perf_counter() - started) / len(planned) * 1000
                flooder = register(client, intake, CGNAT)
            sent: list[Sent] = []
            lock = threading.Lock()
            origin = time.monotonic() + 1.0

            def witness(index: int) -> None:
                item = planned[index]
                time.sleep(max(0.0, origin + item.at - time.monotonic()))
                posted_at = time.time()
                with httpx.Client(timeout=120) as client:
                    response = post(
                        client,
                        intake,
                        item.place,
                        item.urgent,
                        f"Vechtpartij, getuige {item.n} van voorval {item.event}",
                        photos[index],
                        f"flood-{item.event}-{item.n:05d}",
                        credentials[index],
                    )
                answered_ms = (time.time() - posted_at) * 1000
                reference = response.json().get("reference") if response.status_code == 202 else None
                with lock:
                    sent.append(Sent(item, posted_at, answered_ms, response.status_code, reference))

            def abusers() -> list[int]:
                time.sleep(max(0.0, origin + args.seconds / 3 - time.monotonic()))
                codes = []
                with httpx.Client(timeout=60) as client:
                    for n in range(30):
                        codes.append(
                            post(
                                client, intake, (52.30, 4.95), False, f"spam {n}", None, f"flooder-{n:04d}", flooder
                            ).status_code
                        )
                    for n in range(15):
                        codes.append(
                            post(
                                client, intake, (52.30, 4.97), False, f"oude app {n}", None, f"old-app-{n:04d}", None
                            ).status_code
                        )
                return codes

            with ThreadPoolExecutor(max_workers=32) as threads:
                abuse = threads.submit(abusers)
                list(threads.map(witness, range(len(planned))))
                abuse_codes = abuse.result()
            flood_wall = time.monotonic() - origin

            accepted = {s.reference: s for s in sent if s.reference}
            deadline = time.monotonic() + 180
            while True:
                incidents = meldkamer_incidents(suite.urls["meldkamer"], suite.env, limit=1000)
                attached = sum(
                    i["eventSummary"]["reportCount"]
                    for i in incidents
                    if i["eventSummary"] and not i["mergedInto"] and i["priorityNumber"] == 10
                )
                if attached >= len(accepted) or time.monotonic() > deadline:
                    break
                time.sleep(1)
        finally:
            suite.stop()

    first_urgent_ms, attach_ms, per_event = [], [], {}
    attach_urgent_ms: list[float] = []
    attach_ordinary_ms: list[float] = []  # these wait for their verification first
    for event in range(args.events + 1):
        ours = [s for s in sent if s.planned.event == event]
        first = min(ours, key=lambda s: s.planned.at)
        centre = place_of(event, 0)
        near = [
            i
            for i in incidents
            if i["eventSummary"]
            and distance_m(i["eventSummary"]["centre"]["lat"], i["eventSummary"]["centre"]["lon"], *centre) < 400
        ]
        per_event[event] = {
            "witnesses": len(ours),
            "incidents": len(near),
            "attached": sum(i["eventSummary"]["reportCount"] for i in near if not i["mergedInto"]),
        }
        if near:
            opened = min(near, key=lambda i: timestamp(i["receivedAt"]))
            first_urgent_ms.append((timestamp(opened["receivedAt"]) - first.posted_at) * 1000)
        for incident in near:
            for update in incident["updates"]:
                match = REFERENCE.search(update["notes"] or "") if update["kind"] == "report_added" else None
                if match and match.group(1) in accepted:
                    witness = accepted[match.group(1)]
                    attach_ms.append((timestamp(update["receivedAt"]) - witness.posted_at) * 1000)
                    (attach_urgent_ms if witness.planned.urgent else attach_ordinary_ms).append(attach_ms[-1])
    refused_witnesses = sum(1 for s in sent if s.status != 202)
    summary = {
        "benchmark": "flood",
        "reports": len(planned),
        "flood_seconds": round(flood_wall, 1),
        "photo_mb": round(photo_mb, 2),
        "accepted": len(accepted),
        "refused_witnesses": refused_witnesses,
        "flooder_refused": sum(1 for c in abuse_codes[:30] if c == 429),
        "old_app_refused": sum(1 for c in abuse_codes[30:] if c == 429),
        "incidents_per_event": [per_event[e]["incidents"] for e in sorted(per_event)],
        "attached_per_event": [per_event[e]["attached"] for e in sorted(per_event)],
        "first_urgent_p50_ms": percentile(first_urgent_ms, 50),
        "first_urgent_p99_ms": percentile(first_urgent_ms, 99),
        "attach_p50_ms": percentile(attach_ms, 50),
        "attach_p99_ms": percentile(attach_ms, 99),
        "attach_max_ms": percentile(attach_ms, 100),
        "attached_by_update": len(attach_ms),
        "attach_urgent_p50_ms": percentile(attach_urgent_ms, 50),
        "attach_urgent_max_ms": percentile(attach_urgent_ms, 100),
        "attach_ordinary_p50_ms": percentile(attach_ordinary_ms, 50),
        "attach_ordinary_max_ms": percentile(attach_ordinary_ms, 100),
        "answer_202_p50_ms": percentile([s.answered_ms for s in sent], 50),
        "answer_202_p99_ms": percentile([s.answered_ms for s in sent], 99),
        "first_urgent_202_ms": [
            round(min((s for s in sent if s.planned.event == e), key=lambda s: s.planned.at).answered_ms, 1)
            for e in sorted(per_event)
        ],
        "registration_ms": round(registration_ms, 1),
        "pow_bits": args.pow_bits,
        "pow_20_bits_python_s": round(pow_20_seconds, 2),
    }
    print(json.dumps(summary))
    print(
        f"{len(planned)} witnesses in {len(per_event)} events over {flood_wall:.0f} s, photos {photo_mb:.1f} MB, "
        f"all behind {CGNAT}"
    )
    print(f"{'event':>5s} {'witnesses':>9s} {'incidents':>9s} {'attached':>8s}")
    for event, row in per_event.items():
        print(f"{event:5d} {row['witnesses']:9d} {row['incidents']:9d} {row['attached']:8d}")
    print(
        f"accepted {len(accepted)}, witnesses refused {refused_witnesses}; flooding installation refused "
        f"{summary['flooder_refused']} of 30; old app (no credential) refused {summary['old_app_refused']} of 15"
    )
    print(
        f"POST -> 202: p50 {summary['answer_202_p50_ms']} ms, p99 {summary['answer_202_p99_ms']} ms; "
        f"first urgent of each event: {summary['first_urgent_202_ms']} ms"
    )
    print(
        f"first urgent POST -> incident at the meldkamer: p50 {summary['first_urgent_p50_ms']} ms, "
        f"p99 {summary['first_urgent_p99_ms']} ms (n={len(first_urgent_ms)})"
    )
    print(
        f"later witness POST -> attached at the meldkamer: p50 {summary['attach_p50_ms']} ms, "
        f"p99 {summary['attach_p99_ms']} ms, max {summary['attach_max_ms']} ms (n={len(attach_ms)})"
    )
    print(
        f"  of which urgent: p50 {summary['attach_urgent_p50_ms']} ms, max {summary['attach_urgent_max_ms']} ms "
        f"(n={len(attach_urgent_ms)}); ordinary, after verification: p50 {summary['attach_ordinary_p50_ms']} ms, "
        f"max {summary['attach_ordinary_max_ms']} ms (n={len(attach_ordinary_ms)})"
    )
    print(
        f"registration (challenge, {args.pow_bits}-bit proof in Python, redeem): {registration_ms:.0f} ms; "
        f"a 20-bit proof in Python takes {pow_20_seconds:.2f} s on average here"
    )


if __name__ == "__main__":
    main()
