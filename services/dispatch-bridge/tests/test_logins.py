"""Dispatcher login under attack: no lock anyone can turn. Growing waits per name and source, and per source; a
ceiling per name that refuses strangers but only delays the owner at a desk with a recent good login; IPv6
counted by its /64; a guessing campaign said loudly; names tried kept only as keyed hashes; the same answer and
the same hash for unknown names, on threads of their own; argon2id in place of older scrypt hashes; all of it
across replicas in Redis; and the desks each name logged in from kept in the database, so that a restart does
not make every owner a stranger."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import logging
import re
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import AsyncExitStack
from datetime import timedelta
from types import SimpleNamespace
from typing import Any

import bridge_support
import httpx
import pytest
from bridge_support import PASSWORD, account
from sqlalchemy import select

from burgermelding_shared.ratelimit import network_of
from burgermelding_shared.sharedstate import SharedState
from burgermelding_shared.timeutil import utcnow
from dispatch_bridge.accounts import logins, passwords
from dispatch_bridge.main import create_app
from dispatch_bridge.models import Dispatcher, KnownLoginSource, audit
from tests.databases import run_sql

PROXY = {"trusted_proxies": ["127.0.0.1", "testclient"]}
DESK = "10.1.1.1"  # dirk's workstation


async def start_bridge(start_service: Callable[..., Any], **settings: Any) -> Any:
    """Behind a proxy it trusts (the test client), so that X-Forwarded-For names each try's source."""
    return await bridge_support.start_bridge(start_service, **{**PROXY, **settings})


async def try_login(bridge: Any, username: str, password: str, client: str = "10.1.2.3") -> Any:
    # The bridge trusts the test client as its proxy, so X-Forwarded-For names the dispatcher's workstation.
    return await bridge.client.post(
        "/v1/auth/token", data={"username": username, "password": password}, headers={"X-Forwarded-For": client}
    )


def bearer(response: Any) -> dict[str, str]:
    assert response.status_code == 200, response.text
    return {"Authorization": f"Bearer {response.json()['access_token']}"}


async def audit_rows(bridge: Any) -> list[dict[str, Any]]:
    async with bridge.runtime.db.sessions() as session:
        return [
            dict(row) for row in (await session.execute(select(audit.entries).order_by(audit.entries.c.seq))).mappings()
        ]


async def audited(bridge: Any, target: str) -> list[str]:
    """The actions audited about one account, oldest first (its creation left out)."""
    return [
        row["action"]
        for row in await audit_rows(bridge)
        if row["target_type"] == "dispatcher" and row["target_id"] == target and row["action"] != "account_created"
    ]


@pytest.fixture
async def same_database(start_service: Callable[..., Any]) -> AsyncIterator[Callable[..., Any]]:
    """Start another bridge on a running one's database and settings: a replica beside it, or the same bridge
    after a restart or a deploy (its memory, and with it the shared state when there is no Redis, starts
    empty). (`start_service` makes a new database on PostgreSQL for each start.)"""
    stack = AsyncExitStack()

    async def start(bridge: Any) -> Any:
        app = create_app(bridge.settings)
        await stack.enter_async_context(app.router.lifespan_context(app))
        client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver")
        stack.push_async_callback(client.aclose)
        return SimpleNamespace(app=app, client=client, runtime=app.state.runtime, settings=bridge.settings)

    yield start
    await stack.aclose()


@pytest.fixture
def warnings_of_auth() -> Iterator[list[logging.LogRecord]]:
    """What auth logs at warning and above (the app's logging setup replaces the root's handlers)."""
    records: list[logging.LogRecord] = []
    handler = logging.Handler(logging.WARNING)
    handler.emit = records.append  # type: ignore[method-assign]
    logger = logging.getLogger("dispatch_bridge.accounts.logins")
    logger.addHandler(handler)
    yield records
    logger.removeHandler(handler)


