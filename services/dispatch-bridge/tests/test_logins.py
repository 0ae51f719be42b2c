"""Dispatcher login under attack: growing waits per name and per client, a lockout a supervisor lifts, the
same answer and the same hash for unknown names, hashing off the event loop, disabled accounts, argon2id in
place of older scrypt hashes at the next login, every step audited, and all of it across replicas in Redis."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import threading
from collections.abc import Callable
from typing import Any

import pytest

from dispatch_bridge import auth
from dispatch_bridge.config import BridgeSettings
from dispatch_bridge.models import Dispatcher

DOWN = "http://127.0.0.1:9"
PASSWORD = "correct horse battery staple"


async def start_bridge(start_service: Callable[..., Any], **settings: Any) -> Any:
    service = await start_service("dispatch_bridge", BridgeSettings, intake_url=DOWN, meldkamer_url=DOWN,
                                  relay_poll_seconds=3600, **settings)
    for name, role in (("dirk", "dispatcher"), ("sara", "supervisor")):
        if await _user(service, name) is None:
            await auth.create_user(service.runtime.db, name, PASSWORD, role)
    return service


async def _user(bridge: Any, name: str) -> Dispatcher | None:
    async with bridge.runtime.db.sessions() as session:
        return await session.get(Dispatcher, name)


async def try_login(bridge: Any, username: str, password: str, client: str = "10.1.2.3") -> Any:
    # The bridge trusts the test client as its proxy, so X-Forwarded-For names the dispatcher's workstation.
    return await bridge.client.post("/v1/auth/token", data={"username": username, "password": password},
                                    headers={"X-Forwarded-For": client})


def bearer(response: Any) -> dict[str, str]:
    assert response.status_code == 200, response.text
    return {"Authorization": f"Bearer {response.json()['access_token']}"}


async def audited(bridge: Any, supervisor: dict[str, str]) -> list[tuple[str, str]]:
    log = (await bridge.client.get("/v1/dispatch/audit", headers=supervisor)).json()
    return [(entry["action"], entry["target_id"]) for entry in reversed(log) if entry["target_type"] == "dispatcher"]


PROXY = {"trusted_proxies": ["127.0.0.1", "testclient"]}


async def test_wrong_passwords_make_each_next_try_wait_longer(start_service: Callable[..., Any]) -> None:
    bridge = await start_bridge(start_service, login_free_failures=2, login_lockout_after=50, **PROXY)
    assert [(await try_login(bridge, "dirk", "guess")).status_code for _ in range(2)] == [401, 401]
    waiting = await try_login(bridge, "dirk", PASSWORD)  # even the right password waits its turn
    assert (waiting.status_code, waiting.json()["error"], waiting.headers["retry-after"]) == (
        429, "login_throttled", "1")
    await asyncio.sleep(1.1)
    assert (await try_login(bridge, "dirk", "guess")).status_code == 401  # the third in a row...
    assert (await try_login(bridge, "dirk", PASSWORD)).headers["retry-after"] == "2"  # ...doubles the wait
    await asyncio.sleep(2.1)
    sara = bearer(await try_login(bridge, "sara", PASSWORD, client="10.9.9.9"))
    bearer(await try_login(bridge, "dirk", PASSWORD))  # the right password after the wait: in, count cleared
    assert (await try_login(bridge, "dirk", "guess")).status_code == 401  # a new run starts free
    actions = [action for action, target in await audited(bridge, sara) if target == "dirk"]
    assert actions == ["login_failed"] * 2 + ["login_throttled", "login_failed", "login_throttled", "login",
                                              "login_failed"]


async def test_one_client_guessing_many_names_is_slowed_down_too(start_service: Callable[..., Any]) -> None:
    bridge = await start_bridge(start_service, login_free_failures=3, **PROXY)
    for name in ("anna", "bert", "carla"):  # names that do not exist count for the client all the same
        assert (await try_login(bridge, name, "guess", client="10.6.6.6")).status_code == 401
    refused = await try_login(bridge, "dirk", PASSWORD, client="10.6.6.6")
    assert (refused.status_code, refused.json()["error"]) == (429, "login_throttled")
    bearer(await try_login(bridge, "dirk", PASSWORD, client="10.1.1.1"))  # dirk at his own desk is not held up


async def test_a_locked_account_answers_like_a_wrong_password_until_a_supervisor_lifts_it(
        start_service: Callable[..., Any]) -> None:
    bridge = await start_bridge(start_service, login_free_failures=100, login_lockout_after=3, **PROXY)
    earlier = bearer(await try_login(bridge, "dirk", PASSWORD))
    wrong = [await try_login(bridge, "dirk", f"guess {n}") for n in range(3)]
    locked = await try_login(bridge, "dirk", PASSWORD)
    assert locked.status_code == 401 and locked.json() == wrong[0].json()  # nothing tells locked from wrong
    assert (await _user(bridge, "dirk")).locked_at is not None  # type: ignore[union-attr]
    # His session from before goes on: guessing his name must not end his shift (disabling does, see below).
    assert (await bridge.client.get("/v1/dispatch/incidents", headers=earlier)).status_code == 200
    unknown = await try_login(bridge, "nobody", "guess")
    assert (unknown.status_code, unknown.json()) == (401, wrong[0].json())  # nor an unknown name

    sara = bearer(await try_login(bridge, "sara", PASSWORD))
    refused = await bridge.client.post("/v1/dispatch/users/dirk/unlock", headers=earlier)
    assert refused.status_code == 403  # a dispatcher cannot lift his own lockout
    lifted = await bridge.client.post("/v1/dispatch/users/dirk/unlock", headers=sara)
    assert lifted.json() == {"username": "dirk", "role": "dispatcher", "disabled": False, "locked": False}
    bearer(await try_login(bridge, "dirk", PASSWORD))
    actions = [action for action, target in await audited(bridge, sara) if target == "dirk"]
    assert actions == ["login", "login_failed", "login_failed", "login_failed", "lockout", "login_failed", "unlock",
                       "login"]


async def test_a_disabled_user_is_out_at_once_and_only_supervisors_decide(start_service: Callable[..., Any]) -> None:
    bridge = await start_bridge(start_service, **PROXY)
    dirk, sara = bearer(await try_login(bridge, "dirk", PASSWORD)), bearer(await try_login(bridge, "sara", PASSWORD))
    assert (await bridge.client.post("/v1/dispatch/users/sara/disable", headers=dirk)).status_code == 403
    assert (await bridge.client.post("/v1/dispatch/users/dirk/disable", headers=sara)).json()["disabled"] is True
    assert (await bridge.client.get("/v1/dispatch/incidents", headers=dirk)).status_code == 401  # the old token
    assert (await try_login(bridge, "dirk", PASSWORD)).status_code == 401
    assert (await bridge.client.post("/v1/dispatch/users/dirk/enable", headers=sara)).json()["disabled"] is False
    bearer(await try_login(bridge, "dirk", PASSWORD))
    missing = await bridge.client.post("/v1/dispatch/users/nobody/disable", headers=sara)
    assert (missing.status_code, missing.json()["error"]) == (404, "dispatcher_not_found")
    odd = await bridge.client.post("/v1/dispatch/users/dirk/promote", headers=sara)
    assert (odd.status_code, odd.json()["error"]) == (422, "validation_error")


async def test_an_unknown_name_costs_the_same_hash_off_the_event_loop(start_service: Callable[..., Any],
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    bridge = await start_bridge(start_service, **PROXY)
    calls: list[tuple[str, bool]] = []
    check = auth.check_password

    def spying_check(password: str, stored: str | None) -> tuple[bool, str | None]:
        calls.append(("known" if stored else "unknown", threading.current_thread() is threading.main_thread()))
        return check(password, stored)

    verified: list[str] = []
    for method in ("verify", "verify_and_update"):
        original = getattr(auth.passwords, method)
        monkeypatch.setattr(auth.passwords, method,
                            lambda *args, _m=method, _o=original: verified.append(_m) or _o(*args))
    monkeypatch.setattr(auth, "check_password", spying_check)
    await try_login(bridge, "dirk", "guess")
    await try_login(bridge, "nobody", "guess")
    assert calls == [("known", False), ("unknown", False)]  # both hashed, neither on the event loop's thread
    assert verified == ["verify_and_update", "verify"]  # one argon2id verification each
    assert auth.passwords.verify("x", auth.hash_password("x")) and auth.hash_password("x").startswith("$argon2id$")


async def test_an_older_scrypt_hash_becomes_argon2id_at_the_next_login(start_service: Callable[..., Any]) -> None:
    bridge = await start_bridge(start_service, **PROXY)
    salt = b"0123456789abcdef"
    digest = hashlib.scrypt(b"an older password", salt=salt, dklen=32, n=2**14, r=8, p=1)
    legacy = f"scrypt${base64.b64encode(salt).decode()}${base64.b64encode(digest).decode()}"
    async with bridge.runtime.db.transaction() as session:
        user = await session.get(Dispatcher, "dirk")
        assert user is not None
        user.password_hash = legacy
        session.add(user)
    assert (await try_login(bridge, "dirk", "not it")).status_code == 401
    assert (await _user(bridge, "dirk")).password_hash == legacy  # type: ignore[union-attr]
    bearer(await try_login(bridge, "dirk", "an older password"))
    stored = (await _user(bridge, "dirk")).password_hash  # type: ignore[union-attr]
    assert stored.startswith("$argon2id$") and auth.passwords.verify("an older password", stored)
    bearer(await try_login(bridge, "dirk", "an older password"))


async def test_replicas_sharing_redis_count_wrong_passwords_together(start_service: Callable[..., Any],
                                                                     redis_url: tuple[str, str]) -> None:
    shared = {"redis_url": redis_url[0], "redis_key_prefix": redis_url[1], "login_free_failures": 2,
              "login_lockout_after": 50, **PROXY}
    one = await start_bridge(start_service, **shared)
    other = await start_bridge(start_service, **shared)
    assert (await try_login(one, "dirk", "guess")).status_code == 401
    assert (await try_login(other, "dirk", "guess")).status_code == 401
    refused = await try_login(one, "dirk", PASSWORD)  # two failures on two replicas: the wait applies to both
    assert (refused.status_code, refused.json()["error"]) == (429, "login_throttled")
    assert (await try_login(other, "dirk", PASSWORD)).status_code == 429


async def test_a_burst_of_concurrent_tries_cannot_slip_past_the_count(start_service: Callable[..., Any]) -> None:
    bridge = await start_bridge(start_service, login_free_failures=2, login_lockout_after=4, **PROXY)
    burst = await asyncio.gather(*(try_login(bridge, "dirk", f"guess {n}", client=f"10.0.0.{n}") for n in range(40)))
    statuses = [response.status_code for response in burst]
    # One try at a time for the name: the others are refused at once (429), never hashed, never let through.
    assert set(statuses) == {401, 429} and statuses.count(401) <= 2, statuses
    # Every try that was checked was counted: as many failures in the audit as answers of 401.
    sara = bearer(await try_login(bridge, "sara", PASSWORD, client="10.9.9.9"))
    failed = [action for action, target in await audited(bridge, sara) if target == "dirk"]
    assert failed.count("login_failed") == statuses.count(401)


async def test_a_very_long_run_of_wrong_passwords_still_waits_and_never_fails(
        start_service: Callable[..., Any]) -> None:
    bridge = await start_bridge(start_service, login_free_failures=0, login_lockout_after=10_000,
                                login_max_delay_seconds=0.001, **PROXY)
    key = auth.LoginAttempt("dirk", "").keys[0]
    for _ in range(1100):  # as if 1,100 wrong passwords had been counted (2 ** 1100 overflows a float)
        await bridge.runtime.shared.count(key, 3600)
    await asyncio.sleep(0.01)
    assert (await try_login(bridge, "dirk", "guess")).status_code == 401  # counted and answered, not a 500
