"""Async database access for SQLite (the embedded default, in WAL mode) and PostgreSQL through the same code.

Each service owns its database. Sessions never commit inside business code: `Database.transaction()` commits
once at the end or rolls back, and after a commit that wrote outbox rows it hands them to the outbox relay or
wakes it.
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import MetaData, event, text
from sqlalchemy.engine import CursorResult, make_url
from sqlalchemy.exc import InvalidatePoolError, OperationalError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine
from sqlalchemy.orm import registry
from sqlalchemy.util.concurrency import await_, in_greenlet

from burgermelding_shared.inline_sqlite import INLINE_BUSY_TIMEOUT_MS, connector

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

# Session.info key set by code that writes outbox rows for the relay to find (it wakes the relay on commit).
OUTBOX_WRITTEN = "outbox_written"
# Session.info keys of the hand-off: while a running relay takes them, `HANDOFF_LEASE` holds its lease (seconds)
# and `OUTBOX_HANDED_OFF` collects the rows written already leased, which it is given straight after the commit.
HANDOFF_LEASE = "outbox_handoff_lease"
OUTBOX_HANDED_OFF = "outbox_handed_off"
# Session.info key of work to finish just before the commit, by name (see `before_commit`).
BEFORE_COMMIT = "before_commit"
# Execution option of a SQLite connection in `Database.transaction()`: begin with the write lock, waiting for
# it until this `time.monotonic()` deadline.
WRITES = "burgermelding_writes"
# How long a write waits between attempts at a write lock that another process holds (doubling up to the cap).
_LOCKED_RETRY_SECONDS, _LOCKED_RETRY_CAP_SECONDS = 0.002, 0.05
# A pooled PostgreSQL connection that has been idle this long is pinged before use (see `_ping_when_idle`).
PING_AFTER_IDLE_SECONDS = 1.0


def new_registry() -> registry:
    """A registry with its own metadata, so each service's tables stay apart even in one test process."""
    return registry(metadata=MetaData(naming_convention=NAMING_CONVENTION))


def rowcount(result: object) -> int:
    """How many rows an UPDATE or DELETE matched. SQLAlchemy types `AsyncSession.execute` as a plain `Result`
    whatever the statement; for these it is a `CursorResult`, which has the count."""
    if not isinstance(result, CursorResult):
        raise TypeError(f"{type(result).__name__} is not the result of an UPDATE or DELETE")
    return int(result.rowcount or 0)


def is_sqlite(url: str) -> bool:
    return make_url(url).get_backend_name() == "sqlite"


def sqlite_path(url: str) -> str:
    database = make_url(url).database or ":memory:"
    if database != ":memory:":
        Path(database).parent.mkdir(parents=True, exist_ok=True)
    return database


def is_locked(error: BaseException) -> bool:
    """A SQLite lock held by another connection (SQLITE_BUSY), as opposed to any other failure."""
    cause = getattr(error, "orig", error)
    return isinstance(cause, sqlite3.OperationalError) and "locked" in str(cause)


def _locked(statement: str) -> OperationalError:
    return OperationalError(statement, None, sqlite3.OperationalError("database is locked"))


def _begin_writing(conn: Any, deadline: float) -> None:
    """BEGIN IMMEDIATE; while another process holds the write lock, try again after a pause that yields the
    event loop (the connection's own busy timeout would block it), until the deadline."""
    pause = _LOCKED_RETRY_SECONDS
    while True:
        try:
            conn.exec_driver_sql("BEGIN IMMEDIATE")
            return
        except OperationalError as error:
            if not is_locked(error) or not in_greenlet() or time.monotonic() + pause > deadline:
                raise
        await_(asyncio.sleep(pause))
        pause = min(pause * 2, _LOCKED_RETRY_CAP_SECONDS)


def _prepare_sqlite(engine: AsyncEngine) -> None:
    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy emit BEGIN itself (below); pysqlite's implicit transactions get this wrong.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA busy_timeout={INLINE_BUSY_TIMEOUT_MS}")
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(conn: Any) -> None:
        # A transaction that may write takes the write lock up front: a deferred one that later writes can
        # fail with SQLITE_BUSY without waiting, which would turn ordinary concurrency into errors. Reads
        # (`Database.sessions()`, which never commits) begin deferred: in WAL mode they then neither wait
        # for a writer nor hold one up.
        deadline = conn.get_execution_options().get(WRITES)
        if deadline:
            _begin_writing(conn, deadline)
        else:
            conn.exec_driver_sql("BEGIN")


