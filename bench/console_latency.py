"""From a citizen's POST of an urgent report to its incident on a dispatcher's screen, in a real browser.

Starts the whole suite as real processes, logs a dispatcher in to the console in Debian's Chromium (Playwright),
then sends urgent reports one after another, each its own event (2 km apart), and times each from the POST to
the moment its row appears in the live incident list and the new-urgent signal shows. Prints one JSON line and
a summary. The floor is the feed's poll (live.POLL_SECONDS, 0.5 s) plus the list's fetch.

    uv run python bench/console_latency.py [--reports 20]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

from playwright.sync_api import sync_playwright

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tests.helpers import phone_photo, report_json
from tests.suite import create_dispatcher, start_suite, submit

CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-sync",
    "--disable-background-networking",
    "--disable-component-update",
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--reports", type=int, default=20)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        suite = start_suite(Path(folder), {"BM_BRIDGE_CONSOLE_TILE_URL": ""})
        try:
            create_dispatcher(suite, "bench", "dispatcher")
            with sync_playwright() as playwright:
                browser = playwright.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
                page = browser.new_page()
                page.goto(f"{suite.urls['bridge']}/console/login")
                page.fill("#username", "bench")
                page.fill("#password", "a long enough test password")
                page.click("form.login button[type=submit]")
                page.wait_for_selector("body[data-live=on]")
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
                browser.close()
        finally:
            suite.stop()
    ordered = sorted(seconds)
    figures = {
        "reports": len(seconds),
        "median_s": round(statistics.median(seconds), 3),
        "p90_s": round(ordered[int(0.9 * (len(ordered) - 1))], 3),
        "max_s": round(max(seconds), 3),
    }
    print(json.dumps(figures))
    print(
        f"POST -> row on the dispatcher's screen: median {figures['median_s']} s, p90 {figures['p90_s']} s, "
        f"max {figures['max_s']} s over {len(seconds)} urgent reports"
    )


if __name__ == "__main__":
    main()
