"""A history for the throughput bench: `count` earlier reports, their photos and photo hashes, already stored.

Written straight into each service's database (after its migrations) in batches, as a year of reports would
have left them: intake's reports and photos, verification's jobs, texts and photo fingerprints (random pHash
and PDQ, so the near-duplicate index is full and every search scans a million codes), the bridge's reports.
All of it older than the event window (2 hours), so nothing joins today's events, and spread over a year, so
time-bounded queries meet real index depth. The photo files themselves are not written (only the rows that
point at them): nothing in the measured path reads an old photo.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Boolean, DateTime, Float, Integer, LargeBinary, String, Table, Text, TypeDecorator
from sqlalchemy.ext.asyncio import create_async_engine

BATCH = 5_000


def filler(column: Any, old: datetime) -> Any:
    """A value for a required column the seed has no opinion about."""
    kind = column.type.impl if isinstance(column.type, TypeDecorator) else column.type
    if isinstance(kind, DateTime):
        return old
    if isinstance(kind, Boolean):
        return False
    if isinstance(kind, Integer | Float):
        return 0
    if isinstance(kind, LargeBinary):
        return b""
    if isinstance(kind, Text):
        return "{}"
    if isinstance(kind, String):
        return "x"[: kind.length or 1]
    raise TypeError(f"no filler for {column.table.name}.{column.name} ({kind!r})")


def complete(table: Table, values: dict[str, Any], old: datetime) -> dict[str, Any]:
    row = dict(values)
    for column in table.columns:
        if column.name in row or column.nullable or column.default is not None or column.server_default is not None:
            continue
        if column.primary_key and column.autoincrement in (True, "auto") and isinstance(column.type, Integer):
            continue
        row[column.name] = filler(column, old)
    return row


def history(count: int) -> Iterator[dict[str, Any]]:
    rng = random.Random(20261202)
    now = datetime.now(UTC)
    for n in range(count):
        received = now - timedelta(hours=3) - timedelta(seconds=rng.uniform(0, 365 * 86400))
        yield {
            "n": n,
            "report_id": f"00000000-0000-4000-8000-{n:012d}",
            "photo_id": f"10000000-0000-4000-8000-{n:012d}",
            "sha256": rng.randbytes(32).hex(),
            "sanitised": rng.randbytes(32).hex(),
            "phash": rng.getrandbits(64) - 2**63,
            "pdq": rng.randbytes(32),
            "received": received,
            "lat": rng.uniform(50.8, 53.5),
            "lon": rng.uniform(3.4, 7.2),
            "category": rng.choice(["theft", "violence", "vandalism", "burglary", "public_nuisance"]),
            "tag": rng.randbytes(16).hex(),
        }


async def insert(url: str, tables: list[tuple[Table, Callable[[dict[str, Any]], dict[str, Any]]]], count: int) -> None:
    engine = create_async_engine(url)
    try:
        batch: list[dict[str, Any]] = []

        async def flush() -> None:
            async with engine.begin() as conn:
                for table, make in tables:
                    await conn.execute(table.insert(), [complete(table, make(h), h["received"]) for h in batch])
            batch.clear()

        for item in history(count):
            batch.append(item)
            if len(batch) >= BATCH:
                await flush()
        if batch:
            await flush()
        if engine.dialect.name == "postgresql":
            async with engine.connect() as conn:
                await conn.exec_driver_sql("ANALYZE")  # as autovacuum would have after a year
    finally:
        await engine.dispose()


async def seed(env: dict[str, str], count: int) -> None:
    from dispatch_bridge.models import BridgeReport
    from report_intake.models import Photo, Report
    from verification.models import PhotoFingerprint, ReportText, VerificationJob

    intake = [
        (
            Report.__table__,
            lambda h: {
                "id": h["report_id"],
                "reference": f"BM-2025-{h['n'] + 1:07d}",
                "category": h["category"],
                "description": "eerdere melding",
                "lat": h["lat"],
                "lon": h["lon"],
                "observed_at": h["received"],
                "received_at": h["received"],
                "status": "closed",
                "in_progress": False,
                "danger_to_life": False,
                "revision": 0,
            },
        ),
        (
            Photo.__table__,
            lambda h: {
                "id": h["photo_id"],
                "report_id": h["report_id"],
                "sha256": h["sha256"],
                "sanitised_sha256": h["sanitised"],
                "content_type": "image/jpeg",
                "size_bytes": 3_000_000,
                "width": 4000,
                "height": 3000,
                "received_at": h["received"],
            },
        ),
    ]
    verification = [
        (
            VerificationJob.__table__,
            lambda h: {
                "job_id": f"{h['report_id']}:0",
                "report_id": h["report_id"],
                "revision": 0,
                "status": "done",
                "priority": 0,
                "received_at": h["received"],
                "completed_at": h["received"],
                "verdict": "forward",
            },
        ),
        (
            ReportText.__table__,
            lambda h: {
                "report_id": h["report_id"],
                "submitter_tag": h["tag"],
                "submitter_kind": "installation",
                "text_hash": h["sha256"],
                "content_hash": h["sanitised"],
                "received_at": h["received"],
            },
        ),
        (
            PhotoFingerprint.__table__,
            lambda h: {
                "report_id": h["report_id"],
                "photo_id": h["photo_id"],
                "sha256": h["sha256"],
                "phash": h["phash"],
                "pdq": h["pdq"],
                "pdq_quality": 100,
                "received_at": h["received"],
                "claimed_lat": h["lat"],
                "claimed_lon": h["lon"],
                "captured_at": h["received"],
            },
        ),
    ]
    bridge = [
        (
            BridgeReport.__table__,
            lambda h: {
                "report_id": h["report_id"],
                "reference": f"BM-2025-{h['n'] + 1:07d}",
                "category": h["category"],
                "received_at": h["received"],
                "state": "forwarded",
                "verdict": "forward",
                "observed_at": h["received"],
            },
        ),
    ]
    await asyncio.gather(
        insert(env["BM_INTAKE_DATABASE_URL"], intake, count),
        insert(env["BM_VERIFICATION_DATABASE_URL"], verification, count),
        insert(env["BM_BRIDGE_DATABASE_URL"], bridge, count),
    )


def seed_history(env: dict[str, str], count: int) -> None:
    started = time.monotonic()
    print(f"storing {count:,} earlier reports, photos and photo hashes", flush=True)
    asyncio.run(seed(env, count))
    print(f"  stored in {time.monotonic() - started:.0f} s", flush=True)
