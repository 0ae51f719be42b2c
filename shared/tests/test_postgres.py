"""PostgreSQL's connection pool: a connection the server closed while it sat idle is replaced, not failed."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from burgermelding_shared.db import Database, is_sqlite


async def _backend_of(db: Database) -> int:
    async with db.transaction() as session:
        return int((await session.execute(text("SELECT pg_backend_pid()"))).scalar_one())


async def _close_from_the_server(url: str, backend: int) -> None:
    """What a database restart or failover does to a pooled connection."""
    admin = Database(url)
    async with admin.transaction() as session:
        await session.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": backend})
    await admin.dispose()


@pytest.fixture
def postgres_url(database_url: Callable[[str], str]) -> str:
    url = database_url("pool")
    if is_sqlite(url):
        pytest.skip("PostgreSQL's connection pool; SQLite has no server to lose")
    return url


async def test_a_connection_closed_while_idle_is_pinged_and_replaced(postgres_url: str) -> None:
    db = Database(postgres_url, ping_after_idle_seconds=0.05)
    try:
        first = await _backend_of(db)
        await _close_from_the_server(postgres_url, first)
        await asyncio.sleep(0.1)
        assert await _backend_of(db) != first  # a new connection, and no error
    finally:
        await db.dispose()


async def test_without_the_ping_the_first_use_of_a_closed_connection_fails(postgres_url: str) -> None:
    # The counterpart: a connection used a moment ago is not pinged (that costs a round trip per
    # transaction); if the server closed it since, that one use fails and the pool renews itself.
    db = Database(postgres_url, ping_after_idle_seconds=3600)
    try:
        first = await _backend_of(db)
        await _close_from_the_server(postgres_url, first)
        await asyncio.sleep(0.1)
        with pytest.raises(DBAPIError):
            await _backend_of(db)
        assert await _backend_of(db) != first  # and the next use has a new one
    finally:
        await db.dispose()
