"""From a citizen's POST of an urgent report to its incident on a dispatcher's screen, in a real browser, with the
console under the load of a busy evening.

Starts the whole suite as real processes and first loads it through the citizens' API (`--open-incidents`
events, `--reports-per-incident` reports each, no photos, all left open by the simulated meldkamer), so the
list the dispatcher watches holds that many open incidents over that many reports. Then logs a dispatcher in to
the console in Debian's Chromium (Playwright) and sends urgent reports one after another, each its own event
(2 km apart, away from the load), and times each from the POST to the moment its row appears in the live
incident list. Last, the list page's server time: the dispatcher's list fetched over HTTP with the browser's
session, the bridge's own time for each answer read from its access log (`duration_ms`). The floor of the
first figure is the feed's poll (live.POLL_SECONDS, 0.5 s) plus the list's fetch.

    uv run python bench/console_latency.py                              # 500 open incidents, 5,000 reports
    uv run python bench/console_latency.py --open-incidents 0           # an empty console

The load comes through a trusted proxy (this machine), each witness from an address of its own, as phones would:
the limits and the flood and repeat checks work as in production.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from playwright.sync_api import sync_playwright

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tests.helpers import phone_photo, report_json
from tests.suite import Suite, create_account, local_http, start_suite, submit

CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-sync",
    "--disable-background-networking",
    "--disable-component-update",
]
LOAD_CATEGORIES = ["burglary", "theft", "vandalism", "suspicious_situation"]


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[round(share * (len(ordered) - 1))]


def load(suite: Suite, incidents: int, per_incident: int) -> float:
    """`incidents` events of `per_incident` reports each, sent 8 at a time; returns when the bridge has them all
    (the seconds it took)."""
    started = time.monotonic()

    def send(n: int) -> None:
        event, witness = divmod(n, per_incident)
        # A grid of places 3 km apart south-west of the measured reports, each its own event.
        place = {"lat": 51.0 + 0.03 * (event // 40), "lon": 3.6 + 0.04 * (event % 40)}
        body = report_json(
            category=LOAD_CATEGORIES[event % len(LOAD_CATEGORIES)],
            location=place,
            description=f"Melding {witness} over gebeurtenis {event}: iets verdachts gezien",
        )
        # Each witness from an address of its own (through the trusted proxy), as phones are: one sender's
        # history stays its own, as the flood and repeat checks expect.
        address = f"10.{n // 65536}.{(n // 256) % 256}.{n % 256}"
        answer = submit(suite, body, [], f"load-{n:06d}", headers={"X-Forwarded-For": address})
        assert answer.status_code == 202, answer.text

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(send, range(incidents * per_incident)))
    wanted = incidents * per_incident
    # Done when the bridge has every report's verdict (then each is forwarded, or joined to its event's incident).
    verdicts = ("bm_http_request_duration_seconds_count{", 'route="/internal/v1/verifications"', 'status="200"')
    while time.monotonic() - started < 1800:
        metrics = local_http().get(f"{suite.urls['bridge']}/metrics").text.splitlines()
        done = sum(float(line.rsplit(" ", 1)[1]) for line in metrics if all(part in line for part in verdicts))
        if done >= wanted:
            break
        time.sleep(2)
    return time.monotonic() - started


def server_times(suite: Suite, cookies: dict[str, str], path: str, count: int) -> list[float]:
    """The bridge's own milliseconds for `count` fetches of `path` (its access log's duration_ms)."""
    log = suite.folder / "bridge.log"
    before = log.read_text().count("\n")
    for _ in range(count):
        answer = local_http().get(f"{suite.urls['bridge']}{path}", cookies=cookies)
        assert answer.status_code == 200, answer.status_code
    lines = log.read_text().splitlines()[before:]
    found = []
    for line in lines:
        if not line.startswith("{"):
            continue
        entry = json.loads(line)
        if entry.get("msg") == "request" and entry.get("route") == path.split("?")[0]:
            found.append(float(entry["duration_ms"]))
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--reports", type=int, default=20, help="urgent reports timed to the screen")
    parser.add_argument("--open-incidents", type=int, default=500)
    parser.add_argument("--reports-per-incident", type=int, default=10)
    parser.add_argument("--list-fetches", type=int, default=30)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        suite = start_suite(
            Path(folder),
            {
                "BM_BRIDGE_CONSOLE_TILE_URL": "",
                "BM_MELDKAMER_SCRIPT": json.dumps([["Active", 0.2]]),  # accepted and left open
                "BM_INTAKE_TRUSTED_PROXIES": '["127.0.0.1"]',
            },
        )
        try:
            loading = load(suite, args.open_incidents, args.reports_per_incident) if args.open_incidents else 0.0
            password = create_account(suite, "bench", "dispatcher")
            with sync_playwright() as playwright:
                browser = playwright.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
                page = browser.new_page(viewport={"width": 1280, "height": 720})
                page.goto(f"{suite.urls['bridge']}/console/login")
                page.fill("#username", "bench")
                page.fill("#password", password)
                page.click("form.login button[type=submit]")
                page.wait_for_selector("body[data-live=on]")
                shown = page.locator("#incident-rows tr").count()
                seconds = []
                for n in range(args.reports):
                    lat, lon = 52.0 + 0.02 * n, 5.1
                    body = report_json(
                        category="violence",
                        in_progress=True,
                        location={"lat": lat, "lon": lon},
                        description=f"Vechtpartij nummer {n}",
                    )
                    photo = phone_photo(100 + n, lat, lon)
                    rows = page.locator("#incident-rows tr.prio-1").count()
                    sent = time.monotonic()
                    answer = submit(suite, body, [photo], f"bench-console-{n:04d}")
                    assert answer.status_code == 202, answer.text
                    page.wait_for_function(
                        "n => document.querySelectorAll('#incident-rows tr.prio-1').length > n",
                        arg=rows,
                        timeout=30_000,
                    )
                    seconds.append(time.monotonic() - sent)
                cookies = {c["name"]: c["value"] for c in page.context.cookies()}
                browser.close()
            list_ms = server_times(suite, cookies, "/console/incidents", args.list_fetches)
            rows_ms = server_times(suite, cookies, "/console/incidents/rows", args.list_fetches)
        finally:
            suite.stop()
    figures = {
        "open_incidents": args.open_incidents,
        "load_reports": args.open_incidents * args.reports_per_incident,
        "load_seconds": round(loading, 1),
        "rows_on_screen_at_login": shown,
        "reports": len(seconds),
        "median_s": round(statistics.median(seconds), 3),
        "p90_s": round(percentile(seconds, 0.9), 3),
        "max_s": round(max(seconds), 3),
        "list_page_server_ms_p50": round(percentile(list_ms, 0.5), 1) if list_ms else None,
        "list_page_server_ms_p90": round(percentile(list_ms, 0.9), 1) if list_ms else None,
        "live_rows_server_ms_p50": round(percentile(rows_ms, 0.5), 1) if rows_ms else None,
        "live_rows_server_ms_p90": round(percentile(rows_ms, 0.9), 1) if rows_ms else None,
    }
    print(json.dumps(figures))
    print(
        f"{args.open_incidents} open incidents over {figures['load_reports']} reports (loaded in "
        f"{figures['load_seconds']} s); POST -> row on the dispatcher's screen: median {figures['median_s']} s, "
        f"p90 {figures['p90_s']} s, max {figures['max_s']} s over {len(seconds)} urgent reports; the list page's "
        f"server time p50 {figures['list_page_server_ms_p50']} ms, p90 {figures['list_page_server_ms_p90']} ms; "
        f"the live rows' p50 {figures['live_rows_server_ms_p50']} ms, p90 {figures['live_rows_server_ms_p90']} ms"
    )


if __name__ == "__main__":
    main()
