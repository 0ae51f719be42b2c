"""SQLite for the async engine without a thread per connection: each call runs at once, on the event loop.

SQLAlchemy's async SQLite dialect drives aiosqlite, which runs every call (cursor, execute, fetch, close,
begin, commit) on a thread of its own and hands the result back through the event loop. Measured here, a
one-row SELECT through an AsyncSession cost 1.2 ms of CPU that way, of which sqlite3 itself needed 3 us; the
rest is the hand-offs between threads. A message between two services makes a few dozen such calls on each
side, so the hand-offs were most of the suite's CPU per report.

The calls SQLite makes for this suite take microseconds, so they can run on the loop itself, provided nothing
ever waits on a lock there. `Database` sees to that: writers of one process take turns on an asyncio lock
before `BEGIN IMMEDIATE`, and a write lock held by another process is waited for with `asyncio.sleep`
between attempts (see `db.py`); readers in WAL mode take no lock. The connections' own busy timeout is
only a few milliseconds, for SQLite's rare short waits (opening the WAL index).

This module is the driver-level connection that SQLAlchemy's aiosqlite dialect expects (the part of
aiosqlite's interface it uses), passed to the engine as `async_creator`.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable, Iterable
from typing import Any

# Busy timeout of an inline connection: it may block the event loop for this long at most.
INLINE_BUSY_TIMEOUT_MS = 5


class InlineCursor:
    """A sqlite3 cursor behind aiosqlite's awaitable cursor methods."""

    def __init__(self, cursor: sqlite3.Cursor) -> None:
        self._cursor = cursor

    async def __aenter__(self) -> InlineCursor:
        return self

    async def __aexit__(self, *_exc: object) -> None:
        self._cursor.close()

    @property
    def description(self) -> Any:
        return self._cursor.description

    @property
    def rowcount(self) -> int:
        return self._cursor.rowcount

    @property
    def lastrowid(self) -> int | None:
        return self._cursor.lastrowid

    @property
    def arraysize(self) -> int:
        return self._cursor.arraysize

    @arraysize.setter
    def arraysize(self, value: int) -> None:
        self._cursor.arraysize = value

    async def execute(self, sql: str, parameters: Any = ()) -> InlineCursor:
        self._cursor.execute(sql, parameters)
        return self

    async def executemany(self, sql: str, parameters: Iterable[Any]) -> InlineCursor:
        self._cursor.executemany(sql, parameters)
        return self

    async def fetchone(self) -> Any:
        return self._cursor.fetchone()

    async def fetchmany(self, size: int | None = None) -> list[Any]:
        return self._cursor.fetchmany(self._cursor.arraysize if size is None else size)

    async def fetchall(self) -> list[Any]:
        return self._cursor.fetchall()

    async def close(self) -> None:
        self._cursor.close()


class _RunNow:
    """Stands in for aiosqlite's queue to its thread: SQLAlchemy puts (future, function) pairs on it to set
    the isolation level; here the function runs at once."""

    def put_nowait(self, item: tuple[asyncio.Future[Any] | None, Callable[[], Any]]) -> None:
        future, function = item
        try:
            result = function()
        except BaseException as error:  # handed to the awaiting caller, as aiosqlite's thread would
            if future is not None:
                future.set_exception(error)
            return
        if future is not None:
            future.set_result(result)


class InlineConnection:
    """A sqlite3 connection behind aiosqlite's awaitable connection methods."""

    def __init__(self, connection: sqlite3.Connection) -> None:
        self._conn = connection
        self._connection: sqlite3.Connection | None = connection  # None once closed, as in aiosqlite
        self._tx = _RunNow()

    @property
    def isolation_level(self) -> str | None:
        return self._conn.isolation_level

    def cursor(self) -> InlineCursor:
        return InlineCursor(self._conn.cursor())

    async def commit(self) -> None:
        self._conn.commit()

    async def rollback(self) -> None:
        self._conn.rollback()

    async def create_function(self, *args: Any, **kwargs: Any) -> None:
        self._conn.create_function(*args, **kwargs)

    async def close(self) -> None:
        self.stop()

    def stop(self) -> None:
        if self._connection is not None:
            self._connection = None
            self._conn.close()


def connector(path: str) -> Callable[[], Any]:
    """The engine's `async_creator` for the SQLite file at `path`."""

    async def connect() -> InlineConnection:
        # check_same_thread=False: the pool may close a connection from the garbage collector's thread.
        connection = sqlite3.connect(
            path, timeout=INLINE_BUSY_TIMEOUT_MS / 1000, isolation_level=None, check_same_thread=False
        )
        return InlineConnection(connection)

    return connect
