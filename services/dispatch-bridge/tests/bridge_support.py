"""Helpers for dispatch-bridge's tests (this folder's conftest.py makes them importable as `bridge_support`): a
bridge whose peers are down, its two accounts, and the two ways a dispatcher signs in (a bearer token from the
API, the console's login form in a browser)."""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Callable, Iterable
from typing import Any

import httpx
from sqlalchemy import select

from burgermelding_shared.service_auth import development_key
from dispatch_bridge.accounts import users
from dispatch_bridge.config import BridgeSettings
from dispatch_bridge.models import Dispatcher, messaging

DOWN = "http://127.0.0.1:9"  # where the bridge's peers are: nothing listens, so nothing it sends arrives
PASSWORD = "correct horse battery staple"
ORIGIN = "https://testserver"
ACCOUNTS = (("dirk", "dispatcher"), ("sara", "supervisor"))


async def start_bridge(
    start_service: Callable[..., Any],
    *,
    relay: bool = True,
    accounts: Iterable[tuple[str, str]] = ACCOUNTS,
    **settings: Any,
) -> Any:
    """A bridge whose peers (intake, verification, the meldkamer) are down and whose relay polls once an hour (a
    commit still wakes it); `relay=False` stops the relay, so that what the bridge would send stays in its outbox
    to be read. With the `accounts` (name, role) and PASSWORD, unless a bridge before it on the same database
    (a replica) made them."""
    service = await start_service(
        "dispatch_bridge",
        BridgeSettings,
        **{"intake_url": DOWN, "meldkamer_url": DOWN, "verification_url": DOWN, "relay_poll_seconds": 3600, **settings},
    )
    if not relay:
        await service.runtime.relay.stop()
    for name, role in accounts:
        if await account(service, name) is None:
            await users.create_user(service.runtime.db, name, PASSWORD, role)
    return service


async def account(bridge: Any, name: str) -> Dispatcher | None:
    async with bridge.runtime.db.sessions() as session:
        return await session.get(Dispatcher, name)


async def api_login(bridge: Any, username: str = "dirk", password: str = PASSWORD) -> dict[str, str]:
    """Logs in to the API: the bearer token's header."""
    response = await bridge.client.post("/v1/auth/token", data={"username": username, "password": password})
    assert response.status_code == 200, response.text
    return {"Authorization": f"Bearer {response.json()['access_token']}"}


def browser(bridge: Any) -> httpx.AsyncClient:
    """A client that keeps cookies as a browser does: over HTTPS (the cookie is Secure), from our own origin."""
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=bridge.app), base_url=ORIGIN, headers={"Origin": ORIGIN})


def token_in(page: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert found, "the page has no CSRF token"
    return found.group(1)


async def log_in(client: httpx.AsyncClient, username: str = "dirk", password: str = PASSWORD) -> str:
    """Logs in through the console's form, and opens the incident list: the session's CSRF token."""
    form = await client.get("/console/login")
    answer = await client.post(
        "/console/login", data={"username": username, "password": password, "csrf_token": token_in(form.text)}
    )
    assert answer.status_code == 303 and answer.headers["location"] == "/console/incidents", answer.text
    page = await client.get("/console/incidents")
    assert page.status_code == 200, page.text
    return token_in(page.text)


async def queued(bridge: Any, kind: str) -> list[dict[str, Any]]:
    """The payloads of the messages of a kind in the bridge's outbox, in the order they were written."""
    outbox = messaging.outbox
    async with bridge.runtime.db.sessions() as session:
        payloads = (
            (await session.execute(select(outbox.c.payload).where(outbox.c.kind == kind).order_by(outbox.c.id)))
            .scalars()
            .all()
        )
    return [json.loads(payload) for payload in payloads]


async def post_internal(bridge: Any, path: str, body: Any, caller: str) -> httpx.Response:
    """A message to one of the bridge's internal routes as `caller` (a service) sends it: its credential, an
    Idempotency-Key of its own, the body as JSON (a str is sent as it is)."""
    token = development_key(caller).issue("dispatch-bridge")
    return await bridge.client.post(
        path,
        content=body if isinstance(body, str) else json.dumps(body, default=str),
        headers={
            "Authorization": f"Bearer {token}",
            "Idempotency-Key": str(uuid.uuid4()),
            "content-type": "application/json",
        },
    )
