"""The caller's camera in WebKit, Safari's engine (issue #33: "works on a phone's Safari and Chrome"). No Safari runs
on Linux, and Playwright's own WebKit cannot be fetched here; Debian's WebKitGTK (the same engine, with GStreamer
decoding video where Safari uses the phone's hardware) is driven through its WebDriver by Selenium, on an X server
without a screen.

A caller opens the link from the simulated SMS, consents, and sends a photo and an iPhone's HEVC MOV through the
page's own script (tus-js-client, resumable); the dispatcher, in the console in the same engine, plays the video
from its remuxed copy, the pictures as recorded: WebKit says it plays the copy's codec (`canPlayType` of its RFC
6381 name), so it takes the first source and never needs the compatible H.264 copy, as Safari on an iPhone or a
Mac does. Chromium's side of the same flow is test_caller_camera.py.
"""

from __future__ import annotations

import os
import re
import subprocess
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from selenium import webdriver
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support.ui import WebDriverWait
from selenium.webdriver.webkitgtk.options import Options
from selenium.webdriver.webkitgtk.service import Service

from tests.e2e.test_console import PASSWORD
from tests.helpers import phone_photo, report_json
from tests.loadbalancer import self_signed_certificate, start_nginx
from tests.suite import SmsGateway, Suite, create_dispatcher, follow, free_port, local_http, start_suite, submit
from tests.videos import phone_clip

pytestmark = pytest.mark.runs_on("sqlite")  # browsers and HTTP: no database decides any of it

MINIBROWSER = Path("/usr/lib/x86_64-linux-gnu/webkit2gtk-4.1/MiniBrowser")
DRIVER = Path("/usr/bin/WebKitWebDriver")
SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "callers"
PLACE = {"lat": 52.0929, "lon": 5.1181}


@pytest.fixture(scope="module")
def suite(tmp_path_factory: pytest.TempPathFactory, sms: SmsGateway) -> Iterator[Suite]:
    running = start_suite(tmp_path_factory.mktemp("webkit"), {"BM_BRIDGE_SMS_URL": sms.url})
    create_dispatcher(running, "wim", "dispatcher")
    yield running
    running.stop()


