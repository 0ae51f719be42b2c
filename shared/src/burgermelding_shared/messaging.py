"""Transactional outbox, relay and inbox: how every message between services travels.

The sender writes its message in the same transaction as the change that causes it (`enqueue`), so a message
exists if and only if the change does. A relay delivers it afterwards, at least once: it is woken on commit and
polls only as a fallback, claims rows with a lease (so a relay that dies mid-send leaves nothing stuck, and two
replicas never send the same row at the same time), retries transport errors, 5xx, 408 and 429 with exponential
backoff and full jitter (honouring `Retry-After`), and dead-letters other 4xx and messages that run out of
attempts, where they stay visible and can be replayed. Every send carries the message id as `Idempotency-Key`;
the receiver records it in its inbox in the same transaction as its effect (`first_delivery`), so a message
delivered twice takes effect once. Messages that share an `ordering_key` (news about one incident) go out one
at a time, in the order they were written: an update never overtakes the request that makes its incident known.
"""

from __future__ import annotations

import asyncio
import contextlib
import email.utils
import json
import logging
import random
import uuid
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import IntEnum
from functools import cached_property
from typing import Any, Protocol

import httpx
from pydantic import BaseModel
from sqlalchemy import (
    Column,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    bindparam,
    exists,
    func,
    insert,
    or_,
    select,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from burgermelding_shared.background import BackgroundLoop
from burgermelding_shared.catalogue import Message
from burgermelding_shared.db import HANDOFF_LEASE, OUTBOX_HANDED_OFF, OUTBOX_WRITTEN, Database, rowcount
from burgermelding_shared.sharedstate import CircuitView, SharedState
from burgermelding_shared.timeutil import UTCDateTime, utcnow
from burgermelding_shared.tracing import SpanKind, continue_trace, current_traceparent
from burgermelding_shared.urgency import MeldkamerPriority

log = logging.getLogger(__name__)

PENDING, DELIVERED, DEAD, CANCELLED = "pending", "delivered", "dead", "cancelled"


class Precedence(IntEnum):
    """The order the outbox sends in: higher first, so urgent work leaves before a backlog of ordinary work, and
    an urgent message that dies must wake someone. Higher is more urgent here, the opposite of the meldkamer's
    `contracts.MeldkamerPriority` (prio 1 is the most urgent): two types, so the one cannot pass for the other.
    (The outbox column keeps its old name, `priority`, in every service's schema.)"""

    ORDINARY = 0
    RAISED = 5
    URGENT = 10

    @classmethod
    def of(cls, priority: MeldkamerPriority) -> Precedence:
        """What the meldkamer hears about an incident leaves in the order of the incident's priority."""
        return {MeldkamerPriority.URGENT: cls.URGENT, MeldkamerPriority.HIGH: cls.RAISED}.get(priority, cls.ORDINARY)

    @classmethod
    def urgent_if(cls, urgent: bool) -> Precedence:
        return cls.URGENT if urgent else cls.ORDINARY


@dataclass(frozen=True)
class MessagingTables:
    """A service's outbox and inbox, and the statements that every message runs on them.

    The statements are built once, with bound parameters, and reused: SQLAlchemy then neither builds them nor
    works out their cache key again for each message (that was a fifth of the relay's CPU).
    """

    outbox: Table
    inbox: Table

    @cached_property
    def add_message(self) -> Any:
        return insert(self.outbox)

    def record_receipt(self, dialect: str) -> Any:
        return self._record_receipt[dialect == "postgresql"]

    @cached_property
    def _record_receipt(self) -> dict[bool, Any]:
        return {
            postgres: (postgresql.insert if postgres else sqlite.insert)(self.inbox).on_conflict_do_nothing(
                index_elements=["message_id"]
            )
            for postgres in (False, True)
        }

    def _due(self) -> tuple[Any, ...]:
        outbox = self.outbox
        return (
            outbox.c.status == PENDING,
            or_(outbox.c.lease_until.is_(None), outbox.c.lease_until < bindparam("now")),
            _in_turn(outbox),
        )

    @cached_property
    def next_due(self) -> Any:
        """When the next message waiting (not in flight, not behind one in flight) is due."""
        return select(func.min(self.outbox.c.next_attempt_at)).where(*self._due())

    def claimable(self, batch_size: int, lock_rows: bool, *, probe: bool = False) -> Any:
        """Ids of due messages, urgent first, then oldest: outside the destinations in `blocked`, or (a probe)
        for the one `destination`."""
        key = (batch_size, lock_rows, probe)
        if key not in self._claimable:
            outbox = self.outbox
            where = (
                outbox.c.destination == bindparam("destination")
                if probe
                else outbox.c.destination.not_in(bindparam("blocked", expanding=True))
            )
            query = (
                select(outbox.c.id)
                .where(*self._due(), outbox.c.next_attempt_at <= bindparam("now"), where)
                .order_by(outbox.c.priority.desc(), outbox.c.id)
                .limit(batch_size)
            )
            # Several relays on PostgreSQL: each takes rows the others have not locked.
            self._claimable[key] = query.with_for_update(skip_locked=True) if lock_rows else query
        return self._claimable[key]

    @cached_property
    def _claimable(self) -> dict[tuple[int, bool, bool], Any]:
        return {}

    @cached_property
    def lease(self) -> Any:
        return (
            update(self.outbox)
            .where(self.outbox.c.id.in_(bindparam("ids", expanding=True)))
            .values(lease_until=bindparam("until"))
            .returning(*self.outbox.c)
        )

    @cached_property
    def unlease(self) -> Any:
        """Give a row back to the relay's claim (a handed-off row whose destination is not taking messages)."""
        return (
            update(self.outbox)
            .where(self.outbox.c.id == bindparam("row_id"), self.outbox.c.status == PENDING)
            .values(lease_until=None)
        )

    @cached_property
    def settle(self) -> Any:
        """Record a message's outcome, or its next attempt; only a row still pending is the relay's to update
        (a supervisor may have changed it meanwhile)."""
        outbox = self.outbox
        # A retry sets its next time; a final outcome (due_at None) keeps the row's own.
        next_attempt = func.coalesce(bindparam("due_at", type_=UTCDateTime), outbox.c.next_attempt_at)
        return (
            update(outbox)
            .where(outbox.c.id == bindparam("row_id"), outbox.c.status == PENDING)
            .values(
                status=bindparam("new_status"),
                attempts=bindparam("new_attempts"),
                lease_until=None,
                next_attempt_at=next_attempt,
                delivered_at=bindparam("delivered"),
                last_error=bindparam("error"),
                last_status_code=bindparam("status_code"),
            )
        )


def messaging_tables(metadata: MetaData) -> MessagingTables:
    """Add the outbox and inbox tables to a service's metadata."""
    outbox = Table(
        "outbox_messages",
        metadata,
        Column("id", Integer, primary_key=True, autoincrement=True),
        Column("message_id", String(64), nullable=False, unique=True),
        Column("destination", String(64), nullable=False),
        Column("path", String(255), nullable=False),
        Column("kind", String(64), nullable=False),
        Column("payload", Text, nullable=False),
        Column("priority", Integer, nullable=False, server_default="0"),
        # Rows with the same key are delivered one at a time, oldest first (None: no order to keep).
        Column("ordering_key", String(128)),
        Column("traceparent", String(64)),
        Column("status", String(16), nullable=False, server_default=PENDING),
        Column("attempts", Integer, nullable=False, server_default="0"),
        Column("next_attempt_at", UTCDateTime, nullable=False),
        Column("lease_until", UTCDateTime),
        Column("last_error", Text),
        Column("last_status_code", Integer),
        Column("created_at", UTCDateTime, nullable=False),
        Column("delivered_at", UTCDateTime),
        Index("ix_outbox_messages_due", "status", "next_attempt_at"),
        Index("ix_outbox_messages_ordering", "ordering_key", "status"),
    )
    inbox = Table(
        "inbox_messages",
        metadata,
        Column("message_id", String(128), primary_key=True),
        Column("source", String(64), nullable=False),
        Column("kind", String(64), nullable=False),
        Column("received_at", UTCDateTime, nullable=False),
    )
    return MessagingTables(outbox, inbox)


async def enqueue(
    session: AsyncSession,
    tables: MessagingTables,
    message: Message,
    payload: BaseModel,
    *,
    path_names: dict[str, str] | None = None,
    path: str | None = None,
    precedence: Precedence = Precedence.ORDINARY,
    message_id: str | None = None,
    not_before: datetime | None = None,
    ordering_key: str | None = None,
) -> str:
    """Write a message of the catalogue to the outbox inside the caller's transaction; returns its id (the
    idempotency key). The payload must be the message's model; `path_names` fill the path's template, and
    `path` replaces it where the receiver named its own (a webhook's callback address).

    `not_before` schedules a delivery for later (the simulated meldkamer's dispatcher script uses it).
    `ordering_key`: this message goes out only once every earlier one with the same key is settled
    (delivered, dead-lettered or cancelled).
    """
    if not isinstance(payload, message.model):
        raise TypeError(
            f"{message.kind} to {message.destination} carries a {message.model.__name__}, "
            f"not a {type(payload).__name__}"
        )
    now = utcnow()
    message_id = message_id or str(uuid.uuid4())
    # Handed off: a running relay in this process sends the row straight after the commit, so it is written
    # leased to that relay, and no claim (a write transaction, plus a query for what is due next) is needed.
    # A row that must wait (its turn behind an ordering key, or a time) goes the relay's ordinary way. If this
    # process dies before sending, the lease runs out and any relay takes the row as usual.
    lease = session.info.get(HANDOFF_LEASE)
    lease_until = (
        now + timedelta(seconds=lease) if lease is not None and ordering_key is None and not_before is None else None
    )
    hand_off = lease_until is not None
    row = {
        "message_id": message_id,
        "destination": str(message.destination),
        "path": path or message.path_for(**(path_names or {})),
        "kind": message.kind,
        "payload": json.dumps(payload.model_dump(mode="json"), separators=(",", ":")),
        "priority": int(precedence),
        "ordering_key": ordering_key,
        "traceparent": current_traceparent(),  # the delivery continues the trace that wrote the message
        "status": PENDING,
        "attempts": 0,
        "next_attempt_at": not_before or now,
        "lease_until": lease_until,
        "created_at": now,
    }
    result = await session.execute(tables.add_message, row)
    if hand_off:
        # execute() is typed to return a plain Result; an INSERT's is a CursorResult, which has the key.
        row["id"] = result.inserted_primary_key[0]  # type: ignore[attr-defined]
        session.info.setdefault(OUTBOX_HANDED_OFF, []).append(row)
    else:
        session.info[OUTBOX_WRITTEN] = True
    return message_id


def _in_turn(outbox: Table) -> Any:
    """A row whose ordering key has no earlier row still pending (in flight or waiting to be retried)."""
    earlier = outbox.alias("earlier")
    return or_(
        outbox.c.ordering_key.is_(None),
        ~exists().where(
            earlier.c.ordering_key == outbox.c.ordering_key, earlier.c.status == PENDING, earlier.c.id < outbox.c.id
        ),
    )


async def first_delivery(
    session: AsyncSession, tables: MessagingTables, *, message: Message, message_id: str, source: str
) -> bool:
    """Record a received message of the catalogue; False when it was received before (then apply nothing).

    Call it in the same transaction as the message's effect: the record and the effect commit together.
    """
    dialect = session.bind.dialect.name if session.bind is not None else "sqlite"
    result = await session.execute(
        tables.record_receipt(dialect),
        {"message_id": f"{source}:{message_id}", "source": source, "kind": message.kind, "received_at": utcnow()},
    )
    return bool(rowcount(result))


class Destination(Protocol):
    """Where messages for one destination name go, and how a request to it is authenticated."""

    base_url: str

    def headers_for(self, body: bytes, message_id: str) -> dict[str, str]: ...


@dataclass
class Outcome:
    """What a send came to, given to the message kind's handler inside the transaction that records it."""

    delivered: bool
    status_code: int | None
    body: Any
    reason: str


ResultHandler = Callable[[AsyncSession, Mapping[str, Any], Outcome], Awaitable[None]]


def parse_retry_after(value: str | None) -> float | None:
    """Seconds to wait from a `Retry-After` header (delta-seconds or HTTP date)."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    with contextlib.suppress(TypeError, ValueError):
        when = email.utils.parsedate_to_datetime(value)
        return max(0.0, (when - utcnow()).total_seconds())
    return None


def full_jitter(attempt: int, base: float, cap: float) -> float:
    """Exponential backoff with full jitter: uniform(0, min(cap, base * 2**attempt))."""
    return random.uniform(0, min(cap, base * 2 ** min(attempt, 30)))


@dataclass
class RelayConfig:
    poll_seconds: float = 2.0
    backoff_base: float = 0.5
    backoff_cap: float = 60.0
    max_attempts: int = 40
    lease_seconds: float = 30.0
    batch_size: int = 32
    concurrency: int = 8
    request_timeout: float = 10.0
    breaker_threshold: int = 5
    breaker_cooldown: float = 5.0


@dataclass
class _Stats:
    delivered: int = 0
    retried: int = 0
    dead: int = 0


class Relay(BackgroundLoop):
    """Delivers outbox rows to their destinations. One per process; safe with several processes."""

    name = "outbox-relay"

    def __init__(
        self,
        db: Database,
        tables: MessagingTables,
        http: httpx.AsyncClient,
        destinations: dict[str, Destination],
        config: RelayConfig | None = None,
        handlers: dict[str, ResultHandler] | None = None,
        attempt_handlers: dict[str, ResultHandler] | None = None,
        shared: SharedState | None = None,
    ) -> None:
        super().__init__()
        self.db = db
        self.tables = tables
        self.http = http
        self.destinations = destinations
        self.config = config or RelayConfig()
        self.handlers = handlers or {}
        # Called in the transaction that schedules a retry: the message went out but has no answer yet.
        self.attempt_handlers = attempt_handlers or {}
        # A circuit per destination (opens after `breaker_threshold` consecutive failures, lets one probe through
        # after `breaker_cooldown`), kept in the shared state so that all replicas agree. While it is open nothing
        # for that destination is claimed: its messages wait in the outbox, never dropped.
        self.shared = shared or SharedState()
        self.circuits = {name: CircuitView() for name in destinations}  # as last read; refreshed at each claim
        self.stats = _Stats()
        self.poll_seconds = self.config.poll_seconds
        self._in_flight: set[asyncio.Task[None]] = set()
        self._semaphore = asyncio.Semaphore(self.config.concurrency)
        db.on_outbox_commit(self.wake)

    def start(self) -> None:
        super().start()
        self.db.hand_off_to(self._take_handed_off, self.config.lease_seconds)

    async def stop(self) -> None:
        self.db.hand_off_to(None)
        await super().stop()
        for task in list(self._in_flight):
            task.cancel()
        if self._in_flight:
            await asyncio.gather(*self._in_flight, return_exceptions=True)

    async def idle_seconds(self) -> float:
        """Sleep until the next scheduled message is due, at most one poll interval."""
        # Leased rows are in flight, and so are the rows waiting behind them (same ordering key): their
        # sender wakes this loop when it is done.
        async with self.db.sessions() as session:
            next_due = (await session.execute(self.tables.next_due, {"now": utcnow()})).scalar()
        if next_due is None:
            return self.config.poll_seconds
        return min(self.config.poll_seconds, max(0.01, (next_due - utcnow()).total_seconds()))

    async def run_once(self) -> int:
        """Claim what is due and send it; returns how many messages were claimed."""
        rows = await self._claim()
        for row in rows:
            await self._semaphore.acquire()
            task = asyncio.create_task(self._deliver(row))
            self._in_flight.add(task)
            task.add_done_callback(self._in_flight.discard)
            task.add_done_callback(self._delivery_done)
        return len(rows)

    def more_waiting(self, done: int) -> bool:
        # A pass claims everything due unless it hit the batch size; new rows wake the loop on commit.
        return done >= self.config.batch_size

    def _delivery_done(self, _task: asyncio.Task[None]) -> None:
        self._semaphore.release()

    def _take_handed_off(self, rows: list[dict[str, Any]]) -> None:
        """Rows just committed, already leased to this relay (`enqueue`): send them now."""
        if self._stopping:
            return  # their lease runs out and a relay takes them then
        for row in rows:
            task = asyncio.create_task(self._deliver_handed_off(row))
            self._in_flight.add(task)
            task.add_done_callback(self._in_flight.discard)

    async def _deliver_handed_off(self, row: Mapping[str, Any]) -> None:
        circuit = self.circuits.get(row["destination"])
        if circuit is not None and circuit.state != "closed":
            # The destination is down or being probed: the claim decides when this row may go.
            try:
                async with self.db.transaction() as session:
                    await session.execute(self.tables.unlease, {"row_id": row["id"]})
            except Exception:  # the database is busy: the lease runs out instead
                log.warning("a handed-off message waits for its lease", extra={"message_id": row["message_id"]})
            self.wake()
            return
        if row["priority"] > Precedence.ORDINARY:  # urgent: never behind ordinary sends waiting for a slot
            await self._deliver(row)
            return
        async with self._semaphore:
            await self._deliver(row)

    async def _claim(self) -> list[dict[str, Any]]:
        blocked, probes = [], []
        for name, circuit in (await self.circuit_views()).items():
            if circuit.state == "open" or (circuit.state == "half_open" and circuit.probe_taken):
                blocked.append(name)
            elif circuit.state == "half_open":
                probes.append(name)
        now = utcnow()
        claimed: list[dict[str, Any]] = []
        lock_rows = not self.db.is_sqlite
        async with self.db.transaction() as session:
            normal = self.tables.claimable(self.config.batch_size, lock_rows)
            ids = list((await session.execute(normal, {"now": now, "blocked": blocked + probes})).scalars())
            for name in probes:  # one message per half-open destination
                probe = self.tables.claimable(1, lock_rows, probe=True)
                probe_ids = list((await session.execute(probe, {"now": now, "destination": name})).scalars())
                # Of all replicas, the one that takes the probe sends it; its outcome frees the probe again.
                if probe_ids and await self.shared.take_probe(name, self.config.lease_seconds):
                    ids += probe_ids
            if ids:
                until = now + timedelta(seconds=self.config.lease_seconds)
                result = await session.execute(self.tables.lease, {"ids": ids, "until": until})
                # RETURNING keeps no order: urgent first, then oldest, as claimed.
                # Plain dicts, as the handed-off rows are.
                claimed = sorted((row._asdict() for row in result), key=lambda row: (-row["priority"], row["id"]))
        return claimed

    async def _deliver(self, row: Mapping[str, Any]) -> None:
        try:
            # A span of the trace that wrote the message: the request carries its `traceparent` (httpx's
            # instrumentation), and what the result handler enqueues belongs to the same trace.
            with continue_trace(row["traceparent"], f"outbox deliver {row['kind']}", SpanKind.PRODUCER):
                await self._send(row)
        except asyncio.CancelledError:
            raise
        except Exception:
            # Most likely the database is busy (a locked SQLite file, a full pool): the outcome could not be
            # recorded. Nothing is lost: the row stays leased until the lease runs out, then is sent again
            # (the receiver's inbox makes a second delivery harmless).
            log.exception(
                "outbox delivery could not be recorded; it is retried after its lease",
                extra={"message_id": row["message_id"], "destination": row["destination"]},
            )

    async def _send(self, row: Mapping[str, Any]) -> None:
        destination = self.destinations.get(row["destination"])
        if destination is None:
            await self._finish(row, Outcome(False, None, None, f"unknown destination {row['destination']}"))
            return
        body = row["payload"].encode()
        headers = {
            "content-type": "application/json",
            "idempotency-key": row["message_id"],
            "x-message-kind": row["kind"],
            **destination.headers_for(body, row["message_id"]),
        }
        url = destination.base_url.rstrip("/") + row["path"]
        try:
            response = await self.http.post(url, content=body, headers=headers, timeout=self.config.request_timeout)
        except httpx.HTTPError as exc:
            await self._destination_failed(row["destination"])
            await self._retry(row, None, f"transport error: {type(exc).__name__}: {exc}", None)
            return
        retry_after = parse_retry_after(response.headers.get("retry-after"))
        unavailable = response.status_code >= 500 or response.status_code in (408, 429)
        if not unavailable:  # it answers (it may still refuse this one message): if it was down, it is back
            await self._destination_answered(row["destination"])
        if response.status_code < 300:
            await self._finish(row, Outcome(True, response.status_code, _json_or_text(response), "delivered"))
        elif unavailable:
            await self._destination_failed(row["destination"])
            await self._retry(
                row, response.status_code, f"HTTP {response.status_code}: {response.text[:500]}", retry_after
            )
        elif response.status_code == 409:
            # The receiver is still processing an earlier delivery of this message: ask again later.
            await self._retry(row, 409, "HTTP 409: still processing", retry_after)
        else:  # the destination is up; it refused this one message
            await self._finish(
                row,
                Outcome(
                    False,
                    response.status_code,
                    _json_or_text(response),
                    f"HTTP {response.status_code}: {response.text[:500]}",
                ),
            )

    async def _destination_failed(self, destination: str) -> None:
        await self.shared.circuit_failure(destination, self.config.breaker_threshold, self.config.breaker_cooldown)
        self.circuits[destination] = await self.shared.read_circuit(destination, self.config.breaker_cooldown)

    async def _destination_answered(self, destination: str) -> None:
        last_seen = self.circuits[destination]
        if last_seen.state == "closed" and last_seen.failures == 0:
            return  # nothing to reset (as of the last claim): no round trip to the shared state per delivery
        self.circuits[destination] = CircuitView()
        if await self.shared.circuit_success(destination):
            await self._release_backlog(destination)

    async def _release_backlog(self, destination: str) -> None:
        """A destination is back after an outage: what waited it out is due now, so the claim order (urgent
        first, then oldest) decides what goes next. Left alone, each message would come due at the jittered end
        of its own backoff, which after a long outage scatters urgent work among everything else."""
        outbox, now = self.tables.outbox, utcnow()
        async with self.db.transaction() as session:
            result = await session.execute(
                update(outbox)
                # attempts > 0: only what failed; messages scheduled for later on purpose keep their time.
                .where(
                    outbox.c.destination == destination,
                    outbox.c.status == PENDING,
                    outbox.c.attempts > 0,
                    outbox.c.next_attempt_at > now,
                )
                .values(next_attempt_at=now)
            )
        released = rowcount(result)
        if released:
            log.info(
                "destination recovered: backlog released", extra={"destination": destination, "messages": released}
            )
            self.wake()

    async def _retry(self, row: Mapping[str, Any], status: int | None, reason: str, retry_after: float | None) -> None:
        attempts = row["attempts"] + 1
        if attempts >= self.config.max_attempts:
            await self._finish(
                row, Outcome(False, status, None, f"gave up after {attempts} attempts: {reason}"), attempts=attempts
            )
            return
        delay = full_jitter(attempts, self.config.backoff_base, self.config.backoff_cap)
        if retry_after is not None:
            delay = max(delay, min(retry_after, self.config.backoff_cap * 10))
        self.stats.retried += 1
        log.info(
            "outbox retry",
            extra={
                "message_id": row["message_id"],
                "destination": row["destination"],
                "attempt": attempts,
                "delay_s": round(delay, 3),
                "reason": reason[:200],
            },
        )
        async with self.db.transaction() as session:
            await session.execute(
                self.tables.settle,
                {
                    "row_id": row["id"],
                    "new_status": PENDING,
                    "new_attempts": attempts,
                    "error": reason,
                    "due_at": utcnow() + timedelta(seconds=delay),
                    "delivered": None,
                    "status_code": status,
                },
            )
            attempt_handler = self.attempt_handlers.get(row["kind"])
            if attempt_handler is not None:
                await attempt_handler(session, row, Outcome(False, status, None, reason))
        self.wake()  # the loop works out when this row is due again (it may be sooner than the next poll)

    async def _finish(self, row: Mapping[str, Any], outcome: Outcome, attempts: int | None = None) -> None:
        status = DELIVERED if outcome.delivered else DEAD
        await self._record(row, outcome, status, attempts)
        if row["ordering_key"] is not None:
            self.wake()  # the next message with its key may go now
        if outcome.delivered:
            self.stats.delivered += 1
        else:
            self.stats.dead += 1
            log.warning(
                "outbox message dead-lettered",
                extra={
                    "message_id": row["message_id"],
                    "destination": row["destination"],
                    "reason": outcome.reason[:300],
                },
            )

    async def _record(self, row: Mapping[str, Any], outcome: Outcome, status: str, attempts: int | None) -> None:
        async with self.db.transaction() as session:
            result = await session.execute(
                self.tables.settle,
                {
                    "row_id": row["id"],
                    "new_status": status,
                    "new_attempts": attempts or row["attempts"] + 1,
                    "due_at": None,
                    "delivered": utcnow() if outcome.delivered else None,
                    "error": None if outcome.delivered else outcome.reason,
                    "status_code": outcome.status_code,
                },
            )
            handler = self.handlers.get(row["kind"])
            if handler is not None and rowcount(result):
                await handler(session, row, outcome)

    async def circuit_views(self) -> dict[str, CircuitView]:
        """Each destination's circuit as the shared state has it now (and remembered for the next sends)."""
        for name in self.destinations:
            self.circuits[name] = await self.shared.read_circuit(name, self.config.breaker_cooldown)
        return self.circuits

    async def circuit_states(self) -> dict[str, dict[str, Any]]:
        return {
            name: {"state": view.state, "consecutive_failures": view.failures}
            for name, view in (await self.circuit_views()).items()
        }


async def cancel_pending(session: AsyncSession, tables: MessagingTables, message_ids: list[str]) -> int:
    """Withdraw messages that have not been delivered (their news no longer holds), in the caller's
    transaction; returns how many were cancelled. One attempt already in flight may still arrive, but it is
    never retried: the relay only records outcomes of rows that are still pending."""
    if not message_ids:
        return 0
    result = await session.execute(
        update(tables.outbox)
        .where(tables.outbox.c.message_id.in_(message_ids), tables.outbox.c.status == PENDING)
        .values(status=CANCELLED)
    )
    return rowcount(result)


async def cancel_unsent(session: AsyncSession, tables: MessagingTables, message_id: str) -> bool:
    """Withdraw a message that has never been tried (so its destination cannot have it), in the caller's
    transaction; False when it has gone out or is going out now."""
    result = await session.execute(
        update(tables.outbox)
        .where(
            tables.outbox.c.message_id == message_id,
            tables.outbox.c.status == PENDING,
            tables.outbox.c.attempts == 0,
            or_(tables.outbox.c.lease_until.is_(None), tables.outbox.c.lease_until < utcnow()),
        )
        .values(status=CANCELLED)
    )
    return bool(rowcount(result))


async def replay_dead_letter(db: Database, tables: MessagingTables, message_id: str) -> bool:
    """Put a dead-lettered message back in the queue with fresh attempts; False if there is no such letter."""
    async with db.transaction() as session:
        result = await session.execute(
            update(tables.outbox)
            .where(tables.outbox.c.message_id == message_id, tables.outbox.c.status == DEAD)
            .values(status=PENDING, attempts=0, next_attempt_at=utcnow(), lease_until=None)
        )
        session.info[OUTBOX_WRITTEN] = True
        return bool(rowcount(result))


async def outbox_counts(db: Database, tables: MessagingTables) -> dict[str, int]:
    async with db.sessions() as session:
        rows = await session.execute(select(tables.outbox.c.status, func.count()).group_by(tables.outbox.c.status))
        return {status: count for status, count in rows.all()}


def _json_or_text(response: httpx.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return response.text