# ---- waits that grow, per name and source, and per source ----------------------------------------------


async def test_wrong_passwords_make_each_next_try_from_that_source_wait_longer(
    start_service: Callable[..., Any],
) -> None:
    bridge = await start_bridge(start_service, login_free_failures=2)
    assert [(await try_login(bridge, "dirk", "guess")).status_code for _ in range(2)] == [401, 401]
    waiting = await try_login(bridge, "dirk", PASSWORD)  # even the right password waits its turn
    assert (waiting.status_code, waiting.json()["error"], waiting.headers["retry-after"]) == (
        429,
        "login_throttled",
        "1",
    )
    assert waiting.json()["detail_nl"].startswith("te veel inlogpogingen")
    await asyncio.sleep(1.1)
    assert (await try_login(bridge, "dirk", "guess")).status_code == 401  # the third in a row...
    assert (await try_login(bridge, "dirk", PASSWORD)).headers["retry-after"] == "2"  # ...doubles the wait
    await asyncio.sleep(2.1)
    bearer(await try_login(bridge, "dirk", PASSWORD))  # the right password after the wait: in, count cleared
    assert (await try_login(bridge, "dirk", "guess")).status_code == 401  # a new run starts free
    assert await audited(bridge, "dirk") == ["login_failed"] * 2 + [
        "login_throttled",
        "login_failed",
        "login_throttled",
        "login",
        "login_failed",
    ]


async def test_a_guesser_waits_ever_longer_while_the_owner_at_his_desk_gets_in(
    start_service: Callable[..., Any],
) -> None:
    bridge = await start_bridge(start_service, login_free_failures=1, login_account_ceiling=1000)
    bearer(await try_login(bridge, "dirk", PASSWORD, client=DESK))  # dirk logged in from his desk before
    waits: list[int] = []
    for _ in range(3):
        await asyncio.sleep(waits[-1] if waits else 0)  # as told, and not a moment longer
        assert (await try_login(bridge, "dirk", "guess", client="10.6.6.6")).status_code == 401
        refused = await try_login(bridge, "dirk", "guess", client="10.6.6.6")
        assert refused.status_code == 429
        waits.append(int(refused.headers["retry-after"]))
    assert waits == [1, 2, 4]  # the guesser waits twice as long after each wrong password
    refused = await try_login(bridge, "dirk", PASSWORD, client="10.6.6.6")  # the right one is no way round it
    assert refused.status_code == 429 and int(refused.headers["retry-after"]) > 1
    bearer(await try_login(bridge, "dirk", PASSWORD, client=DESK))  # dirk at his desk: not held up at all


async def test_one_client_guessing_many_names_is_slowed_down_too(start_service: Callable[..., Any]) -> None:
    bridge = await start_bridge(start_service, login_free_failures=3)
    for name in ("anna", "bert", "carla"):  # names that do not exist count for the source all the same
        assert (await try_login(bridge, name, "guess", client="10.6.6.6")).status_code == 401
    refused = await try_login(bridge, "dirk", PASSWORD, client="10.6.6.6")
    assert (refused.status_code, refused.json()["error"]) == (429, "login_throttled")
    bearer(await try_login(bridge, "dirk", PASSWORD, client=DESK))  # dirk at his own desk is not held up


