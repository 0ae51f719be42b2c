"""PostgreSQL's connection pool: a connection the server closed while it sat idle is replaced, not failed."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from burgermelding_shared.db import Database
from burgermelding_shared.errors import install_error_handlers


async def _backend_of(db: Database) -> int:
    async with db.transaction() as session:
        return int((await session.execute(text("SELECT pg_backend_pid()"))).scalar_one())


async def _closed_by_the_server(db: Database, url: str) -> int:
    """Use a pooled connection, then close it from the server side while it sits idle in the pool (what a
    database restart or failover does to it); returns the backend it was."""
    backend = await _backend_of(db)
    admin = Database(url)
    async with admin.transaction() as session:
        await session.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": backend})
    await admin.dispose()
    await asyncio.sleep(0.1)
    return backend


# PostgreSQL's connection pool: SQLite has no server to lose.
pytestmark = pytest.mark.runs_on("postgresql")


@pytest.fixture
def postgres_url(database_url: Callable[[str], str]) -> str:
    return database_url("pool")


async def test_a_connection_closed_while_idle_is_pinged_and_replaced(postgres_url: str) -> None:
    db = Database(postgres_url, ping_after_idle_seconds=0.05)
    try:
        closed = await _closed_by_the_server(db, postgres_url)
        assert await _backend_of(db) != closed  # a new connection, and no error
    finally:
        await db.dispose()


async def test_without_the_ping_the_first_use_of_a_closed_connection_fails(postgres_url: str) -> None:
    # The counterpart: a connection used a moment ago is not pinged (that costs a round trip per
    # transaction); if the server closed it since, that one use fails and the pool renews itself.
    db = Database(postgres_url, ping_after_idle_seconds=3600)
    try:
        closed = await _closed_by_the_server(db, postgres_url)
        with pytest.raises(DBAPIError):
            await _backend_of(db)
        assert await _backend_of(db) != closed  # and the next use has a new one
    finally:
        await db.dispose()


async def test_a_request_that_meets_a_closed_connection_is_answered_busy_not_500(postgres_url: str) -> None:
    # Its transaction rolled back, so nothing was stored and the citizen's app may send it again.
    db = Database(postgres_url, ping_after_idle_seconds=3600)
    app = FastAPI()
    install_error_handlers(app)

    @app.get("/backend")
    async def backend() -> dict[str, int]:
        return {"backend": await _backend_of(db)}

    try:
        closed = await _closed_by_the_server(db, postgres_url)
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://service") as client:
            refused = await client.get("/backend", headers={"Accept-Language": "nl"})
            assert refused.status_code == 503, refused.text
            assert refused.json()["error"] == "busy" and "niets opgeslagen" in refused.json()["detail"]
            assert refused.headers["retry-after"] == "2"
            again = await client.get("/backend")
            assert again.status_code == 200 and again.json()["backend"] != closed
    finally:
        await db.dispose()


async def _answer_from(db: Database) -> httpx.Response:
    """What a route that uses `db` answers, through the services' own error handlers."""
    app = FastAPI()
    install_error_handlers(app)

    @app.get("/backend")
    async def backend() -> dict[str, int]:
        return {"backend": await _backend_of(db)}

    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://service") as client:
        return await client.get("/backend")


async def test_a_database_that_will_not_take_a_connection_now_is_answered_busy_not_500(postgres_url: str) -> None:
    """A PostgreSQL that refuses new connections for a while (shutting down or starting up, 57P03; at its
    connection limit, 53300) says nothing about the request: 503 busy, as for a closed connection. The limit is
    the one to provoke here: a role allowed no connections at all."""
    from sqlalchemy.engine import make_url

    admin = Database(postgres_url)
    role = "bm_no_connections"
    async with admin.transaction() as session:
        await session.execute(text(f"DROP ROLE IF EXISTS {role}"))
        await session.execute(text(f"CREATE ROLE {role} LOGIN CONNECTION LIMIT 0"))
    refusing = Database(make_url(postgres_url).set(username=role, password=None).render_as_string(False))
    try:
        refused = await _answer_from(refusing)
        assert refused.status_code == 503, refused.text
        assert refused.json()["error"] == "busy" and refused.headers["Retry-After"]
    finally:
        await refusing.dispose()
        async with admin.transaction() as session:
            await session.execute(text(f"DROP ROLE IF EXISTS {role}"))
        await admin.dispose()


async def test_a_database_that_refuses_the_connection_is_answered_busy_not_500() -> None:
    """While PostgreSQL restarts, its port refuses connections: asyncpg raises ConnectionRefusedError itself,
    unwrapped by SQLAlchemy. Nothing was stored, so the client may send it again: 503 busy. (No server needed:
    a port where nothing listens refuses the same way.)"""
    refusing = Database("postgresql+asyncpg://nobody@127.0.0.1:1/nothing")
    try:
        refused = await _answer_from(refusing)
        assert refused.status_code == 503, refused.text
        assert refused.json()["error"] == "busy"
    finally:
        await refusing.dispose()
