"""SQLite as the services use it: on the event loop, writers taking turns, never blocking the loop."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
import time
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.exc import OperationalError

from burgermelding_shared.db import Database


async def make_notes(tmp_path: Path, busy_timeout_ms: int) -> Database:
    db = Database(f"sqlite+aiosqlite:///{tmp_path / 'notes.db'}", busy_timeout_ms=busy_timeout_ms)
    async with db.transaction() as session:
        await session.execute(text("CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT)"))
    return db


async def count_notes(db: Database) -> int:
    async with db.sessions() as session:
        return int((await session.execute(text("SELECT count(*) FROM notes"))).scalar_one())


async def test_a_sqlite_reader_neither_waits_for_nor_holds_up_a_writer(tmp_path: Path) -> None:
    """Reads begin deferred (WAL readers see the last commit, take no lock); transactions take the write lock
    up front. With a reader's transaction open, a writer commits at once instead of waiting out the busy
    timeout (which is short here, so waiting would fail the write)."""
    db = await make_notes(tmp_path, busy_timeout_ms=50)
    try:
        async with db.sessions() as reader:
            assert (await reader.execute(text("SELECT count(*) FROM notes"))).scalar() == 0  # read txn open
            async with db.transaction() as writer:
                await writer.execute(text("INSERT INTO notes (body) VALUES ('x')"))
            async with db.transaction() as second_writer:  # and writers still exclude each other's start
                await second_writer.execute(text("INSERT INTO notes (body) VALUES ('y')"))
            assert (await reader.execute(text("SELECT count(*) FROM notes"))).scalar() == 0  # its snapshot
        async with db.sessions() as later:
            assert (await later.execute(text("SELECT count(*) FROM notes"))).scalar() == 2
    finally:
        await db.dispose()


async def test_writers_of_one_process_take_turns_without_errors(tmp_path: Path) -> None:
    """Many concurrent transactions that each yield the loop while holding the write lock: each waits its
    turn (in order) and all commit, within a busy timeout far shorter than the whole queue would be if SQLite
    made them poll."""
    db = await make_notes(tmp_path, busy_timeout_ms=2000)
    order: list[int] = []

    async def write(n: int) -> None:
        async with db.transaction() as session:
            order.append(n)
            await session.execute(text("INSERT INTO notes (body) VALUES (:n)"), {"n": str(n)})
            await asyncio.sleep(0.001)  # other work on the loop while this writer holds the lock

    try:
        await asyncio.gather(*(write(n) for n in range(60)))
        assert await count_notes(db) == 60
        assert order == list(range(60))  # first come, first served
    finally:
        await db.dispose()


async def test_a_writer_waits_for_another_process_without_blocking_the_loop(tmp_path: Path) -> None:
    """Another process's writer holds the lock for 300 ms: our write waits and then commits, and meanwhile
    the event loop keeps running (SQLite's own busy handler would have frozen it)."""
    db = await make_notes(tmp_path, busy_timeout_ms=5000)
    blocker = sqlite3.connect(tmp_path / "notes.db", isolation_level=None, check_same_thread=False)
    blocker.execute("BEGIN IMMEDIATE")
    threading.Timer(0.3, blocker.execute, args=("ROLLBACK",)).start()
    ticks = 0

    async def tick() -> None:
        nonlocal ticks
        while True:
            await asyncio.sleep(0.01)
            ticks += 1

    ticker = asyncio.create_task(tick())
    try:
        started = time.monotonic()
        async with db.transaction() as session:
            await session.execute(text("INSERT INTO notes (body) VALUES ('after the other process')"))
        waited = time.monotonic() - started
        assert waited >= 0.25
        assert ticks >= waited / 0.01 * 0.5  # the loop ran on while the write waited
        assert await count_notes(db) == 1
    finally:
        ticker.cancel()
        blocker.close()
        await db.dispose()


async def test_past_the_busy_timeout_a_write_is_locked_and_stores_nothing(tmp_path: Path) -> None:
    db = await make_notes(tmp_path, busy_timeout_ms=100)
    blocker = sqlite3.connect(tmp_path / "notes.db", isolation_level=None)
    blocker.execute("BEGIN IMMEDIATE")
    try:
        with pytest.raises(OperationalError, match="locked"):
            async with db.transaction() as session:
                await session.execute(text("INSERT INTO notes (body) VALUES ('never')"))

        # ... and the writers queued behind it in this process are locked out too, not stuck for ever
        async def write() -> None:
            async with db.transaction() as session:
                await session.execute(text("INSERT INTO notes (body) VALUES ('never')"))

        results = await asyncio.gather(*(write() for _ in range(3)), return_exceptions=True)
        assert all(isinstance(r, OperationalError) and "locked" in str(r) for r in results), results
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()
    try:
        assert await count_notes(db) == 0
        async with db.transaction() as session:  # the lock is free again: writes go through
            await session.execute(text("INSERT INTO notes (body) VALUES ('now')"))
        assert await count_notes(db) == 1
    finally:
        await db.dispose()
