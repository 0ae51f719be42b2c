"""Idempotency-Key handling after the IETF draft (draft-ietf-httpapi-idempotency-key-header).

The first request with a key claims it in its own short transaction, so a concurrent retry sees the claim:
same key while the first is still running -> 409; same key with another payload -> 422; same key and payload
after completion -> the first response, replayed. A claim whose holder died is taken over after a timeout.
Keys are stored only as hashes (a stored answer may hold what only the key's holder should be able to open),
and records are purged after a day.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy import Column, Integer, MetaData, String, Table, Text, delete, select, update
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from burgermelding_shared.background import BackgroundLoop
from burgermelding_shared.db import Database, rowcount
from burgermelding_shared.errors import ServiceError, is_transient
from burgermelding_shared.timeutil import UTCDateTime, utcnow

log = logging.getLogger(__name__)
KEY_PATTERN = re.compile(r"^[A-Za-z0-9._:\-]{8,128}$")
STALE_CLAIM = timedelta(minutes=2)
RETENTION = timedelta(hours=24)


def idempotency_table(metadata: MetaData) -> Table:
    return Table(
        "idempotency_keys",
        metadata,
        Column("key", String(160), primary_key=True),
        Column("fingerprint", String(64), nullable=False),
        Column("state", String(16), nullable=False),  # processing | done
        Column("response_status", Integer),
        Column("response_body", Text),
        Column("created_at", UTCDateTime, nullable=False),
    )


def stored_key(scope: str, key: str) -> str:
    """How a key is kept: its SHA-256 under the operation's scope, never the key itself."""
    return f"{scope}:{hashlib.sha256(key.encode()).hexdigest()}"


@dataclass
class StoredResponse:
    status_code: int
    body: dict[str, Any]


def check_key(raw: str | None) -> str:
    if not raw:
        raise ServiceError(
            400,
            "idempotency_key_missing",
            "the Idempotency-Key header is required",
            detail_nl="De header Idempotency-Key is verplicht",
        )
    key = raw.strip().strip('"')
    if not KEY_PATTERN.match(key):
        raise ServiceError(
            400,
            "idempotency_key_invalid",
            "Idempotency-Key must be 8 to 128 characters of letters, digits and . _ : -",
            detail_nl="Idempotency-Key moet 8 tot 128 tekens zijn: letters, cijfers en . _ : -",
        )
    return key


def in_progress() -> ServiceError:
    return ServiceError(
        409,
        "request_in_progress",
        "a request with this Idempotency-Key is still being processed",
        detail_nl="Een verzoek met deze Idempotency-Key wordt nog verwerkt",
        headers={"Retry-After": "1"},
    )


async def claim(
    db: Database, table: Table, scope: str, key: str, fingerprint: str, stale_after: timedelta = STALE_CLAIM
) -> StoredResponse | None:
    """Claim `key` for a request with this `fingerprint`; a stored response to replay, or None to proceed. A claim
    older than `stale_after` is taken to be a dead request's and is taken over."""
    full_key = stored_key(scope, key)
    now = utcnow()
    try:
        async with db.transaction() as session:
            await session.execute(
                table.insert().values(key=full_key, fingerprint=fingerprint, state="processing", created_at=now)
            )
        return None
    except IntegrityError:
        pass
    async with db.transaction() as session:
        row = (await session.execute(select(table).where(table.c.key == full_key))).mappings().first()
        if row is None:  # released between our insert and this read: try once more
            await session.execute(
                table.insert().values(key=full_key, fingerprint=fingerprint, state="processing", created_at=now)
            )
            return None
        if row["fingerprint"] != fingerprint:
            raise ServiceError(
                422,
                "idempotency_key_reused",
                "this Idempotency-Key was used for a different request",
                detail_nl="Deze Idempotency-Key is al gebruikt voor een ander verzoek",
            )
        if row["state"] == "done":
            return StoredResponse(row["response_status"], json.loads(row["response_body"]))
        if now - row["created_at"] < stale_after:
            raise in_progress()
        # The first holder died mid-request: take the claim over, if no other retry took it first (the update
        # only matches the stale claim as read; PostgreSQL re-reads a row a concurrent update changed).
        taken = await session.execute(
            update(table)
            .where(table.c.key == full_key, table.c.state == "processing", table.c.created_at == row["created_at"])
            .values(created_at=now)
        )
        if rowcount(taken) != 1:
            raise in_progress()
        return None


async def answered(db: Database, table: Table, scope: str, key: str) -> bool:
    """True if a request with this key has its answer stored (a retry of it will be a replay)."""
    async with db.sessions() as session:
        state = (await session.execute(select(table.c.state).where(table.c.key == stored_key(scope, key)))).scalar()
    return state == "done"


async def complete(session: AsyncSession, table: Table, scope: str, key: str, response: StoredResponse) -> None:
    """Record the response in the same transaction as the work it describes."""
    await session.execute(
        update(table)
        .where(table.c.key == stored_key(scope, key))
        .values(
            state="done", response_status=response.status_code, response_body=json.dumps(response.body, default=str)
        )
    )


async def release(db: Database, table: Table, scope: str, key: str) -> None:
    """Drop a claim whose request failed, so the client may retry with the same key."""
    async with db.transaction() as session:
        await session.execute(delete(table).where(table.c.key == stored_key(scope, key), table.c.state == "processing"))


async def purge_expired(db: Database, table: Table) -> int:
    """Forget records older than RETENTION: a client retries within minutes, not days."""
    async with db.transaction() as session:
        result = await session.execute(delete(table).where(table.c.created_at < utcnow() - RETENTION))
    return rowcount(result)


class IdempotencyPurger(BackgroundLoop):
    """Runs `purge_expired` once an hour for as long as the service runs."""

    name = "idempotency-purger"
    poll_seconds = 3600.0

    def __init__(self, db: Database, table: Table) -> None:
        super().__init__()
        self.db, self.table = db, table

    async def run_once(self) -> int:
        await purge_expired(self.db, self.table)
        return 0  # then sleep a poll interval, whatever was purged


async def run_once(
    db: Database,
    table: Table,
    scope: str,
    key: str,
    fingerprint: str,
    work: Callable[[AsyncSession], Awaitable[StoredResponse]],
    stale_after: timedelta = STALE_CLAIM,
) -> StoredResponse:
    """Do `work` once per key: replay its stored response on a retry, or do it in one transaction that also
    records the response. On failure the claim is released, so the client may retry with the same key. (A rate
    limit is reserved before, in one step, and given back for a replay: see intake's limits.)"""
    replay = await claim(db, table, scope, key, fingerprint, stale_after)
    if replay is not None:
        return replay
    try:
        async with db.transaction() as session:
            response = await work(session)
            await complete(session, table, scope, key, response)
        return response
    except BaseException:
        await release_soon(db, table, scope, key)
        raise


async def release_soon(db: Database, table: Table, scope: str, key: str, attempts: int = 8) -> None:
    """Release a failed request's claim, trying again for a moment when the database is busy (most likely why
    the request failed): a claim left behind would answer the client's retry 409 until it goes stale."""
    for attempt in range(attempts):
        try:
            await release(db, table, scope, key)
            return
        except (DBAPIError, ConnectionError) as error:  # ConnectionError: asyncpg's own, when refused
            if not is_transient(error):
                raise
            if attempt == attempts - 1:
                log.warning("idempotency claim not released; it is taken over once stale")
                return
            await asyncio.sleep(0.05 * 2**attempt)
