"""Accounts: no token that outlives its account as it was. Disabling, enabling again, a new password or a new role
move the account's epoch, and every bearer token and console session issued before is refused at its next
request, and a console login whose account changes between its password check and its session gets none.
`create-user` refuses an existing name unless told to reset it. A token that is not ASCII is a 401."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from bridge_support import PASSWORD, api_login, browser, log_in, start_bridge, token_in

from dispatch_bridge.accounts import users
from dispatch_bridge.console import sessions

NEW_PASSWORD = "a brand new passphrase"


async def api_status(bridge: Any, headers: dict[str, str], path: str = "/v1/dispatch/incidents") -> int:
    return int((await bridge.client.get(path, headers=headers)).status_code)


async def console_ended(client: httpx.AsyncClient) -> bool:
    return (await client.get("/console/incidents")).headers.get("location") == "/console/login?reason=ended"


async def test_disabling_and_enabling_again_end_old_tokens_and_console_sessions(
    start_service: Callable[..., Any],
) -> None:
    bridge = await start_bridge(start_service)
    sara, old = await api_login(bridge, "sara"), await api_login(bridge, "dirk")
    async with browser(bridge) as console:
        await log_in(console, "dirk")
        assert (await bridge.client.post("/v1/dispatch/users/dirk/disable", headers=sara)).json()["disabled"] is True
        assert await api_status(bridge, old) == 401
        wrong = await bridge.client.post("/v1/auth/token", data={"username": "dirk", "password": "not it"})
        disabled = await bridge.client.post("/v1/auth/token", data={"username": "dirk", "password": PASSWORD})
        assert (disabled.status_code, disabled.json()) == (401, wrong.json())  # nothing tells disabled from wrong
        # Enabled again before either asks for anything: they stay over all the same.
        assert (await bridge.client.post("/v1/dispatch/users/dirk/enable", headers=sara)).json()["disabled"] is False
        assert await api_status(bridge, old) == 401
        assert await console_ended(console)
    new = await api_login(bridge, "dirk")
    async with browser(bridge) as console:
        await log_in(console, "dirk")
        # Enabling an account that is enabled is no change: it ends nothing.
        assert (await bridge.client.post("/v1/dispatch/users/dirk/enable", headers=sara)).status_code == 200
        assert await api_status(bridge, new) == 200 and not await console_ended(console)
    dirk = new
    assert (await bridge.client.post("/v1/dispatch/users/sara/disable", headers=dirk)).status_code == 403
    missing = await bridge.client.post("/v1/dispatch/users/nobody/disable", headers=sara)
    assert (missing.status_code, missing.json()["error"]) == (404, "dispatcher_not_found")
    odd = await bridge.client.post("/v1/dispatch/users/dirk/promote", headers=sara)
    assert (odd.status_code, odd.json()["error"]) == (422, "validation_error")


async def test_a_new_password_or_a_new_role_ends_old_tokens_and_console_sessions(
    start_service: Callable[..., Any],
) -> None:
    bridge = await start_bridge(start_service)
    old = await api_login(bridge, "dirk")
    async with browser(bridge) as console:
        await log_in(console, "dirk")
        assert await users.create_user(bridge.runtime.db, "dirk", NEW_PASSWORD, "dispatcher", reset=True)
        assert await api_status(bridge, old) == 401
        assert await console_ended(console)
    gone = await bridge.client.post("/v1/auth/token", data={"username": "dirk", "password": PASSWORD})
    assert gone.status_code == 401  # the old password is gone too
    as_dispatcher = await api_login(bridge, "dirk", NEW_PASSWORD)
    async with browser(bridge) as console:
        await log_in(console, "dirk", NEW_PASSWORD)
        await users.create_user(bridge.runtime.db, "dirk", NEW_PASSWORD, "supervisor", reset=True)  # a role only
        assert await api_status(bridge, as_dispatcher) == 401
        assert await console_ended(console)
    as_supervisor = await api_login(bridge, "dirk", NEW_PASSWORD)
    log = (await bridge.client.get("/v1/dispatch/audit", headers=as_supervisor)).json()
    assert [
        (e["action"], e["detail"])
        for e in reversed(log)
        if e["action"].startswith("account_") and e["target_id"] == "dirk"
    ] == [
        ("account_created", {"role": "dispatcher"}),
        ("account_reset", {"role": "dispatcher"}),
        ("account_reset", {"role": "supervisor"}),
    ]


async def test_a_reset_between_the_password_check_and_the_console_session_gives_no_session(
    start_service: Callable[..., Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    bridge = await start_bridge(start_service)
    start = sessions.start

    async def reset_first(runtime: Any, *arguments: Any) -> tuple[str, str]:
        # The old password was right a moment ago; now a supervisor resets the account (its password taken).
        await users.create_user(runtime.db, "dirk", NEW_PASSWORD, "dispatcher", reset=True)
        return await start(runtime, *arguments)

    monkeypatch.setattr(sessions, "start", reset_first)
    async with browser(bridge) as console:
        form = await console.get("/console/login")
        answer = await console.post(
            "/console/login", data={"username": "dirk", "password": PASSWORD, "csrf_token": token_in(form.text)}
        )
        # No session at the account's new epoch for whoever knew the old password: answered as a wrong one.
        assert answer.status_code == 401 and "onjuiste gebruikersnaam of onjuist wachtwoord" in answer.text
        assert "__Host-bm_console=" not in answer.headers.get("set-cookie", "")
        assert (await console.get("/console/incidents")).headers["location"].startswith("/console/login")
    monkeypatch.setattr(sessions, "start", start)
    async with browser(bridge) as console:
        await log_in(console, "dirk", NEW_PASSWORD)  # the new password gets in as usual


async def create_user_command(bridge: Any, *arguments: str, password: str) -> subprocess.CompletedProcess[str]:
    """The bridge's own `create-user` command, on the bridge's database, as an operator runs it."""
    return await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "dispatch_bridge", "create-user", *arguments],
        input=password + "\n",
        text=True,
        capture_output=True,
        timeout=120,
        env={**os.environ, "BM_BRIDGE_DATABASE_URL": bridge.settings.database_url},
    )


async def test_create_user_refuses_an_existing_name_unless_told_to_reset_it(start_service: Callable[..., Any]) -> None:
    bridge = await start_bridge(start_service)
    old = await api_login(bridge, "dirk")
    refused = await create_user_command(bridge, "dirk", "--role", "supervisor", password="someone else's password")
    assert refused.returncode != 0 and "exists already" in refused.stderr and "--reset" in refused.stderr
    assert await api_status(bridge, old) == 200  # nothing changed: not the password, not the role, not the token
    assert await api_status(bridge, old, "/v1/dispatch/audit") == 403
    reset = await create_user_command(bridge, "dirk", "--role", "dispatcher", "--reset", password=NEW_PASSWORD)
    assert reset.returncode == 0 and "reset" in reset.stdout, reset.stderr
    assert await api_status(bridge, old) == 401  # the reset ended what was issued before
    assert await api_status(bridge, await api_login(bridge, "dirk", NEW_PASSWORD)) == 200
    created = await create_user_command(bridge, "anna", "--role", "dispatcher", password=NEW_PASSWORD)
    assert created.returncode == 0 and "created" in created.stdout, created.stderr


async def test_a_bearer_token_that_is_not_ascii_is_refused_not_a_crash(start_service: Callable[..., Any]) -> None:
    bridge = await start_bridge(start_service)
    token = (await api_login(bridge, "dirk"))["Authorization"]
    claims = token.removeprefix("Bearer ").rsplit(".", 1)[0]
    headers = [
        f"Bearer {claims}.signatuur-é".encode(),  # sent as UTF-8...
        f"Bearer {claims}.signatuur-é".encode("latin-1"),  # ...or as Latin-1, as Starlette reads headers
        "Bearer bmd1.ZGlyaw==.dispatcher.9999999999.ondertekend-ü".encode(),  # the earlier token format
        "Bearer é".encode(),
    ]
    for header in headers:
        for path in ("/v1/dispatch/incidents", "/v1/dispatch/burgernet/actions"):
            answer = await bridge.client.get(path, headers={"Authorization": header})
            assert (answer.status_code, answer.json()["error"]) == (401, "not_authenticated"), (path, header)
        # Our own services' credentials come in the same header.
        internal = await bridge.client.post(
            "/internal/v1/reports",
            content=b"{}",
            headers={"Authorization": header, "Content-Type": "application/json", "Idempotency-Key": "non-ascii"},
        )
        assert internal.status_code == 401, (header, internal.text)