async def test_ipv6_sources_are_counted_by_their_64(start_service: Callable[..., Any]) -> None:
    bridge = await start_bridge(start_service, login_free_failures=1)
    assert (await try_login(bridge, "dirk", "guess", client="2001:db8:1:2::1")).status_code == 401
    # Another address of the same /64 is the same subscriber: it waits with the first...
    same = await try_login(bridge, "dirk", "guess", client="2001:db8:1:2:ffff:ffff:ffff:fffe")
    assert (same.status_code, same.headers.get("retry-after")) == (429, "1")
    # ...while the next /64 is another source.
    assert (await try_login(bridge, "dirk", "guess", client="2001:db8:1:3::1")).status_code == 401
    # The same for one source trying many names: a new address in its /64 is no fresh start.
    assert (await try_login(bridge, "anna", "guess", client="2001:db8:9:9::1")).status_code == 401
    assert (await try_login(bridge, "bert", "guess", client="2001:db8:9:9::2")).status_code == 429
    # Counted as every limit of the suite counts clients: the one network_of, no copy of it here to drift.
    assert not hasattr(logins, "source_network") and logins.network_of is network_of
    pseudonyms = logins.Pseudonyms("a secret")
    assert (
        pseudonyms.source("2001:db8:1:2:abcd::9")
        == pseudonyms.source("2001:db8:1:2::1")
        != pseudonyms.source("2001:db8:1:3::1")
    )
    assert pseudonyms.source("::ffff:10.1.1.1") == pseudonyms.source("10.1.1.1")


# ---- no lock anyone can turn: a ceiling per name that delays the owner and refuses strangers ----------------


async def test_a_guessing_campaign_does_not_keep_the_owner_out_and_is_said_loudly(
    start_service: Callable[..., Any], warnings_of_auth: list[logging.LogRecord]
) -> None:
    bridge = await start_bridge(
        start_service, login_free_failures=2, login_account_ceiling=5, login_ceiling_delay_seconds=0.3
    )
    earlier = bearer(await try_login(bridge, "sara", PASSWORD, client="10.9.9.9"))  # sara, at her desk
    # Thirty wrong passwords for sara from thirty places: the old lockout would have shut her out.
    answers = [await try_login(bridge, "sara", f"guess {n}", client=f"10.66.0.{n}") for n in range(30)]
    # (Her own first login from her desk, unknown until then, was the first of the ceiling's five tries.)
    assert [a.status_code for a in answers] == [401] * 4 + [429] * 26
    assert {a.json()["error"] for a in answers[4:]} == {"login_throttled"}
    assert all(800 < int(a.headers["retry-after"]) <= 900 for a in answers[4:])
    # At her own desk she gets in, a little later: delayed, never refused.
    started = time.monotonic()
    sara = bearer(await try_login(bridge, "sara", PASSWORD, client="10.9.9.9"))
    assert time.monotonic() - started >= 0.3
    # From a desk she has not used lately she must wait like any stranger: that is the ceiling.
    elsewhere = await try_login(bridge, "sara", PASSWORD, client="10.2.2.2")
    assert (elsewhere.status_code, elsewhere.json()["error"]) == (429, "login_throttled")
    # Nor does any of it touch what she has open: guessing a name must not end a shift.
    assert (await bridge.client.get("/v1/dispatch/audit", headers=earlier)).status_code == 200

    # Said loudly: a warning with a stable event name, a metric for the alert, an audit entry.
    campaign = [r for r in warnings_of_auth if getattr(r, "event", None) == "login_guessing_campaign"]
    assert len(campaign) == 1 and campaign[0].levelno == logging.WARNING and "sara" not in campaign[0].getMessage()
    metrics = (await bridge.client.get("/metrics")).text
    assert "bm_login_guessing_campaigns_total 1.0" in metrics
    actions = await audited(bridge, "sara")  # (the ceiling is reached before the fifth try is checked)
    assert actions[:6] == ["login"] + ["login_failed"] * 3 + ["login_campaign", "login_failed"]
    assert actions.count("login_throttled") == 1  # once per wait, not once per refused try

    # A supervisor may lift the ceiling (say, once the campaign is blocked upstream): the other desk gets in.
    lifted = await bridge.client.post("/v1/dispatch/users/sara/unlock", headers=sara)
    assert lifted.json() == {"username": "sara", "role": "supervisor", "disabled": False, "locked": False}
    bearer(await try_login(bridge, "sara", PASSWORD, client="10.2.2.2"))


