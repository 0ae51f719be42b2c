"""End-to-end latency: from the citizen's POST to 'accepted by the meldkamer' on the citizen's status page.

Starts the whole suite as real processes (SQLite by default; BM_TEST_DATABASE=postgresql for PostgreSQL) and
sends reports one after another: in-progress ones (forwarded at once) and ordinary ones (forwarded after
verification), each with a 12 MP photo carrying EXIF. Prints one JSON line and a table.

    uv run python bench/e2e_latency.py [--reports 20]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tests.helpers import exif_time, gps_tags, make_jpeg, report_json
from tests.suite import start_suite


def one_report(client: httpx.Client, intake: str, in_progress: bool, n: int) -> tuple[float, float]:
    """(seconds until the 202, seconds until 'accepted' shows on the status page)."""
    # Each report its own event (2 km apart): this measures one report's way, not joining an open incident.
    lat, lon = 51.6 + (n % 20) * 0.02, 4.6 + (n // 20) * 0.03
    photo = make_jpeg(
        4000,
        3000,
        pattern=n,
        exif={0x010F: "Google", 0x0110: "Pixel 8"},
        exif_ifd={0x9003: exif_time(datetime.now(UTC)), 0x9011: "+00:00"},
        gps=gps_tags(lat, lon),
    )
    body = report_json(in_progress=in_progress, description=f"benchmark report {n}", location={"lat": lat, "lon": lon})
    started = time.perf_counter()
    # Each report from another citizen (the suite trusts 127.0.0.1 as a proxy): one citizen sending twenty
    # reports a minute is flooding, which verification rightly rejects.
    citizen = f"198.51.100.{n % 250 + 1}"
    response = client.post(
        f"{intake}/v1/reports",
        headers={"Idempotency-Key": f"bench-{n:06d}-{time.time_ns()}", "X-Forwarded-For": citizen},
        files=[("report", (None, json.dumps(body), "application/json")), ("photos", ("p.jpg", photo, "image/jpeg"))],
    )
    answered = time.perf_counter() - started
    created = response.json()
    headers = {"Authorization": f"Bearer {created['access_token']}"}
    while True:
        view = client.get(f"{intake}{created['status_url']}", headers=headers).json()
        if any(item["event"] == "accepted" for item in view["timeline"]):
            return answered, time.perf_counter() - started
        if time.perf_counter() - started > 60:
            raise RuntimeError("report not accepted within 60 s")
        time.sleep(0.005)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--reports", type=int, default=20)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        suite = start_suite(Path(folder))
        try:
            results: dict[str, list[tuple[float, float]]] = {"in_progress": [], "ordinary": []}
            with httpx.Client(timeout=30) as client:
                one_report(client, suite.urls["intake"], False, 0)  # warm-up: worker processes start
                for n in range(1, args.reports + 1):
                    kind = "in_progress" if n % 2 else "ordinary"
                    results[kind].append(one_report(client, suite.urls["intake"], kind == "in_progress", n))
        finally:
            suite.stop()
    summary = {}
    for kind, values in results.items():
        accepted = sorted(v[1] * 1000 for v in values)
        answered = sorted(v[0] * 1000 for v in values)
        summary[kind] = {
            "n": len(values),
            "post_p50_ms": round(statistics.median(answered), 1),
            "accepted_p50_ms": round(statistics.median(accepted), 1),
            "accepted_max_ms": round(accepted[-1], 1),
        }
    print(json.dumps({"benchmark": "e2e_latency", **summary}))
    print(f"{'kind':12s} {'n':>3s} {'202 p50 ms':>11s} {'accepted p50 ms':>16s} {'accepted max ms':>16s}")
    for kind, row in summary.items():
        print(
            f"{kind:12s} {row['n']:3d} {row['post_p50_ms']:11.1f} {row['accepted_p50_ms']:16.1f} "
            f"{row['accepted_max_ms']:16.1f}"
        )


if __name__ == "__main__":
    main()
