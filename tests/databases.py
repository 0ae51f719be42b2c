"""Fresh test databases: a SQLite file, or a new PostgreSQL database dropped afterwards."""

from __future__ import annotations

import asyncio
import os
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

TEST_DATABASE = os.environ.get("BM_TEST_DATABASE", "sqlite")
POSTGRES_URL = os.environ.get("BM_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres")


def postgres_admin(statement: str) -> None:
    import asyncpg

    async def run() -> None:
        conn = await asyncpg.connect(POSTGRES_URL)
        try:
            await conn.execute(statement)
        finally:
            await conn.close()

    # A thread of its own, so this works whether or not an event loop runs in the caller's thread.
    with ThreadPoolExecutor(1) as pool:
        pool.submit(asyncio.run, run()).result()


def create_database(name: str, folder: Path) -> tuple[str, str | None]:
    """(SQLAlchemy URL, PostgreSQL database name to drop later or None)."""
    if TEST_DATABASE == "sqlite":
        return f"sqlite+aiosqlite:///{folder / (name + '.db')}", None
    database = f"bmtest_{name.replace('-', '_')}_{uuid.uuid4().hex[:12]}"
    postgres_admin(f'CREATE DATABASE "{database}"')
    base = POSTGRES_URL.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://")
    return f"{base}/{database}", database


def drop_database(database: str | None) -> None:
    if database:
        postgres_admin(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')


REDIS_URL = os.environ.get("BM_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


def redis_keyspace() -> str:
    """A key prefix of a test's own in the machine's Redis (`REDIS_URL`), which must answer: `.ci/run` starts
    one. Remove its keys afterwards with `drop_redis_keys`."""
    import redis

    client = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2)
    try:
        client.ping()
    except redis.RedisError as exc:
        raise AssertionError(f"Redis at {REDIS_URL} does not answer ({exc}); start it: redis-server --daemonize yes")
    finally:
        client.close()
    return f"bm-test-{uuid.uuid4().hex[:12]}"


def drop_redis_keys(prefix: str) -> None:
    import redis

    with redis.Redis.from_url(REDIS_URL) as client:
        keys = list(client.scan_iter(match=f"{prefix}:*"))
        if keys:
            client.delete(*keys)


def run_sql(url: str, statement: str, params: dict | None = None) -> list[tuple]:
    """One statement against a service's database (SQLite file or PostgreSQL), from a test: its rows."""
    from sqlalchemy import text
    from sqlalchemy.ext.asyncio import create_async_engine

    async def run() -> list[tuple]:
        engine = create_async_engine(url)
        try:
            async with engine.begin() as conn:
                result = await conn.execute(text(statement), params or {})
                return [tuple(row) for row in result] if result.returns_rows else []
        finally:
            await engine.dispose()

    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, run()).result()


def everything_stored(url: str) -> str:
    """Every row of every table of a service's database as text: to show that something is *not* stored."""
    from sqlalchemy import inspect
    from sqlalchemy.ext.asyncio import create_async_engine

    async def tables() -> list[str]:
        engine = create_async_engine(url)
        try:
            async with engine.connect() as conn:
                return await conn.run_sync(lambda sync: inspect(sync).get_table_names())
        finally:
            await engine.dispose()

    with ThreadPoolExecutor(1) as pool:
        names = pool.submit(asyncio.run, tables()).result()
    return "\n".join(f"{name}: {row}" for name in names for row in run_sql(url, f'SELECT * FROM "{name}"'))