async def test_after_a_restart_a_campaign_still_lets_the_owner_in_from_her_desk(
    start_service: Callable[..., Any], same_database: Callable[..., Any]
) -> None:
    bridge = await start_bridge(
        start_service, login_free_failures=2, login_account_ceiling=5, login_ceiling_delay_seconds=0.3
    )
    bearer(await try_login(bridge, "sara", PASSWORD, client="10.9.9.9"))  # sara, at her desk, yesterday
    # A deploy: the bridge starts again on the same database with nothing in memory (no Redis here, which
    # could be away as well). Her desk is in the database, not in what the restart forgot.
    restarted = await same_database(bridge)
    answers = [await try_login(restarted, "sara", f"guess {n}", client=f"10.66.0.{n}") for n in range(30)]
    assert [a.status_code for a in answers] == [401] * 5 + [429] * 25  # the ceiling holds against strangers
    started = time.monotonic()
    bearer(await try_login(restarted, "sara", PASSWORD, client="10.9.9.9"))  # delayed, never refused
    assert time.monotonic() - started >= 0.3
    assert (await try_login(restarted, "sara", PASSWORD, client="10.2.2.2")).status_code == 429  # elsewhere: no
    # The same after the shared state is simply lost (Redis emptied or away): nothing of it made her desk known.
    restarted.runtime.shared = SharedState(namespace=restarted.runtime.shared.prefix[:-1])
    assert [
        (await try_login(restarted, "sara", f"again {n}", client=f"10.67.0.{n}")).status_code for n in range(6)
    ] == [401] * 5 + [429]
    bearer(await try_login(restarted, "sara", PASSWORD, client="10.9.9.9"))


async def test_known_desks_are_kept_as_keyed_hashes_and_forgotten_after_their_days(
    start_service: Callable[..., Any],
) -> None:
    bridge = await start_bridge(start_service, login_known_source_days=14)
    bearer(await try_login(bridge, "dirk", PASSWORD, client=DESK))
    bearer(await try_login(bridge, "dirk", PASSWORD, client="2001:db8:1:2::1"))
    bearer(await try_login(bridge, "dirk", PASSWORD, client="2001:db8:1:2::99"))  # the same /64: the same desk
    rows = run_sql(
        bridge.settings.database_url, "SELECT name_hmac, source_hmac, last_login_at FROM known_login_sources"
    )
    dirk = logins.LoginAttempt.of(bridge.settings, "dirk", DESK)
    assert {(row[0], row[1]) for row in rows} == {
        (dirk.name, dirk.source),
        (dirk.name, logins.LoginAttempt.of(bridge.settings, "dirk", "2001:db8:1:2::5").source),
    }
    # Nothing in it says who or where: no name, no address, no network; keyed hashes only.
    assert all(re.fullmatch(r"[0-9a-f]{32}", value) for row in rows for value in row[:2])
    assert not any(text in str(rows) for text in ("dirk", DESK, "10.1.1", "2001:db8", "2001:0db8"))
    assert await logins.is_known_source(bridge.runtime, dirk)
    # A desk not logged in from for longer than login_known_source_days is a stranger again...
    async with bridge.runtime.db.transaction() as session:
        stored = await session.get(KnownLoginSource, (dirk.name, dirk.source))
        assert stored is not None
        stored.last_login_at = utcnow() - timedelta(days=14, minutes=1)
        session.add(stored)
    assert not await logins.is_known_source(bridge.runtime, dirk)
    # ...and is removed at the next good login, whoever's.
    bearer(await try_login(bridge, "sara", PASSWORD, client="10.9.9.9"))
    async with bridge.runtime.db.sessions() as session:
        assert await session.get(KnownLoginSource, (dirk.name, dirk.source)) is None
        kept = (await session.execute(select(KnownLoginSource))).scalars().all()
    assert len(kept) == 2  # dirk's IPv6 desk and sara's, both recent
    bearer(await try_login(bridge, "dirk", PASSWORD, client=DESK))  # back at his desk: known again
    assert await logins.is_known_source(bridge.runtime, dirk)


