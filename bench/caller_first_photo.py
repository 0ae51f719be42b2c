"""From a dispatcher's request for a caller's images to the first photo on the dispatcher's screen (issue #33).

Starts the suite and the simulated SMS gateway as real processes, with the gateway delivering each SMS after
`--sms-delay` seconds (what a mobile network adds; shown apart in the figures). A dispatcher watches the incident
page in Debian's Chromium (Playwright). Each run: the dispatcher's API asks a caller (a new number each time) for
images; the phone (an HTTP client, whose person is taken to act at once) reads the SMS from the gateway, opens the
link, consents and sends one phone photo (a 12 MP JPEG with camera EXIF, as the form sends it); the clock stops
when the photo's image shows on the dispatcher's page, fetched by the live feed, without a reload.

    uv run python bench/caller_first_photo.py [--runs 10] [--sms-delay 2.0]
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path

from playwright.sync_api import sync_playwright

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tests.e2e.test_console import CHROMIUM, CHROMIUM_ARGS, log_in
from tests.helpers import phone_photo, report_json
from tests.suite import SmsGateway, create_dispatcher, follow, local_http, start_suite, submit

PLACE = {"lat": 52.0907, "lon": 5.1214}


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[round(share * (len(ordered) - 1))]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--sms-delay", type=float, default=2.0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bm-bench-caller-") as folder:
        os.environ["BM_SMS_SIM_DELAY_SECONDS"] = str(args.sms_delay)  # the gateway's process takes it on
        sms = SmsGateway(Path(folder))
        suite = start_suite(Path(folder) / "suite", {"BM_BRIDGE_SMS_URL": sms.url})
        try:
            create_dispatcher(suite, "anna", "dispatcher")
            token = create_dispatcher(suite, "bench", "dispatcher")
            api = {"Authorization": f"Bearer {token}"}
            created = submit(
                suite, report_json(in_progress=True, category="violence", location=PLACE), [], "bench-caller-0"
            ).json()
            follow(suite, created, "accepted")
            bridge = suite.urls["bridge"]
            incident_id = (
                local_http().get(f"{bridge}/v1/dispatch/reports/{created['id']}", headers=api).json()["incident_id"]
            )
            photo = phone_photo(1, **PLACE, size=(4000, 3000))
            totals, sms_waits, phone_times, screen_waits = [], [], [], []
            with sync_playwright() as playwright:
                browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
                page = browser.new_page(viewport={"width": 1280, "height": 900}, locale="nl-NL")
                log_in(page, suite, "anna")
                page.goto(f"{bridge}/console/incidents/{incident_id}")
                for run in range(args.runs):
                    shown = page.locator("#incident-reports article.report img").count()
                    number = f"06{20000000 + run:08d}"
                    started = time.monotonic()
                    asked = local_http().post(
                        f"{bridge}/v1/dispatch/incidents/{incident_id}/caller-links",
                        json={"phone": number, "ask": "Laat zien wat u ziet"},
                        headers=api,
                    )
                    asked.raise_for_status()
                    while not (messages := sms.messages("0031" + number[1:])):
                        time.sleep(0.01)
                    got_sms = time.monotonic()
                    link = re.search(r"(http://\S+/c/[A-Za-z0-9_-]+)", messages[0]["content"]).group(1)
                    phone = local_http()
                    phone.get(link).raise_for_status()
                    phone.post(f"{link}/consent", data={"decision": "give"}, follow_redirects=False)
                    sent = phone.post(
                        f"{link}/files", files=[("files", ("foto.jpg", photo, "image/jpeg"))], follow_redirects=False
                    )
                    assert sent.status_code == 303, sent.text
                    uploaded = time.monotonic()
                    page.wait_for_function(
                        f"() => document.querySelectorAll('#incident-reports article.report img').length > {shown}",
                        timeout=60_000,
                    )
                    on_screen = time.monotonic()
                    totals.append(on_screen - started)
                    sms_waits.append(got_sms - started)
                    phone_times.append(uploaded - got_sms)
                    screen_waits.append(on_screen - uploaded)
                browser.close()
        finally:
            suite.stop()
            sms.stop()
    print(f"{args.runs} runs, one 12 MP photo each, SMS delivered {args.sms_delay:g} s after the gateway took it")
    for name, values in (
        ("request -> first photo on the dispatcher's screen", totals),
        ("  of which the request and the SMS (its delay)", sms_waits),
        ("  the phone: open, consent, send (HTTP, no human)", phone_times),
        ("  from the 202-like answer to the screen", screen_waits),
        ("request -> screen, without the SMS's delay", [t - args.sms_delay for t in totals]),
    ):
        print(f"{name:52s} median {statistics.median(values):5.2f} s   p90 {percentile(values, 0.9):5.2f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
