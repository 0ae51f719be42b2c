"""The dispatchers' console in a real browser: Debian's Chromium driven by Playwright against the four services
running as real processes. A dispatcher logs in, sees an urgent report arrive live, opens it, views the photo,
asks the citizen a question and sees the answer appear; a supervisor sees the original and the supervision
pages, a dispatcher cannot; the 112 alarm shows on every screen; everything works by keyboard alone; axe-core
finds no serious accessibility violations; the frequent actions have keyboard shortcuts, and the console works without
script. The screenshots in the README are taken here (docs/console/)."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from axe_playwright_python.sync_playwright import Axe
from playwright.sync_api import Browser, BrowserContext, Page, sync_playwright

from tests.helpers import phone_photo, report_json
from tests.suite import Suite, create_dispatcher, eventually, local_http, start_suite, submit

# Runs on SQLite only (conftest.py, END_TO_END_DATABASES): the console in a browser, on the embedded default a new machine starts with.
pytestmark = pytest.mark.runs_on("sqlite")

CHROMIUM = Path("/usr/bin/chromium")
SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "console"
PASSWORD = "a long enough test password"  # create_dispatcher's
ADMIN = {"Authorization": "Bearer dev-only-meldkamer-admin-token-change-me"}
# The flags this machine's Chromium needs: no sandbox as root, no calls home (the network is closed).
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-sync",
    "--disable-background-networking",
    "--disable-component-update",
    "--autoplay-policy=no-user-gesture-required",
]
SERIOUS = ("serious", "critical")
WCAG_AA = {
    "runOnly": {"type": "tag", "values": ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22aa"]},
    "resultTypes": ["violations"],
}


@pytest.fixture(scope="module")
def suite(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Suite]:
    # A short 112 deadline, so that the alarm can be seen in a test's time.
    running = start_suite(
        tmp_path_factory.mktemp("console"),
        {
            "BM_BRIDGE_CALL_112_DEADLINE_SECONDS": "4",
            # The default dispatcher's script without its closing a minute in: here the meldkamer's operator ends
            # the incidents a test wants closed (POST /admin/incidents/{id}/end), whatever the machine's speed.
            "BM_MELDKAMER_SCRIPT": json.dumps(
                [["Active", 2.0], ["ResourcesAssigned", 10.0], ["ask:Can you describe the person you saw?", 15.0]]
            ),
            # An evening's witnesses come from addresses of their own, as phones do (X-Forwarded-For from here).
            "BM_INTAKE_TRUSTED_PROXIES": '["127.0.0.1"]',
        },
    )
    create_dispatcher(running, "anna", "dispatcher")
    running.env["SUPERVISOR_TOKEN"] = create_dispatcher(running, "sara", "supervisor")
    yield running
    running.stop()


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    assert CHROMIUM.exists(), (
        "Debian's chromium is not installed (`python3 dev.py test` installs it: scripts/setup_machine.py)"
    )
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield launched
        launched.close()


@pytest.fixture(scope="module")
def shared() -> dict[str, Any]:
    """What the tests of this module hand on to each other (the report, its incident, its photo)."""
    return {}


def new_page(browser: Browser) -> tuple[BrowserContext, Page]:
    context = browser.new_context(viewport={"width": 1280, "height": 900}, locale="nl-NL")
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.on(
        "console", lambda message: errors.append(message.text) if "Content Security Policy" in message.text else None
    )
    page.errors = errors  # type: ignore[attr-defined]
    return context, page


def log_in(page: Page, suite: Suite, username: str) -> None:
    page.goto(f"{suite.urls['bridge']}/console")
    assert "/console/login" in page.url
    page.fill("#username", username)
    page.fill("#password", PASSWORD)
    page.click("form.login button[type=submit]")
    page.wait_for_url("**/console/incidents")


def supervisor_api(suite: Suite, path: str) -> Any:
    answer = local_http().get(
        f"{suite.urls['bridge']}{path}",
        headers={"Authorization": f"Bearer {suite.env['SUPERVISOR_TOKEN']}"},
        timeout=10,
    )
    answer.raise_for_status()
    return answer.json()


def screenshot(page: Page, name: str, full_page: bool = False) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=full_page)


def test_a_dispatcher_sees_an_urgent_report_arrive_live_and_talks_with_the_citizen(
    suite: Suite, browser: Browser, shared: dict[str, Any]
) -> None:
    context, page = new_page(browser)
    log_in(page, suite, "anna")
    cookie = next(c for c in context.cookies() if c["name"] == "__Host-bm_console")
    assert cookie["secure"] and cookie["httpOnly"] and cookie["sameSite"] == "Strict"
    page.wait_for_selector("body[data-live=on]")
    page.keyboard.press("Shift")  # the dispatcher's first key: from now on the console may make a sound
    page.evaluate("window.sameDocument = true")  # gone if the page reloads

    body = report_json(
        category="violence",
        in_progress=True,
        description="Vechtpartij op het Vredenburg, een man met een mes",
        location={"lat": 52.0925, "lon": 5.1150},
    )
    sent = time.monotonic()
    created = submit(suite, body, [phone_photo(11, 52.0925, 5.1150)], "console-urgent-0001")
    assert created.status_code == 202, created.text
    row = page.wait_for_selector("#incident-rows tr.prio-1", timeout=15_000)
    seen_after = time.monotonic() - sent
    print(f"urgent report on the dispatcher's screen {seen_after:.2f} s after the citizen's POST")
    assert page.evaluate("window.sameDocument === true"), "the list must update without a reload"
    banner = page.wait_for_selector("#new-urgent:not([hidden])", timeout=5_000)
    assert "Nieuw spoedincident" in banner.inner_text() and "Geweld of vechtpartij" in banner.inner_text()
    assert banner.get_attribute("data-sound") == "played"
    assert "SPOED" in row.inner_text() and "Geweld of vechtpartij" in row.inner_text()
    page.wait_for_selector("#incident-rows tr.prio-1 .verdict", timeout=15_000)  # verification's verdict
    # Named as a dispatcher names it, not by a hex id: its place in words once the geocoder answered (in the
    # background, the offline gazetteer here), the clock time beside its age.
    page.wait_for_selector("#incident-rows tr.prio-1 .place:has-text('van Domplein 29, Utrecht')", timeout=15_000)
    assert re.search(r"\d\d:\d\d · \d+ (s|min)", page.inner_text("#incident-rows tr.prio-1"))
    # The list and the map side by side at 1280x720; the row under the pointer lights up on the map, and back.
    page.set_viewport_size({"width": 1280, "height": 720})
    page.wait_for_function("() => Number(document.getElementById('map').dataset.markers) >= 2")
    desk = page.evaluate("""() => { const l = document.querySelector('.desk-list').getBoundingClientRect(),
        m = document.querySelector('.desk-map').getBoundingClientRect(); return [l.right <= m.left, l.width]; }""")
    assert desk[0] and desk[1] >= 640, desk  # beside each other, the list the wider
    row_box = page.locator("#incident-rows tr.prio-1").bounding_box()
    assert row_box and row_box["y"] + row_box["height"] <= 720 and row_box["height"] <= 100, row_box  # in view, compact
    page.hover("#incident-rows tr.prio-1 td.when")
    page.wait_for_selector("#incident-rows tr.prio-1.highlight")
    screenshot(page, "incidents")
    page.set_viewport_size({"width": 700, "height": 900})  # narrow: one column, the map under the list
    assert page.evaluate(
        "() => document.querySelector('.desk-map').getBoundingClientRect().top"
        " >= document.querySelector('.desk-list').getBoundingClientRect().bottom"
    )
    screenshot(page, "incidents-narrow", full_page=True)
    page.set_viewport_size({"width": 1280, "height": 900})

    page.click("#incident-rows tr.prio-1 a")
    page.wait_for_url("**/console/incidents/*")
    incident_id = page.url.rsplit("/", 1)[1]
    report = supervisor_api(suite, f"/v1/dispatch/reports/{created.json()['id']}")
    photo_id = report["photos"][0]["photo_id"]
    image = page.wait_for_selector(f"img[src$='/photos/{photo_id}']")
    page.wait_for_function("img => img.complete && img.naturalWidth > 0", arg=image)
    assert page.locator("a.original").count() == 0  # a dispatcher is not offered the original
    page.click("a.photo-link")  # the photo at full size, inside the console
    page.wait_for_url(lambda url: f"/photos/{photo_id}/view" in url)
    page.wait_for_function("() => document.querySelector('img.full').naturalWidth >= 1600")
    page.click("main a:has-text('Terug')")
    page.wait_for_url(f"**/console/incidents/{incident_id}*")
    viewed = supervisor_api(suite, f"/v1/dispatch/audit?target_id={photo_id}")
    assert any(
        e["action"] == "view_photo" and e["username"] == "anna" and e["detail"]["copy"] == "sanitised" for e in viewed
    )

    question_field = f"#q-{created.json()['id']}"
    page.fill(question_field, "Welke kant liep de man met het mes op?")
    page.click(f"{question_field} >> xpath=ancestor::form//button")
    page.wait_for_selector(".notice")
    assert "Welke kant liep de man met het mes op?" in page.inner_text("#incident-reports")

    citizen = {"Authorization": f"Bearer {created.json()['access_token']}"}
    messages_url = f"{suite.urls['intake']}{created.json()['status_url']}/messages"
    question = eventually(
        lambda: next(
            (
                m
                for m in local_http().get(messages_url, headers=citizen).json()
                if m["text"] == "Welke kant liep de man met het mes op?"
            ),
            None,
        )
    )
    assert question is not None
    page.evaluate("window.sameDocument = true")
    answered = local_http().post(
        messages_url,
        json={"text": "Richting het station, rode jas", "in_reply_to": question["id"]},
        headers={**citizen, "Idempotency-Key": "console-answer-0001"},
    )
    assert answered.status_code == 201, answered.text
    page.wait_for_selector("#incident-reports .from_citizen:has-text('Richting het station, rode jas')", timeout=15_000)
    assert page.evaluate("window.sameDocument === true"), "the answer must appear without a reload"
    thumbnail = page.wait_for_selector(".event .thumbs img")  # the best photo leads, kept across live updates
    page.wait_for_function("img => img.complete && img.naturalWidth > 0", arg=thumbnail)
    screenshot(page, "incident", full_page=True)
    assert not page.errors, page.errors  # type: ignore[attr-defined]
    shared.update(incident_id=incident_id, report_id=created.json()["id"], photo_id=photo_id)

    # What a dispatcher may not reach: the original, and the supervisors' pages.
    base = f"{suite.urls['bridge']}/console"
    for path in (
        f"/reports/{shared['report_id']}/photos/{photo_id}?original=true",
        f"/reports/{shared['report_id']}/photos/{photo_id}/view?original=true",
        "/supervision",
        "/audit",
        f"/reports/{shared['report_id']}/photos/{photo_id}/custody",
    ):
        assert page.request.get(base + path).status == 403, path
        if "/view" not in path and "/custody" not in path and "original" in path:
            continue  # an image, not a page
        page.goto(base + path)
        assert "(403)" in page.inner_text("h1")
    assert page.locator("nav a[href='/console/supervision']").count() == 0
    context.close()


def test_a_supervisor_sees_the_original_the_custody_and_the_supervision_pages(
    suite: Suite, browser: Browser, shared: dict[str, Any]
) -> None:
    context, page = new_page(browser)
    log_in(page, suite, "sara")
    page.goto(f"{suite.urls['bridge']}/console/incidents/{shared['incident_id']}")
    with page.expect_response(lambda r: "original=true" in r.url and "/view" not in r.url) as original:
        page.click("a.original")  # one click from the incident
    assert original.value.status == 200 and original.value.headers["content-type"] == "image/jpeg"
    assert original.value.headers["cache-control"] == "no-store"
    viewed = supervisor_api(suite, f"/v1/dispatch/audit?target_id={shared['photo_id']}")
    assert any(e["action"] == "view_photo_original" and e["username"] == "sara" for e in viewed)

    page.goto(f"{suite.urls['bridge']}/console/reports/{shared['report_id']}/photos/{shared['photo_id']}/custody")
    custody = page.inner_text("main")
    assert "report.received" in custody and "view_photo_original" in custody
    screenshot(page, "custody")
    page.goto(f"{suite.urls['bridge']}/console/supervision")
    text = page.inner_text("main")
    assert "meldkamer" in text and "closed" in text  # the circuit to the meldkamer, closed (healthy)
    screenshot(page, "supervision")
    page.goto(f"{suite.urls['bridge']}/console/audit")
    assert "view_photo_original" in page.inner_text("main")
    assert not page.errors, page.errors  # type: ignore[attr-defined]
    context.close()


def test_the_112_alarm_shows_on_every_screen_until_the_meldkamer_accepts(suite: Suite, browser: Browser) -> None:
    context, page = new_page(browser)
    log_in(page, suite, "anna")
    page.goto(f"{suite.urls['bridge']}/console/map")
    page.wait_for_selector("body[data-live=on]")
    refusing = {"error_rate": 1.0, "error_statuses": [503], "fail_after_commit": 0.0, "retry_after_seconds": 1}
    local_http().put(
        f"{suite.urls['meldkamer']}/admin/faults", json=refusing, headers=ADMIN, timeout=5
    ).raise_for_status()
    try:
        body = report_json(
            category="fire",
            in_progress=True,
            description="Brand in een schuur, er zit iemand binnen",
            location={"lat": 52.1500, "lon": 5.3900},
        )
        created = submit(suite, body, [phone_photo(12, 52.1500, 5.3900)], "console-urgent-0002")
        assert created.status_code == 202, created.text
        alarm = page.wait_for_selector("#alarm-112:not([hidden])", timeout=30_000)  # the deadline is 4 s
        assert "112" in alarm.inner_text() and "Brand" in alarm.inner_text()
        page.wait_for_function(
            "() => Number(document.getElementById('map').dataset.markers) >= 2"
        )  # no tiles here: markers
        screenshot(page, "map-with-112-alarm")
    finally:
        local_http().put(
            f"{suite.urls['meldkamer']}/admin/faults", json={}, headers=ADMIN, timeout=5
        ).raise_for_status()
    page.wait_for_selector("#alarm-112", state="hidden", timeout=60_000)  # accepted once the meldkamer is back
    context.close()


def focused(page: Page) -> dict[str, Any]:
    return page.evaluate("""() => { const e = document.activeElement, s = getComputedStyle(e);
        return {tag: e.tagName, id: e.id, href: e.getAttribute('href'), text: (e.innerText || '').trim(),
                outline: s.outlineStyle, shadow: s.boxShadow}; }""")


def tab_to(page: Page, wanted: Any, limit: int = 60) -> dict[str, Any]:
    """Press Tab until the focused element is the wanted one; every stop on the way must show its focus."""
    for _ in range(limit):
        page.keyboard.press("Tab")
        now = focused(page)
        if now["tag"] != "BODY":
            assert now["outline"] != "none" or now["shadow"] != "none", f"focus not visible on {now}"
        if wanted(now):
            return now
    raise AssertionError("not reached by keyboard")


def test_everything_works_by_keyboard_alone(suite: Suite, browser: Browser, shared: dict[str, Any]) -> None:
    context, page = new_page(browser)
    page.goto(f"{suite.urls['bridge']}/console/login")
    tab_to(page, lambda f: f["text"] == "Naar de inhoud")  # the skip link comes first
    tab_to(page, lambda f: f["id"] == "username")
    page.keyboard.type("anna")
    page.keyboard.press("Tab")
    page.keyboard.type(PASSWORD)
    page.keyboard.press("Enter")
    page.wait_for_url("**/console/incidents")

    # All incidents, the closed ones among them, are a link away.
    tab_to(page, lambda f: f["href"] == "/console/incidents?show=all")
    page.keyboard.press("Enter")
    page.wait_for_url("**/console/incidents?show=all")
    tab_to(page, lambda f: f["href"] == f"/console/incidents/{shared['incident_id']}")
    page.keyboard.press("Enter")
    page.wait_for_url(f"**/console/incidents/{shared['incident_id']}")
    tab_to(page, lambda f: f["id"] == f"q-{shared['report_id']}")
    page.keyboard.type("Had hij een fiets bij zich?")
    page.keyboard.press("Tab")
    page.keyboard.press("Enter")
    page.wait_for_selector(".notice")
    assert "Had hij een fiets bij zich?" in page.inner_text("#incident-reports")

    tab_to(page, lambda f: f["href"] == "/console/map")
    page.keyboard.press("Enter")
    page.wait_for_url("**/console/map")
    tab_to(page, lambda f: f["id"] == "map")  # the map itself takes the keyboard (arrows pan, + and - zoom)
    page.keyboard.press("Equal")

    tab_to(page, lambda f: f["text"] == "Uitloggen", limit=100)  # past the end of the page, round to the top
    page.keyboard.press("Enter")
    page.wait_for_url("**/console/login?reason=ended")
    # The session is over: the old cookie opens nothing.
    page.goto(f"{suite.urls['bridge']}/console/incidents")
    assert "/console/login" in page.url
    context.close()


def test_the_frequent_actions_have_keyboard_shortcuts(suite: Suite, browser: Browser, shared: dict[str, Any]) -> None:
    context, page = new_page(browser)
    log_in(page, suite, "anna")
    page.goto(f"{suite.urls['bridge']}/console/incidents?show=all")
    page.wait_for_selector("body[data-live=on]")
    page.keyboard.type("?")  # the help, listing them
    help_shown = page.wait_for_selector("dialog#shortcuts[open]")
    assert "volgende spoedincident" in help_shown.inner_text()
    screenshot(page, "shortcuts")
    page.keyboard.press("Escape")
    page.wait_for_selector("dialog#shortcuts", state="hidden")

    page.keyboard.type("n")  # the next urgent incident, chosen in the list and lit up on the map
    assert page.evaluate("() => document.activeElement.closest('tr').classList.contains('prio-1')")
    page.wait_for_selector("#incident-rows tr.highlight")
    page.keyboard.type("j")
    page.keyboard.type("k")
    chosen = focused(page)["href"]
    assert chosen.startswith("/console/incidents/")
    page.keyboard.type("o")  # open it
    page.wait_for_url(f"**{chosen}")
    page.keyboard.type("q")  # to the question, in the side panel
    assert focused(page)["id"] == "side-question"
    page.keyboard.type("jqn?")  # typed words stay words
    assert page.input_value("#side-question") == "jqn?" and "/console/incidents/" in page.url
    assert page.evaluate("() => !document.getElementById('shortcuts').open")
    page.fill("#side-question", "")
    page.keyboard.press("Tab")  # out of the field
    page.keyboard.press("Escape")  # back to the list, as it was left
    page.wait_for_url("**/console/incidents?show=all")
    assert not page.errors, page.errors  # type: ignore[attr-defined]
    context.close()


def test_the_console_works_without_script(suite: Suite, browser: Browser, shared: dict[str, Any]) -> None:
    context = browser.new_context(viewport={"width": 1280, "height": 720}, locale="nl-NL", java_script_enabled=False)
    page = context.new_page()
    log_in(page, suite, "anna")
    assert page.locator("#shortcuts-open").is_hidden()  # no script, no shortcuts to offer
    page.click("nav.shows a:has-text('Alle incidenten')")  # a plain link
    page.wait_for_url("**/console/incidents?show=all")
    assert page.locator(f"a[href='/console/incidents/{shared['incident_id']}']").count() == 1
    page.click(f"a[href='/console/incidents/{shared['incident_id']}']")
    page.wait_for_url(f"**/console/incidents/{shared['incident_id']}")
    page.fill("#side-question", "Zag u een kenteken?")
    page.click("#side-question >> xpath=ancestor::form//button")
    page.wait_for_selector(".notice")
    assert "Zag u een kenteken?" in page.inner_text("#incident-reports")
    context.close()


@pytest.mark.parametrize("role", ["anna", "sara"])
def test_axe_finds_no_serious_accessibility_violations(
    suite: Suite, browser: Browser, shared: dict[str, Any], role: str
) -> None:
    context, page = new_page(browser)
    axe = Axe()
    # The checker itself finds what it should: an unlabelled field and low contrast on a page of our making.
    page.set_content('<main><input id="x"><p style="color:#bbb;background:#fff">grijs</p></main>')
    assert {"label", "color-contrast"} <= {v["id"] for v in axe.run(page, options=WCAG_AA).response["violations"]}
    page.goto(f"{suite.urls['bridge']}/console/login")
    found = {"login": axe.run(page, options=WCAG_AA)}
    log_in(page, suite, role)
    pages = {
        "incidents": "/console/incidents",
        "incident": f"/console/incidents/{shared['incident_id']}",
        "map": "/console/map",
        "english": f"/console/incidents/{shared['incident_id']}?lang=en",
    }
    if role == "sara":
        pages |= {
            "supervision": "/console/supervision",
            "audit": "/console/audit",
            "custody": f"/console/reports/{shared['report_id']}/photos/{shared['photo_id']}/custody",
        }
    for name, path in pages.items():
        page.goto(suite.urls["bridge"] + path)
        page.wait_for_selector("body[data-live=on]")
        found[name] = axe.run(page, options=WCAG_AA)
    serious = {
        name: [
            (v["id"], v["impact"], [n["target"] for n in v["nodes"]][:3])
            for v in result.response["violations"]
            if v["impact"] in SERIOUS
        ]
        for name, result in found.items()
    }
    assert not any(serious.values()), serious
    minor = {name: [v["id"] for v in result.response["violations"]] for name, result in found.items()}
    print("axe-core", found["login"].response["testEngine"]["version"], "other findings:", minor)
    context.close()


CLOSED = {"Closed", "Cancelled"}
EVENING_CATEGORIES = ["burglary", "theft", "vandalism", "suspicious_situation", "public_nuisance", "violence"]


def incidents_now(suite: Suite) -> dict[str, dict[str, Any]]:
    return {i["incident_id"]: i for i in supervisor_api(suite, "/v1/dispatch/incidents?limit=200")}


def test_a_dispatcher_works_an_evening_by_keyboard_and_a_supervisor_reads_the_figures(
    suite: Suite, browser: Browser
) -> None:
    """An evening's list: 30 incidents around Utrecht (each its own event, 500 m apart; six urgent, five with a
    photo), 8 of them ended by the meldkamer's operator. The dispatcher sees the open ones by default, each by its
    MK number and address with a clock time, works through them by keyboard, and the map and the list light each
    other up; the closed ones are a link away. A supervisor reads the figures, whose CSV is the table."""
    before = set(incidents_now(suite))
    sent = []
    for n in range(30):
        row, column = divmod(n, 6)
        # 500 m steps around the Dam in Amsterdam: away from the other tests' events, near the offline addresses
        place = {"lat": 52.3640 + 0.0045 * row, "lon": 4.8742 + 0.0073 * column}
        body = report_json(
            category=EVENING_CATEGORIES[n % len(EVENING_CATEGORIES)],
            in_progress=n % 5 == 0,
            location=place,
            description=f"Avondmelding {n}: iets gezien bij de {['kerk', 'brug', 'school', 'markt'][n % 4]}",
        )
        photos = [phone_photo(7000 + n, place["lat"], place["lon"])] if n % 6 == 1 else []
        answer = submit(suite, body, photos, f"evening-{n:03d}", headers={"X-Forwarded-For": f"198.51.100.{n + 1}"})
        assert answer.status_code == 202, answer.text
        sent.append(answer.json())

    def the_evening() -> dict[str, dict[str, Any]]:
        return {k: v for k, v in incidents_now(suite).items() if k not in before}

    eventually(
        lambda: len(the_evening()) == 30 and all(i["meldkamer_incident_id"] for i in the_evening().values()), limit=60
    )
    evening = the_evening()
    assert len(evening) == 30 and all(i["meldkamer_incident_id"] for i in evening.values()), [
        (i["category"], i["meldkamer_incident_id"], i["operational_status"], len(i["reports"]))
        for i in evening.values()
    ]
    ended = sorted(evening)[:8]
    for incident_id in ended:
        answer = local_http().post(
            f"{suite.urls['meldkamer']}/admin/incidents/{evening[incident_id]['meldkamer_incident_id']}/end",
            json={"status": "Closed"},
            headers=ADMIN,
        )
        assert answer.status_code == 200, answer.text
    eventually(lambda: all(incidents_now(suite)[i]["operational_status"] == "Closed" for i in ended), limit=30)

    context = browser.new_context(viewport={"width": 1280, "height": 720}, locale="nl-NL")
    page = context.new_page()
    log_in(page, suite, "anna")
    page.wait_for_selector("body[data-live=on]")

    def shown(path: str) -> set[str]:
        page.goto(f"{suite.urls['bridge']}{path}")
        page.wait_for_selector("body[data-live=on]")
        return set(
            page.eval_on_selector_all(
                "#incident-rows tr[data-incident-id]", "rows => rows.map(r => r.dataset.incidentId)"
            )
        )

    # Open by default, closed behind a link: compared with what the bridge says at the same moment.
    def lists_match() -> bool:
        now = incidents_now(suite)
        open_now = {i for i, v in now.items() if v["operational_status"] not in CLOSED and not v["merged_into"]}
        closed_now = {i for i, v in now.items() if v["operational_status"] in CLOSED and not v["merged_into"]}
        return shown("/console/incidents") == open_now and shown("/console/incidents?show=closed") == closed_now

    eventually(lists_match, limit=30)
    assert set(ended) <= shown("/console/incidents?show=closed")
    assert not set(ended) & shown("/console/incidents")

    # Names a dispatcher uses: the MK number, the category, the address, a clock time beside the age.
    page.goto(f"{suite.urls['bridge']}/console/incidents")
    page.wait_for_selector("body[data-live=on]")
    some_open = next(i for i in sorted(evening) if i not in ended)
    row_text = page.inner_text(f"#incident-rows tr[data-incident-id='{some_open}']")
    assert evening[some_open]["meldkamer_incident_id"] in row_text, row_text
    assert re.search(r"(Dam 1|Stationsplein 1), Amsterdam", row_text), row_text
    assert re.search(r"\b\d{2}:\d{2} · ", row_text), row_text
    assert not re.search(r"\b[0-9a-f]{8}\b", row_text), row_text  # no hex ids
    screenshot(page, "evening")

    # The list and the map light each other up: a row under the pointer makes its marker bigger; a marker under
    # the pointer marks its row.
    page.hover(f"#incident-rows tr[data-incident-id='{some_open}']")
    page.wait_for_function(
        "() => [...document.querySelectorAll('#map path.leaflet-interactive')].some(p => p.getAttribute('stroke-width') === '5')"
    )
    page.mouse.move(5, 700)
    page.wait_for_selector("#incident-rows tr.highlight", state="detached")
    marker = page.locator("#map path.leaflet-interactive[fill-opacity='0.9']").first
    marker.hover(force=True)
    page.wait_for_selector("#incident-rows tr.highlight")

    # By keyboard: to the next urgent incident, through the list, open one, ask, back.
    page.mouse.move(5, 700)
    page.keyboard.type("n")
    assert page.evaluate("() => document.activeElement.closest('tr').classList.contains('prio-1')")
    for _ in range(3):
        page.keyboard.type("j")
    chosen = focused(page)["href"]
    page.keyboard.press("Enter")
    page.wait_for_url(f"**{chosen}")
    assert page.locator("h1").inner_text()  # the event leads
    page.keyboard.type("q")
    assert focused(page)["id"] == "side-question"
    page.keyboard.type("Welke kant liep hij op?")
    page.keyboard.press("Tab")
    page.keyboard.press("Enter")  # the question's button
    page.wait_for_selector(".notice")
    screenshot(page, "evening-incident")
    page.keyboard.press("Escape")
    page.wait_for_url("**/console/incidents")
    context.close()

    # A supervisor's figures: the charts, each with its table, and the CSV is the table.
    context = browser.new_context(viewport={"width": 1280, "height": 900}, locale="nl-NL")
    page = context.new_page()
    log_in(page, suite, "sara")
    page.goto(f"{suite.urls['bridge']}/console/figures")
    assert page.locator("svg.chart[role=img]").count() >= 6
    received = page.eval_on_selector_all(
        "#table-reports tbody tr", "rows => rows.map(r => [...r.cells].map(c => c.innerText.trim()))"
    )
    assert int(received[-1][1]) >= 30  # the total row: the evening's reports at least
    csv_link = page.get_attribute("#reports a[download]", "href")
    csv_text = page.request.get(f"{suite.urls['bridge']}{csv_link}").text()
    csv_rows = [line.split(",") for line in csv_text.strip().splitlines()[1:]]
    assert len(csv_rows) == len(received)
    assert [[cell or "–" for cell in row[1:]] for row in csv_rows] == [row[1:] for row in received]
    screenshot(page, "figures")
    context.close()