async def test_a_flood_from_one_source_never_keeps_the_owner_out(start_service: Callable[..., Any]) -> None:
    bridge = await start_bridge(
        start_service, login_free_failures=2, login_max_delay_seconds=0.05, login_account_ceiling=1000
    )
    bearer(await try_login(bridge, "dirk", PASSWORD, client=DESK))
    statuses = []
    for n in range(60):  # as fast as the bridge answers, the waits short enough to be let in often
        statuses.append((await try_login(bridge, "dirk", f"guess {n}", client="10.6.6.6")).status_code)
        if n % 10 == 0:
            bearer(await try_login(bridge, "dirk", PASSWORD, client=DESK))  # every time, at once
    assert set(statuses) <= {401, 429} and 429 in statuses


async def test_a_burst_of_concurrent_tries_from_many_sources_cannot_slip_past_the_ceiling(
    start_service: Callable[..., Any],
) -> None:
    bridge = await start_bridge(start_service, login_account_ceiling=4)
    burst = await asyncio.gather(*(try_login(bridge, "dirk", f"guess {n}", client=f"10.0.0.{n}") for n in range(40)))
    statuses = [response.status_code for response in burst]
    # Counted before the password is checked: at most the ceiling's tries are checked, never more.
    assert set(statuses) == {401, 429} and statuses.count(401) == 4, statuses
    # Every try that was checked was counted: as many failures in the audit as answers of 401.
    assert (await audited(bridge, "dirk")).count("login_failed") == 4


async def test_a_very_long_run_of_wrong_passwords_still_waits_and_never_fails(
    start_service: Callable[..., Any],
) -> None:
    bridge = await start_bridge(start_service, login_free_failures=0, login_max_delay_seconds=0.001)
    attempt = logins.LoginAttempt.of(bridge.settings, "dirk", "10.1.2.3")
    for _ in range(1100):  # as if 1,100 wrong passwords had been counted (2 ** 1100 overflows a float)
        await bridge.runtime.shared.count(attempt.pair, 3600)
    await asyncio.sleep(0.01)
    assert (await try_login(bridge, "dirk", "guess")).status_code == 401  # counted and answered, not a 500


async def test_the_console_login_says_how_long_to_wait_in_both_languages(start_service: Callable[..., Any]) -> None:
    bridge = await start_bridge(start_service, login_free_failures=1)

    async def console_try(lang: str, password: str) -> httpx.Response:
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=bridge.app),
            base_url="https://testserver",
            headers={"Origin": "https://testserver", "X-Forwarded-For": "10.6.6.6"},
        ) as web:
            form = await web.get(f"/console/login?lang={lang}")
            token = re.search(r'name="csrf_token" value="([^"]+)"', form.text)
            assert token is not None
            return await web.post(
                f"/console/login?lang={lang}",
                data={"username": "dirk", "password": password, "csrf_token": token.group(1)},
            )

    assert (await console_try("nl", "guess")).status_code == 401
    dutch, english = await console_try("nl", PASSWORD), await console_try("en", PASSWORD)
    for page, words in (
        (dutch, "te veel inlogpogingen; probeer het over 1 s opnieuw"),
        (english, "too many login attempts; try again in 1 s"),
    ):
        assert (page.status_code, page.headers.get("retry-after")) == (429, "1"), page.text
        assert words in page.text and "text/html" in page.headers["content-type"]
    assert 'lang="nl"' in dutch.text and 'lang="en"' in english.text


