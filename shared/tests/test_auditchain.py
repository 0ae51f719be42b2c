"""The tamper-evident audit chain: entries chained by hash, signed checkpoints, and a verifier that finds every
kind of tampering done to the database directly (an edit, a deletion, a reordering, a rewrite of the whole
chain after an entry, a cut-off end, a forged checkpoint) and points at the first broken entry."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import pytest
from sqlalchemy import MetaData, delete, func, select, update

from burgermelding_shared import auditchain
from burgermelding_shared.db import Database
from burgermelding_shared.service_auth import new_key

metadata = MetaData()
tables = auditchain.audit_tables(metadata, "test-service")
KEY = new_key("test-service", "audit-test-1")
KEYS = {KEY.kid: KEY.private_key.public_key()}


@pytest.fixture
async def db(database_with: Callable[[str, MetaData], Awaitable[Database]]) -> Database:
    return await database_with("auditchain", metadata)


async def write(db: Database, count: int, start: int = 0) -> None:
    for i in range(start, start + count):
        async with db.transaction() as session:
            auditchain.record(
                session,
                tables,
                actor="anna",
                role="dispatcher",
                action="view_report",
                target_type="report",
                target_id=f"r{i}",
                report_id=f"r{i}",
                detail={"n": i, "text": "één"},
            )


async def verify(db: Database) -> auditchain.ChainReport:
    return await auditchain.verify_chain(db, tables, KEYS)


async def test_an_untouched_chain_verifies_and_entries_follow_commit_order(db: Database) -> None:
    await write(db, 5)
    async with db.transaction() as session:  # several entries in one transaction keep their order
        for action in ("a", "b", "c"):
            auditchain.record(session, tables, actor="x", role="service", action=action, target_type="t", target_id="1")
    assert await auditchain.write_checkpoint(db, tables, KEY) is not None
    assert await auditchain.write_checkpoint(db, tables, KEY) is None  # nothing new to sign
    report = await verify(db)
    assert report.intact, report.summary()
    assert (report.entries, report.checkpoints, report.head) == (8, 1, 8)
    async with db.sessions() as session:
        actions = (
            (await session.execute(select(tables.entries.c.action).order_by(tables.entries.c.seq))).scalars().all()
        )
    assert actions[-3:] == ["a", "b", "c"]


async def test_a_rolled_back_transaction_leaves_no_entry(db: Database) -> None:
    await write(db, 2)
    with pytest.raises(RuntimeError):
        async with db.transaction() as session:
            auditchain.record(session, tables, actor="x", role="service", action="lost", target_type="t", target_id="1")
            raise RuntimeError("the change failed")
    report = await verify(db)
    assert report.intact and report.entries == 2


async def test_concurrent_writers_make_one_unbroken_chain(db: Database) -> None:
    await asyncio.gather(*(write(db, 10, start=100 * w) for w in range(4)))
    report = await verify(db)
    assert report.intact, report.summary()
    assert report.entries == 40


async def test_an_edited_entry_is_found(db: Database) -> None:
    await write(db, 6)
    async with db.engine.begin() as conn:
        await conn.execute(update(tables.entries).where(tables.entries.c.seq == 4).values(actor="mallory"))
    report = await verify(db)
    assert not report.intact
    assert [(p.seq, p.kind) for p in report.problems] == [(4, "changed")]
    assert "BROKEN at entry 4" in report.summary()


async def test_an_edited_detail_is_found(db: Database) -> None:
    await write(db, 3)
    async with db.engine.begin() as conn:
        await conn.execute(
            update(tables.entries).where(tables.entries.c.seq == 2).values(detail='{"n":2,"text":"twee"}')
        )
    assert [(p.seq, p.kind) for p in (await verify(db)).problems] == [(2, "changed")]


async def test_a_deleted_entry_is_found(db: Database) -> None:
    await write(db, 6)
    async with db.engine.begin() as conn:
        await conn.execute(delete(tables.entries).where(tables.entries.c.seq == 3))
    problems = (await verify(db)).problems
    assert [(p.seq, p.kind) for p in problems] == [(3, "missing")]


async def test_a_deleted_entry_renumbered_away_is_found(db: Database) -> None:
    """Deleting entry 3 and moving 4.. down by one (so that no number is missing) still breaks the links."""
    await write(db, 6)
    async with db.engine.begin() as conn:
        await conn.execute(delete(tables.entries).where(tables.entries.c.seq == 3))
        for seq in (4, 5, 6):
            await conn.execute(update(tables.entries).where(tables.entries.c.seq == seq).values(seq=seq - 1))
    problems = (await verify(db)).problems
    assert problems[0].seq == 3 and {p.kind for p in problems} >= {"out_of_order", "changed"}


async def test_reordered_entries_are_found(db: Database) -> None:
    await write(db, 6)
    async with db.engine.begin() as conn:  # swap entries 2 and 5, numbers and all
        await conn.execute(update(tables.entries).where(tables.entries.c.seq == 2).values(seq=-2))
        await conn.execute(update(tables.entries).where(tables.entries.c.seq == 5).values(seq=2))
        await conn.execute(update(tables.entries).where(tables.entries.c.seq == -2).values(seq=5))
    report = await verify(db)
    assert min(p.seq for p in report.problems) == 2
    assert "BROKEN at entry 2" in report.summary()


async def test_a_chain_rewritten_after_an_edit_is_caught_by_its_checkpoint(db: Database) -> None:
    """Whoever edits entry 3 and recomputes every hash after it makes the chain consistent again; the checkpoint
    signed before no longer matches, and the attacker cannot sign a new one without the service's key."""
    await write(db, 5)
    await auditchain.write_checkpoint(db, tables, KEY)
    async with db.engine.begin() as conn:
        rows = (await conn.execute(select(tables.entries).order_by(tables.entries.c.seq))).mappings().all()
        prev = rows[1]["entry_hash"]
        for row in rows[2:]:
            changed = {**row, "actor": "mallory" if row["seq"] == 3 else row["actor"], "prev_hash": prev}
            changed["entry_hash"] = prev = auditchain.entry_hash(changed)
            await conn.execute(
                update(tables.entries)
                .where(tables.entries.c.seq == row["seq"])
                .values(actor=changed["actor"], prev_hash=changed["prev_hash"], entry_hash=changed["entry_hash"])
            )
    problems = (await verify(db)).problems
    assert [(p.seq, p.kind) for p in problems] == [(5, "checkpoint_mismatch")]


