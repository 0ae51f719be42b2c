"""The console's guard rails, in-process: the session cookie, CSRF and origin checks, logout, inactivity, a
disabled account, the supervisors' pages, the headers on every page, the live feed's 112 alarm, and the keyboard
shortcuts' help. (What a dispatcher sees and does in a real browser is tests/e2e/test_console.py.)"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from bridge_support import PASSWORD, browser, log_in, start_bridge, token_in
from sqlalchemy import func, select, update

from burgermelding_shared.timeutil import utcnow
from dispatch_bridge.accounts import tokens, users
from dispatch_bridge.config import BridgeSettings
from dispatch_bridge.console import live
from dispatch_bridge.console.sessions import SESSION_COOKIE
from dispatch_bridge.models import BridgeMessage, ConsoleSession, Incident, audit


async def test_the_session_cookie_and_the_headers_of_every_page(start_service: Callable[..., Any]) -> None:
    bridge = await start_bridge(start_service)
    async with browser(bridge) as client:
        assert (await client.get("/console/incidents")).headers["location"] == "/console/login?reason=none"
        form = await client.get("/console/login")
        answer = await client.post(
            "/console/login", data={"username": "dirk", "password": PASSWORD, "csrf_token": token_in(form.text)}
        )
        cookie = next(c for c in answer.headers.get_list("set-cookie") if c.startswith(SESSION_COOKIE + "="))
        flags = {part.strip().lower() for part in cookie.split(";")[1:]}
        assert {"secure", "httponly", "samesite=strict", "path=/"} <= flags
        assert not any(f.startswith("domain") for f in flags)  # __Host-: this host only
        page = await client.get("/console/incidents")
        assert page.status_code == 200
        policy = page.headers["content-security-policy"]
        assert "script-src 'self';" in policy and "unsafe-inline" not in policy and "unsafe-eval" not in policy
        assert "frame-ancestors 'none'" in policy and "service.pdok.nl" in policy  # the tile server's host
        assert page.headers["cache-control"] == "no-store"
        assert "<script>" not in page.text and " style=" not in page.text and "onclick" not in page.text
        assert re.search(r"<title>([^<]*)</title>", page.text).group(1) == "Incidenten · Burgermelding"
        assert page.text.count('id="held-rows"') == 1
        leaflet = await client.get("/console/static/leaflet/leaflet.js")
        assert leaflet.status_code == 200 and "Leaflet" in leaflet.text[:500]  # from the xstatic package
        # The database keeps only the token's hash.
        async with bridge.runtime.db.sessions() as session:
            stored = (await session.execute(select(ConsoleSession))).scalars().one()
        assert stored.token_sha256 != client.cookies[SESSION_COOKIE] and stored.username == "dirk"


async def test_changes_need_the_sessions_csrf_token_and_our_origin(start_service: Callable[..., Any]) -> None:
    bridge = await start_bridge(start_service)
    async with browser(bridge) as client:
        # The login form itself: without its token, or from another site, nothing happens.
        form = await client.get("/console/login")
        refused = await client.post("/console/login", data={"username": "dirk", "password": PASSWORD})
        assert refused.status_code == 403 and SESSION_COOKIE not in refused.headers.get("set-cookie", "")
        refused = await client.post(
            "/console/login",
            headers={"Origin": "https://evil.example"},
            data={"username": "dirk", "password": PASSWORD, "csrf_token": token_in(form.text)},
        )
        assert refused.status_code == 403
        csrf = await log_in(client)
        for data, headers in (
            ({}, {}),
            ({"csrf_token": "forged"}, {}),
            ({"csrf_token": csrf}, {"Origin": "https://evil.example"}),
            ({"csrf_token": csrf}, {"Sec-Fetch-Site": "cross-site"}),
        ):
            answer = await client.post(
                "/console/reports/any/question", data={"text": "Hallo?", **data}, headers=headers
            )
            assert answer.status_code == 403, (data, headers)
            assert "formulier is niet meer geldig" in answer.text  # in the console: a page, in Dutch
        async with bridge.runtime.db.sessions() as session:
            assert (await session.execute(select(func.count()).select_from(BridgeMessage))).scalar_one() == 0
        # With the token the change goes through (here: to a report that does not exist).
        answer = await client.post(
            "/console/reports/nope/question", data={"text": "Hallo?", "csrf_token": csrf, "incident_id": "x"}
        )
        assert answer.status_code == 303 and "problem=" in answer.headers["location"]
        # The problem is shown on the page it returns to, sealed with the session's secret; words put in a link
        # by someone else are not.
        assert "deze melding bestaat niet" in (await client.get(answer.headers["location"])).text
        forged = await client.get("/console/incidents", params={"problem": "Bel nu 0900-1234", "seal": "0" * 32})
        assert forged.status_code == 200 and "0900-1234" not in forged.text


async def test_logout_inactivity_and_a_disabled_account_end_the_session(start_service: Callable[..., Any]) -> None:
    bridge = await start_bridge(start_service, console_idle_minutes=0.02)  # 1.2 s
    async with browser(bridge) as client:
        csrf = await log_in(client)
        cookie = client.cookies[SESSION_COOKIE]
        answer = await client.post("/console/logout", data={"csrf_token": csrf})
        assert answer.headers["location"] == "/console/login?reason=ended"
    async with browser(bridge) as other:  # the old cookie, kept by someone after the logout, opens nothing
        other.cookies.set(SESSION_COOKIE, cookie)
        assert (await other.get("/console/incidents")).headers["location"] == "/console/login?reason=ended"
    async with browser(bridge) as client:
        await log_in(client)
        await asyncio.sleep(1.5)  # the live feed does not count as activity, and nothing else happened
        assert (await client.get("/console/incidents/rows", headers={"X-Console": "fetch"})).status_code == 401
        assert (await client.get("/console/incidents")).headers["location"] == "/console/login?reason=ended"
    async with browser(bridge) as client:
        await log_in(client)
        await users.change_account(bridge.runtime, tokens.Actor("sara", "supervisor"), "dirk", "disable")
        assert (await client.get("/console/incidents")).headers["location"] == "/console/login?reason=ended"
    async with bridge.runtime.db.sessions() as session:
        actions = list(
            (
                await session.execute(select(audit.entries.c.action).where(audit.entries.c.action.like("console_%")))
            ).scalars()
        )
        still_on = (
            await session.execute(
                select(func.count()).select_from(ConsoleSession).where(ConsoleSession.ended_at.is_(None))
            )
        ).scalar_one()
    assert actions.count("console_login") == 3 and "console_logout" in actions and "console_timeout" in actions
    assert still_on == 0


async def test_the_supervisors_pages_are_for_supervisors(start_service: Callable[..., Any]) -> None:
    bridge = await start_bridge(start_service)
    async with browser(bridge) as client:
        await log_in(client, "dirk")
        for path in ("/console/supervision", "/console/audit", "/console/reports/r/photos/p/custody"):
            answer = await client.get(path)
            assert answer.status_code == 403 and "supervisors" in answer.text, path
        assert (await client.get("/console/reports/r/photos/p?original=true")).status_code == 403
        assert "/console/supervision" not in (await client.get("/console/incidents")).text
    async with browser(bridge) as client:
        await log_in(client, "sara")
        assert (await client.get("/console/audit")).status_code == 200
        assert "/console/supervision" in (await client.get("/console/incidents")).text
    async with browser(bridge) as stranger:
        stranger.cookies.set(SESSION_COOKIE, "guessed")
        assert (await stranger.get("/console/events")).status_code == 401


async def test_the_live_feed_names_urgent_incidents_past_the_112_deadline(start_service: Callable[..., Any]) -> None:
    bridge = await start_bridge(start_service)
    now = utcnow()
    async with bridge.runtime.db.transaction() as session:
        for incident_id, state, missed in (
            ("late", "sent", True),
            ("taken", "accepted", True),
            ("fresh", "queued", False),
        ):
            session.add(
                Incident(
                    id=incident_id,
                    category="fire",
                    priority=1,
                    delivery_state=state,
                    call_112_sent_at=now if missed else None,
                    created_at=now - timedelta(minutes=1),
                    updated_at=now,
                )
            )
    snapshot = await live.read_snapshot(bridge.runtime)
    assert [i["id"] for i in snapshot.overdue] == ["late"]
    assert {i["id"] for i in snapshot.urgent} == {"late", "taken", "fresh"}
    assert snapshot.overdue[0]["category"] == {"nl": "Brand", "en": "Fire"}
    async with bridge.runtime.db.transaction() as session:
        late = await session.get(Incident, "late")
        assert late is not None
        late.delivery_state = "accepted"
        session.add(late)
    changed = await live.read_snapshot(bridge.runtime)
    assert changed.overdue == [] and changed.version != snapshot.version


async def test_a_disabled_account_stays_out_a_new_login_ends_the_old_and_a_session_has_a_longest_life(
    start_service: Callable[..., Any],
) -> None:
    bridge = await start_bridge(start_service)
    async with browser(bridge) as client:
        await log_in(client)
        # Disabled and enabled again before the session asks for anything: the session is over all the same.
        for change in ("disable", "enable"):
            await users.change_account(bridge.runtime, tokens.Actor("sara", "supervisor"), "dirk", change)
        assert (await client.get("/console/incidents")).headers["location"] == "/console/login?reason=ended"
    async with browser(bridge) as client:
        await log_in(client)
        first = client.cookies[SESSION_COOKIE]
        await log_in(client)  # again, in the same browser: the first session ends
        async with browser(bridge) as other:
            other.cookies.set(SESSION_COOKIE, first)
            assert (await other.get("/console/incidents")).headers["location"] == "/console/login?reason=ended"
        assert (await client.get("/console/incidents")).status_code == 200
        # However active, a session ends after console_session_hours (12) from its login.
        async with bridge.runtime.db.transaction() as session:
            await session.execute(
                update(ConsoleSession)
                .where(ConsoleSession.ended_at.is_(None))
                .values(created_at=utcnow() - timedelta(hours=12, seconds=1))
            )
        assert (await client.get("/console/incidents")).headers["location"] == "/console/login?reason=expired"


async def test_a_photo_fetched_again_by_the_browser_does_not_keep_the_session_on(
    start_service: Callable[..., Any],
) -> None:
    bridge = await start_bridge(start_service)
    async with browser(bridge) as client:
        await log_in(client)
        before = utcnow() - timedelta(minutes=5)
        async with bridge.runtime.db.transaction() as session:
            await session.execute(update(ConsoleSession).values(last_seen_at=before))
        await client.get("/console/reports/r/photos/p")  # (no such photo: the session is checked first)
        async with bridge.runtime.db.sessions() as session:
            assert (await session.execute(select(ConsoleSession.last_seen_at))).scalar_one() == before
        await client.get("/console/incidents")  # a page the dispatcher opens does
        async with bridge.runtime.db.sessions() as session:
            assert (await session.execute(select(ConsoleSession.last_seen_at))).scalar_one() > before


def test_a_session_opens_a_few_live_feeds_at_most() -> None:
    feed = live.LiveFeed(runtime=None)  # type: ignore[arg-type]
    assert all(feed.admit("one") for _ in range(live.FEEDS_PER_SESSION))
    assert not feed.admit("one") and feed.admit("two")
    feed.release("one")
    assert feed.admit("one")


def test_the_tile_server_setting_is_an_address_and_only_its_host_enters_the_policy() -> None:
    from dispatch_bridge.console import content_security_policy

    assert "img-src 'self' data: https://*.tile.openstreetmap.org;" in content_security_policy(
        "https://{s}.tile.openstreetmap.org/{z}/{x}/{y}.png"
    )
    assert "img-src 'self' data:;" in content_security_policy("")
    for wrong in (
        "tiles.example/{z}/{x}/{y}.png",
        "javascript:alert(1)",
        "https://a b/{z}",
        "https://x.example/{z};script-src *",
    ):
        with pytest.raises(ValueError):
            BridgeSettings(console_tile_url=wrong)


async def test_the_keyboard_shortcuts_are_listed_on_a_help_overlay(start_service: Callable[..., Any]) -> None:
    bridge = await start_bridge(start_service)
    async with browser(bridge) as client:
        await log_in(client)
        page = (await client.get("/console/incidents")).text
        overlay = re.search(r'<dialog id="shortcuts" aria-labelledby="h-shortcuts">(.*?)</dialog>', page, re.S)
        assert overlay, "no help overlay"
        keys = re.findall(r"<dt>(.*?)</dt>", overlay.group(1))
        assert [re.findall(r"<kbd>([^<]+)</kbd>", k) for k in keys] == [
            ["j"],
            ["k"],
            ["n"],
            ["Enter", "o"],
            ["q"],
            ["Esc", "Backspace"],
            ["?"],
        ]
        assert "volgende spoedincident" in overlay.group(1) and "tekstveld" in overlay.group(1)
        # The button that opens it is hidden until the script (which makes the shortcuts) shows it.
        assert re.search(r'<button type="button" id="shortcuts-open" hidden', page)
        script = (await client.get("/console/static/console.js")).text
        assert "typing(event.target)" in script and '"?": showHelp' in script
        assert "<dialog" not in (await client.get("/console/login")).text  # logged out: no shortcuts