async def test_the_login_routes_document_throttling_not_a_lockout(start_service: Callable[..., Any]) -> None:
    bridge = await start_bridge(start_service)
    paths = bridge.app.openapi()["paths"]
    token = paths["/v1/auth/token"]["post"]
    examples = {
        code: set(answer["content"]["application/problem+json"]["examples"])
        for code, answer in token["responses"].items()
        if code != "200" and "content" in answer
    }
    assert examples["401"] == {"invalid_credentials"} and examples["429"] == {"login_throttled"}
    assert examples["503"] == {"logins_busy"}
    users = paths["/v1/dispatch/users/{username}/{change}"]["post"]
    for summary in (token["summary"], users["summary"]):
        assert "lockout" not in summary.lower() and "lock the account" not in summary.lower()
    assert "never locks" in token["summary"].lower() and "ceiling" in users["summary"]


# ---- what is kept of a name tried --------------------------------------------------------------------------


async def test_a_failed_login_is_audited_without_the_name_typed(
    start_service: Callable[..., Any], warnings_of_auth: list[logging.LogRecord]
) -> None:
    bridge = await start_bridge(start_service, login_free_failures=1, login_account_ceiling=2)
    typed = "Zomer2026!geheim"  # a password typed into the name field
    for n in range(4):  # failed, throttled, and past the name's ceiling: every kind of entry
        await try_login(bridge, typed, "a guess", client=f"10.5.5.{n % 2}")
    assert (await try_login(bridge, "dirk", "not it")).status_code == 401  # a real account is named as itself
    rows = await audit_rows(bridge)
    about_typed = [row for row in rows if row["target_id"].startswith("name-hmac:")]
    assert {row["action"] for row in about_typed} == {"login_failed", "login_throttled", "login_campaign"}
    assert len({row["target_id"] for row in about_typed}) == 1  # one pseudonym: the tries can be told together
    assert not any(typed.lower() in str(value).lower() for row in rows for value in row.values())
    assert all(row["actor"] == "anonymous" for row in about_typed)
    assert ("login_failed", "dirk") in [(row["action"], row["target_id"]) for row in rows]
    assert warnings_of_auth and not any(typed in r.getMessage() or typed in str(r.__dict__) for r in warnings_of_auth)
    # The pseudonym is keyed with the bridge's secret: without it, a list of likely names does not reverse it.
    assert about_typed[0]["target_id"] != "name-hmac:" + hashlib.sha256(typed.casefold().encode()).hexdigest()[:32]