async def test_a_cut_off_end_is_found(db: Database) -> None:
    await write(db, 5)
    await auditchain.write_checkpoint(db, tables, KEY)
    async with db.engine.begin() as conn:
        await conn.execute(delete(tables.entries).where(tables.entries.c.seq >= 4))
    problems = (await verify(db)).problems
    assert [(p.seq, p.kind) for p in problems] == [(4, "truncated")]


async def test_forged_and_unknown_checkpoints_are_found(db: Database) -> None:
    await write(db, 3)
    await auditchain.write_checkpoint(db, tables, KEY)
    async with db.engine.begin() as conn:
        await conn.execute(update(tables.checkpoints).values(entry_hash="f" * 64))
    assert [p.kind for p in (await verify(db)).problems] == ["bad_signature"]
    other = await auditchain.verify_chain(db, tables, {})
    assert [p.kind for p in other.problems] == ["unknown_key"]


async def test_entries_about_a_report_carry_what_checks_them(db: Database) -> None:
    await write(db, 3)
    async with db.sessions() as session:
        about = await auditchain.entries_about(session, tables, report_id="r1")
        count = (await session.execute(select(func.count()).select_from(tables.entries))).scalar()
    assert count == 3 and [e["target_id"] for e in about] == ["r1"]
    assert about[0]["detail"] == {"n": 1, "text": "één"} and auditchain.check_entry(about[0])
    assert not auditchain.check_entry({**about[0], "detail_json": '{"n":1}'})
