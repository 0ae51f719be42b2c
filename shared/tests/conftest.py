"""The shared library's test fixtures."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable

import pytest
from sqlalchemy import MetaData

from burgermelding_shared.db import Database


@pytest.fixture
async def database_with(
    database_url: Callable[[str], str],
) -> AsyncIterator[Callable[[str, MetaData], Awaitable[Database]]]:
    """A fresh database with a test's own schema: `await database_with("name", metadata)` (the library's tests use
    a schema of their own; services use their Alembic migrations)."""
    opened: list[Database] = []

    async def make(name: str, metadata: MetaData) -> Database:
        database = Database(database_url(name))
        opened.append(database)
        async with database.engine.begin() as conn:
            await conn.run_sync(metadata.create_all)
        return database

    yield make
    for database in opened:
        await database.dispose()