async def test_an_unknown_name_costs_the_same_hash_on_the_password_threads(
    start_service: Callable[..., Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    bridge = await start_bridge(start_service)
    calls: list[tuple[str, str]] = []
    check = passwords.check_password

    def spying_check(password: str, stored: str | None) -> tuple[bool, str | None]:
        calls.append(("known" if stored else "unknown", threading.current_thread().name.split("_")[0]))
        return check(password, stored)

    verified: list[str] = []
    for method in ("verify", "verify_and_update"):
        original = getattr(passwords.passwords, method)
        monkeypatch.setattr(
            passwords.passwords, method, lambda *args, _m=method, _o=original: verified.append(_m) or _o(*args)
        )
    monkeypatch.setattr(passwords, "check_password", spying_check)
    await try_login(bridge, "dirk", "guess")
    await try_login(bridge, "nobody", "guess")
    # Both hashed, on the password threads (not the event loop's, nor the default pool photo reads use).
    assert calls == [("known", "password-check"), ("unknown", "password-check")]
    assert verified == ["verify_and_update", "verify"]  # one argon2id verification each
    assert passwords.passwords.verify("x", passwords.hash_password("x")) and passwords.hash_password("x").startswith(
        "$argon2id$"
    )


async def test_a_flood_cannot_queue_the_owner_out_of_the_password_threads(
    start_service: Callable[..., Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    bridge = await start_bridge(start_service, login_hash_threads=1, login_hash_queue=1)
    bearer(await try_login(bridge, "dirk", PASSWORD, client=DESK))
    release = threading.Event()
    check = passwords.check_password

    def slow_check(password: str, stored: str | None) -> tuple[bool, str | None]:
        if password.startswith("slow"):
            release.wait(10)
        return check(password, stored)

    monkeypatch.setattr(passwords, "check_password", slow_check)
    busy = [asyncio.create_task(try_login(bridge, f"name{n}", "slow guess", client=f"10.8.0.{n}")) for n in range(2)]
    await asyncio.sleep(0.2)  # one check runs, one waits: the pool is full
    refused = await try_login(bridge, "name3", "guess", client="10.8.0.3")
    assert (refused.status_code, refused.json()["error"], refused.headers["retry-after"]) == (503, "logins_busy", "2")
    owner = asyncio.create_task(try_login(bridge, "dirk", PASSWORD, client=DESK))  # queues all the same
    await asyncio.sleep(0.2)
    release.set()
    bearer(await owner)
    assert [(await task).status_code for task in busy] == [401, 401]


async def test_an_older_scrypt_hash_becomes_argon2id_at_the_next_login(start_service: Callable[..., Any]) -> None:
    bridge = await start_bridge(start_service)
    salt = b"0123456789abcdef"
    digest = hashlib.scrypt(b"an older password", salt=salt, dklen=32, n=2**14, r=8, p=1)
    legacy = f"scrypt${base64.b64encode(salt).decode()}${base64.b64encode(digest).decode()}"
    async with bridge.runtime.db.transaction() as session:
        user = await session.get(Dispatcher, "dirk")
        assert user is not None
        user.password_hash = legacy
        session.add(user)
    assert (await try_login(bridge, "dirk", "not it")).status_code == 401
    assert (await account(bridge, "dirk")).password_hash == legacy  # type: ignore[union-attr]
    first = bearer(await try_login(bridge, "dirk", "an older password"))
    stored = await account(bridge, "dirk")
    assert stored is not None and stored.password_hash.startswith("$argon2id$")
    assert passwords.passwords.verify("an older password", stored.password_hash) and stored.epoch == 0
    bearer(await try_login(bridge, "dirk", "an older password"))
    # The same password in a new hash is no change to the account: the token from before goes on.
    assert (await bridge.client.get("/v1/dispatch/incidents", headers=first)).status_code == 200


async def test_replicas_sharing_redis_count_and_know_sources_together(
    start_service: Callable[..., Any], same_database: Callable[..., Any], redis_url: tuple[str, str]
) -> None:
    shared = {
        "redis_url": redis_url[0],
        "redis_key_prefix": redis_url[1],
        "redis_timeout_seconds": 10,  # sharing is tested, not the fallback of a slow Redis (see test_attacks)
        "login_free_failures": 2,
        "login_account_ceiling": 4,
        "login_ceiling_delay_seconds": 0.1,
    }
    one = await start_bridge(start_service, **shared)
    other = await same_database(one)
    bearer(await try_login(one, "dirk", PASSWORD, client=DESK))
    assert (await try_login(one, "dirk", "guess")).status_code == 401
    assert (await try_login(other, "dirk", "guess")).status_code == 401
    refused = await try_login(one, "dirk", PASSWORD)  # two failures on two replicas: the wait applies to both
    assert (refused.status_code, refused.json()["error"]) == (429, "login_throttled")
    assert (await try_login(other, "dirk", PASSWORD)).status_code == 429
    # The ceiling's fourth try (his first login, from a desk unknown until then, was one of them):
    assert (await try_login(other, "dirk", "guess", client="10.3.3.3")).status_code == 401
    assert (await try_login(one, "dirk", PASSWORD, client="10.4.4.4")).status_code == 429  # reached on both
    bearer(await try_login(other, "dirk", PASSWORD, client=DESK))  # his desk, known to the other replica too
    import redis

    client = redis.Redis.from_url(redis_url[0])
    try:
        keys = [key.decode() for key in client.scan_iter(f"{redis_url[1]}:*")]
    finally:
        client.close()
    assert keys and not any("dirk" in key or DESK in key for key in keys)  # pseudonyms only
