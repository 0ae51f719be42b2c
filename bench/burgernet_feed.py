"""The Burgernet feed under load: requests per second and latency for `GET /v1/burgernet/actions` on this machine.

A million installed apps asking every minute is about 16,700 requests a second. Most of them already have the
current feed and ask with `If-None-Match` (a 304, no body); a new action makes every phone fetch it once. This
starts the suite as real processes (SQLite by default), has a dispatcher start `--actions` actions through the
dispatchers' API (published to intake as in production), and drives one intake process with wrk (Debian's
`wrk`: `apt-get install wrk`) for `--seconds` each: conditional requests, then full fetches. wrk shares the two
cores with the service, so the figures are a floor for a machine of its own.

    uv run python bench/burgernet_feed.py [--actions 10] [--seconds 10] [--connections 64]
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tests.helpers import report_json
from tests.suite import create_dispatcher, start_suite, submit

UNITS = {"us": 1e-3, "ms": 1.0, "s": 1000.0}


def wrk(url: str, seconds: int, connections: int, headers: dict[str, str]) -> dict[str, float]:
    command = ["wrk", "-t2", f"-c{connections}", f"-d{seconds}s", "--latency", url]
    for name, value in headers.items():
        command[1:1] = ["-H", f"{name}: {value}"]
    out = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    figures = {"requests_per_second": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))}  # type: ignore[union-attr]
    for label, name in (("50%", "p50_ms"), ("90%", "p90_ms"), ("99%", "p99_ms")):
        value, unit = re.search(rf"{label}\s+([\d.]+)(us|ms|s)", out).groups()  # type: ignore[union-attr]
        figures[name] = round(float(value) * UNITS[unit], 2)
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    figures["non_2xx_3xx"] = int(errors.group(1)) if errors else 0
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--actions", type=int, default=10)
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--connections", type=int, default=64)
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        sys.exit("wrk is needed: apt-get install wrk")
    suite = start_suite(
        Path(tempfile.mkdtemp(prefix="bm-bench-feed-")),
        {"BM_MELDKAMER_SCRIPT": json.dumps([["Active", 0.3], ["Closed", 3600.0]])},
    )
    try:
        intake, bridge = suite.urls["intake"], suite.urls["bridge"]
        auth = {"Authorization": f"Bearer {create_dispatcher(suite, 'bench', 'dispatcher')}"}
        created = submit(suite, report_json(in_progress=True), [], "bench-feed-0001").json()
        incident_id = None
        while incident_id is None:
            incident_id = (
                httpx.get(f"{bridge}/v1/dispatch/reports/{created['id']}", headers=auth).json().get("incident_id")
            )
            time.sleep(0.2)
        for n in range(args.actions):
            lat, lon = 52.0 + 0.01 * n, 5.1
            started = httpx.post(
                f"{bridge}/v1/dispatch/burgernet/actions",
                headers=auth,
                json={
                    "incident_id": incident_id,
                    "looking_for": "person",
                    "headline_nl": f"Gezocht: persoon {n}",
                    "description_nl": "Man, ongeveer 30 jaar, donkere jas, witte sneakers, fiets zonder licht. " * 3,
                    "area": {"polygon": [(lat, lon), (lat + 0.02, lon), (lat + 0.02, lon + 0.03), (lat, lon + 0.03)]},
                },
            )
            started.raise_for_status()
        feed_url = f"{intake}/v1/burgernet/actions"
        while len(httpx.get(feed_url).json()["actions"]) < args.actions:
            time.sleep(0.2)
        first = httpx.get(feed_url, headers={"Accept-Encoding": "gzip"})
        etag = first.headers["etag"]
        gzip = {"Accept-Encoding": "gzip"}  # as the apps' HTTP clients send it
        conditional = wrk(feed_url, args.seconds, args.connections, {**gzip, "If-None-Match": etag})
        full = wrk(feed_url, args.seconds, args.connections, gzip)
        result = {
            "actions_in_feed": args.actions,
            "feed_bytes": len(first.content),
            "feed_bytes_gzipped": int(first.headers["content-length"]),
            "cache_control": first.headers["cache-control"],
            "connections": args.connections,
            "conditional_304": conditional,
            "full_200": full,
            "apps_per_minute_one_process_carries": int(conditional["requests_per_second"] * 60),
        }
        print(json.dumps(result))
        print(
            f"\nBurgernet feed, {args.actions} actions ({len(first.content)} bytes, "
            f"{result['feed_bytes_gzipped']} gzipped), {args.connections} connections, "
            f"one intake process on this machine (wrk on the same two cores):"
        )
        for name, figures in (("If-None-Match (304)", conditional), ("full fetch (200, gzip)", full)):
            print(
                f"  {name:22} {figures['requests_per_second']:>9,.0f} req/s   p50 {figures['p50_ms']} ms   "
                f"p90 {figures['p90_ms']} ms   p99 {figures['p99_ms']} ms   errors {figures['non_2xx_3xx']}"
            )
        print(
            f"  a million apps a minute = 16,667 req/s: one process carries "
            f"{result['apps_per_minute_one_process_carries']:,} apps a minute; a CDN or proxy honouring "
            f"Cache-Control carries the rest"
        )
    finally:
        suite.stop()


if __name__ == "__main__":
    main()