@pytest.fixture(scope="module")
def console_url(suite: Suite, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The bridge behind nginx with TLS, as deployed: the console's cookies are `__Host-` and Secure, which WebKit,
    unlike Chromium, refuses over plain HTTP even on 127.0.0.1 (so a developer's Safari cannot log in to a
    console served without TLS)."""
    folder = tmp_path_factory.mktemp("tls")
    front = free_port()
    bridge_port = int(suite.urls["bridge"].rsplit(":", 1)[1])
    balancer = start_nginx(folder, {"bridge": front}, {"bridge": [bridge_port]}, self_signed_certificate(folder))
    yield f"https://127.0.0.1:{front}"
    balancer.stop()


@pytest.fixture(scope="module")
def display() -> Iterator[str]:
    """An X server without a screen for WebKitGTK; Xvfb picks a free display number and writes it to a pipe."""
    read, write = os.pipe()
    server = subprocess.Popen(
        ["Xvfb", "-displayfd", str(write), "-screen", "0", "1280x1024x24", "-nolisten", "tcp"],
        pass_fds=(write,),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    os.close(write)
    with os.fdopen(read) as pipe:
        number = pipe.readline().strip()
    assert number, "Xvfb did not start"
    yield f":{number}"
    server.terminate()
    server.wait(timeout=10)


@pytest.fixture
def webkit(display: str, tmp_path: Path) -> Iterator[WebDriver]:
    options = Options()
    options.binary_location = str(MINIBROWSER)
    options.add_argument("--automation")
    options.accept_insecure_certs = True  # the test's own certificate (console_url)
    service = Service(
        executable_path=str(DRIVER), env={**os.environ, "DISPLAY": display}, log_output=str(tmp_path / "webkit.log")
    )
    driver = webdriver.WebKitGTK(options=options, service=service)
    yield driver
    driver.quit()


def wait_for_text(driver: WebDriver, text: str, seconds: float = 60) -> None:
    WebDriverWait(driver, seconds, poll_frequency=0.2).until(lambda d: text in d.find_element(By.TAG_NAME, "body").text)


def test_a_caller_shares_in_webkit_and_the_dispatcher_plays_the_hevc_video_as_recorded(
    suite: Suite, sms: SmsGateway, console_url: str, webkit: WebDriver, tmp_path: Path
) -> None:
    created = submit(
        suite,
        report_json(in_progress=True, category="violence", description="Ruzie op het plein", location=PLACE),
        [phone_photo(91, **PLACE)],
        "e2e-webkit-1",
    ).json()
    follow(suite, created, "accepted")
    token = create_dispatcher(suite, "wendy", "dispatcher")
    bearer = {"Authorization": f"Bearer {token}"}
    report = local_http().get(f"{suite.urls['bridge']}/v1/dispatch/reports/{created['id']}", headers=bearer)
    incident_id = report.json()["incident_id"]
    sent = local_http().post(
        f"{suite.urls['bridge']}/v1/dispatch/incidents/{incident_id}/caller-links",
        json={"phone": "06 5566 7788", "language": "nl", "ask": "Film het plein"},
        headers=bearer,
    )
    assert sent.status_code == 201, sent.text
    (message,) = sms.messages("0031655667788")
    link = re.search(r"(http://\S+/c/[A-Za-z0-9_-]+)", message["content"]).group(1)

    # The caller, in WebKit at a phone's size.
    webkit.set_window_size(412, 915)
    webkit.get(link)
    wait_for_text(webkit, "Beelden delen met de meldkamer")
    assert "Safari" in webkit.execute_script("return navigator.userAgent")
    webkit.find_element(By.CSS_SELECTOR, "button[value=give]").click()
    WebDriverWait(webkit, 30).until(lambda d: d.find_elements(By.ID, "send-form"))
    photo, video = tmp_path / "foto.jpg", tmp_path / "IMG_0051.MOV"
    photo.write_bytes(phone_photo(92, **PLACE))
    video.write_bytes(
        phone_clip(
            93,
            seconds=3.0,
            size=(640, 360),
            codec="hevc",
            container="mov",
            phone="iphone",
            place=(PLACE["lat"], PLACE["lon"]),
            recorded_at=datetime.now(UTC),
        )
    )
    # Which requests the page's script makes, kept in the tab's sessionStorage across the page that follows.
    webkit.execute_script(
        "const open = XMLHttpRequest.prototype.open;"
        "XMLHttpRequest.prototype.open = function (method, url) {"
        "  const seen = JSON.parse(sessionStorage.getItem('xhr') || '[]'); seen.push(method + ' ' + url);"
        "  sessionStorage.setItem('xhr', JSON.stringify(seen)); return open.apply(this, arguments); };"
    )
    webkit.find_element(By.ID, "files").send_keys(f"{photo}\n{video}")
    webkit.find_element(By.CSS_SELECTOR, "#send-form button[type=submit]").click()
    wait_for_text(webkit, "Ontvangen: 2 bestand(en)")
    webkit.save_screenshot(str(SCREENSHOTS / "webkit-received.png"))
    # The page's script sent them, resumable (tus-js-client: a creation, then PATCH requests), not the form's
    # fallback in one piece.
    sent_by_script = webkit.execute_script("return JSON.parse(sessionStorage.getItem('xhr') || '[]')")
    assert any(r.startswith("POST ") and r.endswith("/uploads") for r in sent_by_script), sent_by_script
    assert any(r.startswith("PATCH ") for r in sent_by_script), sent_by_script

    # The dispatcher, in the console in the same engine (over TLS, as deployed).
    webkit.set_window_size(1280, 1000)
    webkit.get(f"{console_url}/console")
    webkit.find_element(By.ID, "username").send_keys("wim")
    webkit.find_element(By.ID, "password").send_keys(PASSWORD)
    webkit.find_element(By.CSS_SELECTOR, "form.login button[type=submit]").click()
    try:
        WebDriverWait(webkit, 30).until(lambda d: d.current_url.endswith("/console/incidents"))
    except Exception:
        print("LOGIN", webkit.current_url, webkit.get_cookies(), webkit.find_element(By.TAG_NAME, "body").text[:500])
        raise
    webkit.get(f"{console_url}/console/incidents/{incident_id}")
    WebDriverWait(webkit, 60, poll_frequency=0.2).until(
        lambda d: d.find_elements(By.CSS_SELECTOR, "video.report-video")
    )
    source_type = webkit.find_element(By.CSS_SELECTOR, "video.report-video source").get_attribute("type") or ""
    assert source_type.startswith('video/mp4; codecs="hvc1.'), source_type
    assert webkit.execute_script("return document.createElement('video').canPlayType(arguments[0])", source_type)
    webkit.execute_script("const v = document.querySelector('video.report-video'); v.muted = true; v.play();")
    try:
        WebDriverWait(webkit, 30, poll_frequency=0.2).until(
            lambda d: d.execute_script(
                "const v = document.querySelector('video.report-video'); return v.currentTime > 0.3"
            )
        )
    except Exception:
        print(
            webkit.execute_script(
                "const v = document.querySelector('video.report-video'); "
                "return [v.currentSrc, v.error && v.error.code, v.error && v.error.message, v.readyState, v.outerHTML]"
            )
        )
        raise
    played = webkit.execute_script("return document.querySelector('video.report-video').currentSrc")
    assert played.endswith("/video"), played  # the remuxed HEVC copy, not the compatible H.264 one
    webkit.execute_script("document.querySelector('video.report-video').scrollIntoView({block: 'center'})")
    webkit.save_screenshot(str(SCREENSHOTS / "webkit-dispatcher.png"))
