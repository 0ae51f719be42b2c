"""Async database access for SQLite (the embedded default, in WAL mode) and PostgreSQL through the same code.

Each service owns its database. Sessions never commit inside business code: `Database.transaction()` commits
once at the end or rolls back, and after a commit that wrote outbox rows it wakes the outbox relay.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import MetaData, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine
from sqlalchemy.orm import registry

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

# Session.info key set by code that writes outbox rows; the commit hook reads it.
OUTBOX_WRITTEN = "outbox_written"
# Execution option of a SQLite connection in `Database.transaction()`: begin with the write lock.
WRITES = "burgermelding_writes"


def new_registry() -> registry:
    """A registry with its own metadata, so each service's tables stay apart even in one test process."""
    return registry(metadata=MetaData(naming_convention=NAMING_CONVENTION))


def is_sqlite(url: str) -> bool:
    return make_url(url).get_backend_name() == "sqlite"


def _prepare_sqlite(engine: AsyncEngine, url: str, busy_timeout_ms: int) -> None:
    database = make_url(url).database
    if database and database != ":memory:":
        Path(database).parent.mkdir(parents=True, exist_ok=True)

    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy emit BEGIN itself (below); pysqlite's implicit transactions get this wrong.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA busy_timeout={int(busy_timeout_ms)}")
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(conn: Any) -> None:
        # A transaction that may write takes the write lock up front: a deferred one that later writes can
        # fail with SQLITE_BUSY without waiting, which would turn ordinary concurrency into errors. Reads
        # (`Database.sessions()`, which never commits) begin deferred: in WAL mode they then neither wait
        # for a writer nor hold one up.
        conn.exec_driver_sql("BEGIN IMMEDIATE" if conn.get_execution_options().get(WRITES) else "BEGIN")


async def serialise(session: AsyncSession, name: str) -> None:
    """Make decisions that read several rows and then write (which incident does this report join?) one at a
    time, until the transaction ends. PostgreSQL: a transaction-scoped advisory lock under `name`; SQLite
    needs nothing, as its write transactions (BEGIN IMMEDIATE) are serial already."""
    if session.bind is not None and session.bind.dialect.name == "postgresql":
        await session.execute(text("SELECT pg_advisory_xact_lock(hashtext(:name))"), {"name": name})


class Database:
    """One engine and session factory per process, created in the lifespan and disposed on shutdown."""

    def __init__(self, url: str, *, echo: bool = False, busy_timeout_ms: int = 10_000) -> None:
        self.url = url
        kwargs: dict[str, Any] = {"echo": echo}
        if not is_sqlite(url):
            kwargs.update(pool_size=10, max_overflow=10, pool_pre_ping=True)
        self.engine: AsyncEngine = create_async_engine(url, **kwargs)
        if is_sqlite(url):
            _prepare_sqlite(self.engine, url, busy_timeout_ms)
        self.sessions = async_sessionmaker(self.engine, class_=AsyncSession, expire_on_commit=False)
        self._commit_listeners: list[Callable[[], None]] = []

    @property
    def is_sqlite(self) -> bool:
        return is_sqlite(self.url)

    def on_outbox_commit(self, listener: Callable[[], None]) -> None:
        """Call `listener` after every commit that wrote outbox rows (the relay's wake-up)."""
        self._commit_listeners.append(listener)

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncSession]:
        """A session whose work is committed at the end of the block, or rolled back on any error."""
        async with self.sessions() as session:
            try:
                if self.is_sqlite:
                    await session.connection(execution_options={WRITES: True})
                yield session
                await session.commit()
            except BaseException:
                await session.rollback()
                raise
            if session.info.pop(OUTBOX_WRITTEN, False):
                for listener in self._commit_listeners:
                    listener()

    async def ping(self) -> None:
        async with self.engine.connect() as conn:
            await conn.execute(text("SELECT 1"))

    async def dispose(self) -> None:
        await self.engine.dispose()