def _ping_when_idle(engine: AsyncEngine, idle_seconds: float) -> None:
    """Ping a pooled connection before use only when it has been idle `idle_seconds` or more.

    A connection that sat idle may have been closed by a database restart or failover, and without a ping
    the first transaction after a quiet spell would fail. SQLAlchemy's `pool_pre_ping` pings on every
    checkout, which under load is one extra round trip per transaction (about 0.4 ms of CPU here, as much as
    the transaction's own statements). A connection that was in use a moment ago needs none: if the database
    went away since, the statement fails, SQLAlchemy sees the disconnect and renews the whole pool.
    """

    @event.listens_for(engine.sync_engine, "checkin")
    def _checked_in(_dbapi_connection: Any, record: Any) -> None:
        record.info["idle_since"] = time.monotonic()

    @event.listens_for(engine.sync_engine, "checkout")
    def _checked_out(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
        idle_since = record.info.get("idle_since")
        if idle_since is None or time.monotonic() - idle_since < idle_seconds:
            return  # new, or in use a moment ago
        dialect = engine.dialect
        try:
            alive = dialect.do_ping(dbapi_connection)
        except dialect.loaded_dbapi.Error as error:
            if not dialect.is_disconnect(error, dbapi_connection, None):
                raise
            alive = False
        if not alive:
            # The database went away (a restart): every pooled connection is as stale as this one. The pool
            # drops them all, connects afresh and retries this checkout, as `pool_pre_ping` does.
            raise InvalidatePoolError("pooled connection is gone")


def before_commit(session: AsyncSession, name: str, finish: Callable[[AsyncSession], Awaitable[None]]) -> bool:
    """Run `finish` once, just before this `Database.transaction()` commits (registering the same name again
    does nothing): for work that gathers a transaction's changes first, such as one message for several.
    Returns whether this call registered it."""
    if BEFORE_COMMIT not in session.info:  # a session that no `Database.transaction()` will commit
        raise RuntimeError(f"{name}: before_commit needs a session from Database.transaction()")
    waiting = session.info[BEFORE_COMMIT]
    if name in waiting:
        return False
    waiting[name] = finish
    return True


async def serialise(session: AsyncSession, name: str) -> None:
    """Make decisions that read several rows and then write (which incident does this report join?) one at a
    time, until the transaction ends. PostgreSQL: a transaction-scoped advisory lock under `name`; SQLite
    needs nothing, as its write transactions (BEGIN IMMEDIATE) are serial already."""
    if session.bind is not None and session.bind.dialect.name == "postgresql":
        await session.execute(text("SELECT pg_advisory_xact_lock(hashtext(:name))"), {"name": name})


class Database:
    """One engine and session factory per process, created in the lifespan and disposed on shutdown."""

    def __init__(
        self,
        url: str,
        *,
        echo: bool = False,
        busy_timeout_ms: int = 10_000,
        ping_after_idle_seconds: float = PING_AFTER_IDLE_SECONDS,
    ) -> None:
        self.url = url
        self._sqlite = is_sqlite(url)  # asked on every transaction: parse the URL once
        kwargs: dict[str, Any] = {"echo": echo}
        if self._sqlite:
            # SQLite runs on the event loop (see inline_sqlite); the write turns below keep it from waiting.
            kwargs.update(async_creator=connector(sqlite_path(url)))
        else:
            kwargs.update(pool_size=10, max_overflow=10)
        self.engine: AsyncEngine = create_async_engine(url, **kwargs)
        if self._sqlite:
            _prepare_sqlite(self.engine)
        else:
            _ping_when_idle(self.engine, ping_after_idle_seconds)
        self.sessions = async_sessionmaker(self.engine, class_=AsyncSession, expire_on_commit=False)
        self._commit_listeners: list[Callable[[], None]] = []
        self._handoff: tuple[Callable[[list[dict[str, Any]]], None], float] | None = None
        # SQLite: how long a write may wait for its turn, in this process and for other processes' writes.
        self.busy_timeout = busy_timeout_ms / 1000
        self._write_turn = asyncio.Lock()

    @property
    def is_sqlite(self) -> bool:
        return self._sqlite

    def on_outbox_commit(self, listener: Callable[[], None]) -> None:
        """Call `listener` after every commit that wrote outbox rows (the relay's wake-up)."""
        self._commit_listeners.append(listener)

    def hand_off_to(self, receiver: Callable[[list[dict[str, Any]]], None] | None, lease_seconds: float = 0) -> None:
        """While set, outbox rows that can go out at once are written leased for `lease_seconds` and given to
        `receiver` after their commit (see `messaging.enqueue`); None stops it."""
        self._handoff = (receiver, lease_seconds) if receiver is not None else None

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncSession]:
        """A session whose work is committed at the end of the block, or rolled back on any error."""
        if not self.is_sqlite:
            async with self._committing() as session:
                yield session
            return
        # One SQLite writer at a time per process, in arrival order, waiting on the loop rather than in
        # SQLite's busy handler (which would now block the loop). Past the busy timeout it is "locked",
        # as SQLite itself would say, which the services answer 503 busy.
        deadline = time.monotonic() + self.busy_timeout
        try:
            async with asyncio.timeout(self.busy_timeout):
                await self._write_turn.acquire()
        except TimeoutError:
            raise _locked("BEGIN IMMEDIATE (waiting for this process's earlier writes)") from None
        try:
            async with self._committing(deadline) as session:
                yield session
        finally:
            self._write_turn.release()

    @asynccontextmanager
    async def _committing(self, sqlite_deadline: float | None = None) -> AsyncIterator[AsyncSession]:
        async with self.sessions() as session:
            session.info[BEFORE_COMMIT] = {}
            handoff = self._handoff
            if handoff is not None:
                session.info[HANDOFF_LEASE] = handoff[1]
            try:
                if sqlite_deadline is not None:
                    await session.connection(execution_options={WRITES: sqlite_deadline})
                yield session
                for finish in session.info.pop(BEFORE_COMMIT, {}).values():
                    await finish(session)
                await session.commit()
            except BaseException:
                await session.rollback()
                raise
            handed_off = session.info.pop(OUTBOX_HANDED_OFF, None)
            if handed_off and handoff is not None:
                handoff[0](handed_off)
            if session.info.pop(OUTBOX_WRITTEN, False):
                for listener in self._commit_listeners:
                    listener()

    async def ping(self) -> None:
        async with self.engine.connect() as conn:
            await conn.execute(text("SELECT 1"))

    async def dispose(self) -> None:
        await self.engine.dispose()
