"""The caller's camera in real browsers (issue #33): Debian's Chromium driven by Playwright plays a caller on a phone
and, in a second browser context, the dispatcher in the console, against the services and the simulated SMS
gateway running as real processes.

The dispatcher sends a link from the incident page; the caller opens it from the simulated SMS, refuses once (the
dispatcher sees it without a reload), then consents, shares the phone's location, and sends a photo, a real MP4
(an Android's H.264) and an iPhone's HEVC MOV, both made here with PyAV; the upload's connection drops once (the
first PATCH is cut) and tus-js-client goes on from what the server kept; the dispatcher sees the photo and the
videos appear in the incident without a reload, plays the MP4 as remuxed, and the MOV from its compatible H.264
copy once that arrives (this Chromium plays no HEVC). Every caller page passes axe-core's WCAG 2.2 AA checks
without a serious finding; a revoked link gets its own page. Screenshots for the docs are taken here
(docs/callers/)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from axe_playwright_python.sync_playwright import Axe
from playwright.sync_api import Browser, Page, Route, sync_playwright

from tests.e2e.test_console import CHROMIUM, CHROMIUM_ARGS, SERIOUS, WCAG_AA, log_in, new_page
from tests.helpers import phone_photo, report_json
from tests.suite import SmsGateway, Suite, create_dispatcher, follow, local_http, start_suite, submit
from tests.videos import phone_clip

pytestmark = pytest.mark.runs_on("sqlite")  # browsers and HTTP: no database decides any of it

SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "callers"
PLACE = {"lat": 52.0929, "lon": 5.1181}


@pytest.fixture(scope="module")
def suite(tmp_path_factory: pytest.TempPathFactory, sms: SmsGateway) -> Iterator[Suite]:
    running = start_suite(tmp_path_factory.mktemp("caller"), {"BM_BRIDGE_SMS_URL": sms.url})
    create_dispatcher(running, "anna", "dispatcher")
    yield running
    running.stop()


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield launched
        launched.close()


def accessible(page: Page, name: str) -> None:
    """No serious or critical WCAG 2.2 AA finding on the page as it is now; a screenshot for the docs."""
    found = Axe().run(page, options=WCAG_AA).response["violations"]
    serious = [(v["id"], v["impact"], [n["target"] for n in v["nodes"]]) for v in found if v["impact"] in SERIOUS]
    assert not serious, (name, serious)
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)


def play(desk: Page, selector: str) -> str:
    """Play the video `selector` finds (muted, as a page may) until it has played a moment; the copy it chose."""
    try:
        desk.eval_on_selector(selector, "v => { v.muted = true; return v.play(); }")
        desk.wait_for_function("s => document.querySelector(s).currentTime > 0.3", arg=selector, timeout=30_000)
    except Exception:
        shown = "v => [v.currentSrc, v.error && v.error.code, v.error && v.error.message, v.readyState, v.outerHTML]"
        print("VIDEO", desk.eval_on_selector(selector, shown))
        raise
    return str(desk.eval_on_selector(selector, "v => v.currentSrc"))


def test_a_caller_refuses_then_shares_and_the_dispatcher_plays_the_video(
    suite: Suite, sms: SmsGateway, browser: Browser, tmp_path: Path
) -> None:
    created = submit(
        suite,
        report_json(in_progress=True, category="violence", description="Vechtpartij bij het station", location=PLACE),
        [phone_photo(96, **PLACE)],
        "e2e-caller-camera-1",
    ).json()
    follow(suite, created, "accepted")
    dispatcher_token = create_dispatcher(suite, "kim", "dispatcher")
    incident_id = (
        local_http()
        .get(
            f"{suite.urls['bridge']}/v1/dispatch/reports/{created['id']}",
            headers={"Authorization": f"Bearer {dispatcher_token}"},
        )
        .json()["incident_id"]
    )

    # The dispatcher, in the console, asks the caller for images.
    desk_context, desk = new_page(browser)
    log_in(desk, suite, "anna")
    desk.goto(f"{suite.urls['bridge']}/console/incidents/{incident_id}")
    desk.fill("#caller-phone", "06 1122 3344")
    desk.fill("#caller-ask", "Film de twee mannen bij de fietsenstalling")
    desk.click("#caller-links button[type=submit]")
    desk.wait_for_selector("#caller-links .state-sent")

    # The caller's phone gets the SMS and opens the link.
    (message,) = sms.messages("0031611223344")
    link = re.search(r"(http://\S+/c/[A-Za-z0-9_-]+)", message["content"]).group(1)
    phone_context = browser.new_context(
        viewport={"width": 412, "height": 915},
        is_mobile=True,
        has_touch=True,
        device_scale_factor=2,
        locale="nl-NL",
        geolocation={"latitude": PLACE["lat"] + 0.0004, "longitude": PLACE["lon"]},
        permissions=["geolocation"],
    )
    phone = phone_context.new_page()
    console: list[str] = []
    phone.on("console", lambda m: console.append(f"{m.type}: {m.text}"))
    phone.on("pageerror", lambda e: console.append(f"error: {e}"))
    phone.on(
        "requestfinished", lambda r: console.append(f"{r.method} {r.url} {r.response().status if r.response() else ''}")
    )
    phone.on("requestfailed", lambda r: console.append(f"FAILED {r.method} {r.url} {r.failure}"))
    third_party: list[str] = []
    phone.on("request", lambda r: third_party.append(r.url) if not r.url.startswith(suite.urls["intake"]) else None)
    phone.goto(link)
    phone.wait_for_selector("text=Beelden delen met de meldkamer")
    accessible(phone, "consent")
    phone.click("button[value=refuse]")
    phone.wait_for_selector("text=U deelt geen beelden")
    accessible(phone, "refused")
    desk.wait_for_selector("#caller-links .state-consent_refused")  # live: no reload

    phone.click("button[value=give]")
    phone.wait_for_selector("#send-form")
    desk.wait_for_selector("#caller-links .state-consent_given")
    phone.click("#share-location")
    phone.wait_for_selector("text=Uw locatie wordt meegestuurd.")
    accessible(phone, "share")

    photo = tmp_path / "foto.jpg"
    photo.write_bytes(phone_photo(97, **PLACE))
    # An Android's MP4 (H.264), which plays everywhere as remuxed, and what an iPhone records by default: HEVC in a
    # QuickTime file, which this Chromium cannot play (the dispatcher plays the H.264 copy made after the 202).
    mp4 = tmp_path / "VID_20261207_2101.mp4"
    mp4.write_bytes(phone_clip(99, seconds=3.0, size=(640, 360), place=(PLACE["lat"], PLACE["lon"])))
    video = tmp_path / "IMG_0042.MOV"
    video.write_bytes(
        phone_clip(
            98,
            seconds=3.0,
            size=(640, 360),
            codec="hevc",
            container="mov",
            phone="iphone",
            place=(PLACE["lat"], PLACE["lon"]),
            recorded_at=datetime.now(UTC),
        )
    )
    # The connection drops once: the first PATCH is cut (a real socket cut half-way is in test_happy_path).
    # tus-js-client asks how far it got (HEAD) and sends the rest.
    seen: dict[str, Any] = {"cut": 0, "heads": 0}

    def cut_once(route: Route) -> None:
        request = route.request
        if request.method == "PATCH" and seen["cut"] == 0:
            seen["cut"] += 1
            route.abort("connectionreset")
            return
        if request.method == "HEAD":
            seen["heads"] += 1
        route.continue_()

    phone.route("**/uploads/**", cut_once)
    phone.set_input_files("#files", [str(photo), str(mp4), str(video)])
    phone.click("#send-form button[type=submit]")
    try:
        phone.wait_for_selector("text=Ontvangen: 3 bestand(en)", timeout=60_000)
    except Exception:
        print("STATE", phone.inner_text("body")[:2000])
        print("\n".join(console[-40:]))
        raise
    assert seen["cut"] == 1 and seen["heads"] >= 1, seen
    assert not third_party, third_party  # nothing from another host

    # The dispatcher sees the photo and then the videos in the incident, without reloading, and plays them; the
    # live refreshes that follow (verification's verdict, the link's state, the H.264 copy) keep a playing video
    # playing.
    android = "video.report-video:has(source[type*='avc1'])"
    iphone = "video.report-video:has(source[type*='hvc1'])"
    desk.wait_for_selector("#caller-links .state-received")
    desk.wait_for_selector(iphone, timeout=30_000)
    desk.wait_for_selector("img[alt*='BM-'][src*='/photos/']")
    assert play(desk, android).endswith("/video")  # H.264 as recorded: the remuxed copy
    hevc_type = desk.get_attribute(f"{iphone} source", "type") or ""
    assert hevc_type.startswith('video/mp4; codecs="hvc1.'), hevc_type
    plays_hevc = desk.evaluate("t => document.createElement('video').canPlayType(t)", hevc_type)
    # The H.264 copy arrives as the report's next revision, in the same page, without a reload.
    desk.wait_for_selector(f"{iphone} source[src$='?copy=compatible']", state="attached", timeout=60_000)
    played = play(desk, iphone)
    if not plays_hevc:  # this Chromium (no HEVC decoder) skipped the remuxed copy unfetched, by its type
        assert played.endswith("?copy=compatible"), played
    desk.screenshot(path=str(SCREENSHOTS / "dispatcher.png"), full_page=False)

    # The dispatcher ends the link: the caller's page says so.
    desk.click("#caller-links form.inline button")
    desk.wait_for_selector("#caller-links .state-revoked")
    phone.goto(link)
    phone.wait_for_selector("text=Deze link is ingetrokken")
    accessible(phone, "revoked")
    assert not desk.errors and not phone_context.pages[0].url.startswith("chrome-error")  # type: ignore[attr-defined]
    desk_context.close()
    phone_context.close()
