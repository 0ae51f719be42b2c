"""Fixtures for every test: real databases (SQLite files or fresh PostgreSQL databases) and real service apps.

`BM_TEST_DATABASE=sqlite|postgresql` picks the database; `python3 dev.py test` runs the suite on both.
"""

from __future__ import annotations

import asyncio
import importlib
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import AsyncExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from burgermelding_shared import migrations
from burgermelding_shared.app import Runtime
from tests.databases import (
    REDIS_URL,
    TEST_DATABASE,
    create_database,
    drop_database,
    drop_redis_keys,
    redis_keyspace,
)


def pytest_report_header(config: pytest.Config) -> str:
    return f"burgermelding test database: {TEST_DATABASE}"


@pytest.fixture
def database_url(tmp_path: Path) -> Iterator[Callable[[str], str]]:
    """Make a fresh, empty database for a service: `database_url("intake")`."""
    created: list[str | None] = []

    def make(name: str) -> str:
        url, database = create_database(name, tmp_path)
        created.append(database)
        return url

    yield make
    for database in created:
        drop_database(database)


@dataclass
class RunningService:
    app: FastAPI
    client: httpx.AsyncClient
    runtime: Runtime
    settings: Any


def migrations_dir_of(package: str) -> Path:
    return Path(importlib.import_module(package).__file__).parent / "migrations"  # type: ignore[arg-type]


@pytest.fixture
async def start_service(database_url: Callable[[str], str], tmp_path: Path) -> AsyncIterator[Callable[..., Any]]:
    """Start a service app in-process with its lifespan (relay and workers running) on a migrated database."""
    stack = AsyncExitStack()

    async def start(package: str, settings_cls: type, **overrides: Any) -> RunningService:
        main = importlib.import_module(f"{package}.main")
        url = database_url(package)
        await asyncio.to_thread(migrations.upgrade, migrations_dir_of(package), url)
        values = {"database_url": url, "blob_dir": tmp_path / "blobs", "environment": "development",
                  "relay_poll_seconds": 0.2, "relay_backoff_base_seconds": 0.05, **overrides}
        settings = settings_cls(**values)
        app = main.create_app(settings)
        await stack.enter_async_context(app.router.lifespan_context(app))
        client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver")
        stack.push_async_callback(client.aclose)
        return RunningService(app, client, app.state.runtime, settings)

    yield start
    await stack.aclose()





@pytest.fixture
def redis_url() -> Iterator[tuple[str, str]]:
    """The machine's Redis and a key prefix of this test's own, whose keys are removed afterwards."""
    prefix = redis_keyspace()
    yield REDIS_URL, prefix
    drop_redis_keys(prefix)
