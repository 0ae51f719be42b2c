"""Outbox, relay, inbox and idempotency against a real database (SQLite file or PostgreSQL)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict
from sqlalchemy import MetaData, select

from burgermelding_shared import idempotency
from burgermelding_shared.catalogue import Message, Service
from burgermelding_shared.db import Database
from burgermelding_shared.errors import ServiceError
from burgermelding_shared.messaging import (
    DEAD,
    DELIVERED,
    Outcome,
    Precedence,
    Relay,
    RelayConfig,
    enqueue,
    first_delivery,
    messaging_tables,
    replay_dead_letter,
)
from burgermelding_shared.sharedstate import SharedState

metadata = MetaData()
tables = messaging_tables(metadata)
idem = idempotency.idempotency_table(metadata)


@dataclass
class Receiver:
    """A destination that answers from a script and records what reached it."""

    script: list[tuple[int, dict[str, str]]] = field(default_factory=list)
    received: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    keys: list[str] = field(default_factory=list)
    gate: asyncio.Event | None = None  # while set and not open, every request waits here (a peer that hangs)

    def app(self) -> FastAPI:
        app = FastAPI()

        @app.post("/inbox")
        async def inbox(request: Request) -> JSONResponse:
            self.keys.append(request.headers["idempotency-key"])
            if self.gate is not None:
                await self.gate.wait()
            status, headers = self.script.pop(0) if self.script else (200, {})
            if status < 300:
                self.received.append((request.headers["idempotency-key"], await request.json()))
            return JSONResponse({"ok": status < 300}, status_code=status, headers=headers)

        return app


@dataclass
class Dest:
    base_url: str = "http://receiver"

    def headers_for(self, body: bytes, message_id: str) -> dict[str, str]:
        return {}


@pytest.fixture
async def db(database_with: Callable[[str, MetaData], Awaitable[Database]]) -> Database:
    return await database_with("messaging", metadata)


async def make_relay(
    db: Database, receiver: Receiver, handlers: dict | None = None, shared: SharedState | None = None, **config: Any
) -> Relay:
    http = httpx.AsyncClient(transport=httpx.ASGITransport(app=receiver.app()))
    settings = {"poll_seconds": 3600.0, "backoff_base": 0.01, "backoff_cap": 0.05, **config}
    return Relay(db, tables, http, {"receiver": Dest()}, RelayConfig(**settings), handlers, shared=shared)


class Probe(BaseModel):
    model_config = ConfigDict(extra="allow")


# A message for the relay's own tests: to a test receiver, any payload.
PROBE = Message("test", Service.DISPATCH_BRIDGE, "receiver", "/inbox", Probe)  # type: ignore[arg-type]


async def send(db: Database, payload: dict[str, Any], **kwargs: Any) -> str:
    async with db.transaction() as session:
        return await enqueue(session, tables, PROBE, Probe(**payload), **kwargs)


async def status_of(db: Database, message_id: str) -> str:
    async with db.sessions() as session:
        return (
            await session.execute(select(tables.outbox.c.status).where(tables.outbox.c.message_id == message_id))
        ).scalar_one()


async def until(predicate: Callable[[], Any], limit_seconds: float = 20.0) -> None:
    """Wait for a condition; the timeout only bounds a broken run, it is not what the test measures."""
    deadline = asyncio.get_running_loop().time() + limit_seconds
    while not await predicate():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not reached")
        await asyncio.sleep(0.02)


async def test_commit_wakes_the_relay_and_the_message_arrives_once(db: Database) -> None:
    receiver = Receiver()
    relay = await make_relay(db, receiver)  # poll interval of an hour: only the commit hook can wake it
    relay.start()
    try:
        message_id = await send(db, {"n": 1})

        async def delivered() -> bool:
            return await status_of(db, message_id) == DELIVERED

        await until(delivered)
        assert receiver.received == [(message_id, {"n": 1})]
    finally:
        await relay.stop()


async def test_a_rolled_back_change_sends_nothing(db: Database) -> None:
    with pytest.raises(RuntimeError):
        async with db.transaction() as session:
            await enqueue(session, tables, PROBE, Probe())
            raise RuntimeError("the business change failed")
    async with db.sessions() as session:
        assert (await session.execute(select(tables.outbox))).all() == []


async def test_retries_5xx_and_429_with_the_same_key_then_delivers(db: Database) -> None:
    receiver = Receiver(script=[(503, {}), (429, {"Retry-After": "0"}), (500, {}), (200, {})])
    relay = await make_relay(db, receiver)
    message_id = await send(db, {"n": 2})
    for _ in range(20):
        await relay.run_once()
        await asyncio.gather(*relay._in_flight)
        if await status_of(db, message_id) == DELIVERED:
            break
        await asyncio.sleep(0.06)
    assert await status_of(db, message_id) == DELIVERED
    assert receiver.keys == [message_id] * 4  # one stable idempotency key across every retry
    assert relay.stats.retried == 3


async def test_other_4xx_is_dead_lettered_at_once_and_can_be_replayed(db: Database) -> None:
    receiver = Receiver(script=[(422, {}), (200, {})])
    outcomes: list[Outcome] = []

    async def handler(session: Any, row: Any, outcome: Outcome) -> None:
        outcomes.append(outcome)

    relay = await make_relay(db, receiver, handlers={"test": handler})
    message_id = await send(db, {"n": 3})
    await relay.run_once()
    await asyncio.gather(*relay._in_flight)
    assert await status_of(db, message_id) == DEAD
    assert outcomes[0].delivered is False and outcomes[0].status_code == 422
    assert await replay_dead_letter(db, tables, message_id)
    await relay.run_once()
    await asyncio.gather(*relay._in_flight)
    assert await status_of(db, message_id) == DELIVERED
    assert outcomes[1].delivered is True


async def test_urgent_messages_leave_first(db: Database) -> None:
    receiver = Receiver()
    relay = await make_relay(db, receiver, concurrency=1)
    for n in range(5):
        await send(db, {"n": n}, precedence=Precedence.ORDINARY)
    await send(db, {"n": "urgent"}, precedence=Precedence.URGENT)
    await relay.run_once()
    await asyncio.gather(*relay._in_flight)
    assert receiver.received[0][1] == {"n": "urgent"}


async def test_open_circuit_keeps_messages_queued(db: Database) -> None:
    receiver = Receiver(script=[(503, {})] * 3)
    relay = await make_relay(db, receiver, breaker_threshold=3, breaker_cooldown=3600, max_attempts=100)
    ids = [await send(db, {"n": n}) for n in range(3)]
    await relay.run_once()
    await asyncio.gather(*relay._in_flight)
    assert (await relay.circuit_states())["receiver"]["state"] == "open"
    later = await send(db, {"n": "later"})
    assert await relay.run_once() == 0  # nothing is claimed for an open destination...
    assert {await status_of(db, i) for i in [*ids, later]} == {"pending"}  # ...and nothing is dropped


async def test_replicas_sharing_redis_share_the_circuit_and_send_one_probe(
    db: Database, redis_url: tuple[str, str]
) -> None:
    url, prefix = redis_url
    receiver = Receiver(script=[(503, {"Retry-After": "60"})] * 3)
    states = [SharedState(url, f"{prefix}:bridge") for _ in range(2)]
    one, other = [
        await make_relay(db, receiver, shared=state, breaker_threshold=3, breaker_cooldown=0.5, max_attempts=100)
        for state in states
    ]
    try:
        # Three failures seen by one replica open the circuit for both.
        ids = [await send(db, {"n": n}) for n in range(3)]
        await one.run_once()
        await asyncio.gather(*one._in_flight)
        assert (await other.circuit_states())["receiver"] == {"state": "open", "consecutive_failures": 3}
        later = await send(db, {"n": "later"})
        assert await other.run_once() == 0 and receiver.keys == ids  # nothing claimed by the other replica
        # After the cooldown both replicas try to claim at once: exactly one probe goes out.
        await asyncio.sleep(0.6)
        assert (await other.circuit_states())["receiver"]["state"] == "half_open"
        claimed = await asyncio.gather(one.run_once(), other.run_once())
        assert sorted(claimed) == [0, 1]
        await asyncio.gather(*one._in_flight, *other._in_flight)
        assert len(receiver.keys) == 4 and receiver.keys[3] in [*ids, later]  # the one probe, nothing else
        # Its success closed the circuit for both, and the backlog that waited is due at once.
        assert (await one.circuit_states())["receiver"] == {"state": "closed", "consecutive_failures": 0}
        assert (await other.circuit_states())["receiver"]["state"] == "closed"
        for _ in range(2):
            await other.run_once()
            await asyncio.gather(*other._in_flight)
        assert {await status_of(db, i) for i in [*ids, later]} == {DELIVERED}
    finally:
        for state in states:
            await state.aclose()


async def test_redis_down_leaves_each_replica_its_own_circuit(db: Database) -> None:
    receiver = Receiver(script=[(503, {})] * 2)
    fell_back: list[str] = []
    relay = await make_relay(
        db,
        receiver,
        breaker_threshold=2,
        breaker_cooldown=3600,
        max_attempts=100,
        shared=SharedState("redis://127.0.0.1:1/0", "bm-test-down:bridge", on_fallback=fell_back.append),
    )
    ids = [await send(db, {"n": n}) for n in range(2)]
    await relay.run_once()
    await asyncio.gather(*relay._in_flight)
    # The circuit still works, in this replica's memory; nothing is lost or sent to the open circuit.
    assert (await relay.circuit_states())["receiver"]["state"] == "open" and "circuits" in fell_back
    later = await send(db, {"n": "later"})
    assert await relay.run_once() == 0
    assert {await status_of(db, i) for i in [*ids, later]} == {"pending"}
    await relay.shared.aclose()


async def test_inbox_takes_a_message_once(db: Database) -> None:
    async with db.transaction() as session:
        assert await first_delivery(session, tables, message=PROBE, message_id="m1", source="intake")
    async with db.transaction() as session:
        assert not await first_delivery(session, tables, message=PROBE, message_id="m1", source="intake")
        assert await first_delivery(session, tables, message=PROBE, message_id="m1", source="bridge")


async def test_idempotency_claim_replay_conflict_and_reuse(db: Database) -> None:
    assert await idempotency.claim(db, idem, "create", "key-00001", "fp-a") is None
    with pytest.raises(ServiceError) as err:  # the first is still running
        await idempotency.claim(db, idem, "create", "key-00001", "fp-a")
    assert err.value.status_code == 409
    async with db.transaction() as session:
        await idempotency.complete(session, idem, "create", "key-00001", idempotency.StoredResponse(202, {"id": "r1"}))
    replay = await idempotency.claim(db, idem, "create", "key-00001", "fp-a")
    assert replay is not None and replay.body == {"id": "r1"} and replay.status_code == 202
    with pytest.raises(ServiceError) as err:
        await idempotency.claim(db, idem, "create", "key-00001", "fp-b")
    assert err.value.status_code == 422
    # A failed request releases its claim so the client may retry.
    assert await idempotency.claim(db, idem, "create", "key-00002", "fp-c") is None
    await idempotency.release(db, idem, "create", "key-00002")
    assert await idempotency.claim(db, idem, "create", "key-00002", "fp-c") is None


async def test_a_stale_claim_is_taken_over_by_exactly_one_retry(db: Database, monkeypatch: pytest.MonkeyPatch) -> None:
    from contextlib import asynccontextmanager
    from datetime import timedelta

    from burgermelding_shared.timeutil import utcnow

    if db.is_sqlite:
        pytest.skip(
            "SQLite takes the write lock when a transaction begins: two retries cannot both read the "
            "stale claim before one of them changes it"
        )
    # The first try died holding its claim; long after, two retries of it arrive at once. Both read the stale
    # claim before either takes it over (each waits at a barrier after its read): the worst interleaving.
    async with db.transaction() as session:
        await session.execute(
            idem.insert().values(
                key=idempotency.stored_key("create", "stale-key-1"),
                fingerprint="fp",
                state="processing",
                created_at=utcnow() - idempotency.STALE_CLAIM - timedelta(1),
            )
        )
    both_read = asyncio.Barrier(2)
    transaction = db.transaction

    @asynccontextmanager
    async def reading_together() -> AsyncIterator[Any]:
        async with transaction() as session:
            execute = session.execute

            async def execute_then_wait(statement: Any, *args: Any, **kwargs: Any) -> Any:
                result = await execute(statement, *args, **kwargs)
                if getattr(statement, "is_select", False):
                    await asyncio.wait_for(both_read.wait(), 10)
                return result

            monkeypatch.setattr(session, "execute", execute_then_wait)
            yield session

    monkeypatch.setattr(db, "transaction", reading_together)
    outcomes = await asyncio.gather(
        *(idempotency.claim(db, idem, "create", "stale-key-1", "fp") for _ in range(2)), return_exceptions=True
    )
    assert outcomes.count(None) == 1, outcomes  # one takes the claim over and does the work...
    (refused,) = [o for o in outcomes if o is not None]
    assert isinstance(refused, ServiceError) and refused.error == "request_in_progress"  # ...the other waits


async def test_a_recovered_destination_gets_its_backlog_urgent_first_not_in_backoff_order(db: Database) -> None:
    from datetime import timedelta

    from burgermelding_shared.timeutil import utcnow

    # Down: three messages fail and are told to come back in a minute; the circuit opens.
    receiver = Receiver(script=[(503, {"Retry-After": "60"})] * 3)
    relay = await make_relay(db, receiver, concurrency=1, breaker_threshold=3, breaker_cooldown=0.2, max_attempts=100)
    await send(db, {"n": "normal-a"})
    await send(db, {"n": "normal-b"})
    await send(db, {"n": "urgent"}, precedence=Precedence.URGENT)
    scheduled = await send(db, {"n": "scheduled"}, not_before=utcnow() + timedelta(hours=1))
    await relay.run_once()
    await asyncio.gather(*relay._in_flight)
    assert (await relay.circuit_states())["receiver"]["state"] == "open" and receiver.received == []
    # Back: after the cooldown a new message is the probe; its success closes the circuit and releases the
    # backlog at once, which then leaves urgent first instead of waiting out its minute.
    await asyncio.sleep(0.25)
    await send(db, {"n": "probe"})
    for _ in range(3):
        await relay.run_once()
        await asyncio.gather(*relay._in_flight)
    assert [payload["n"] for _key, payload in receiver.received] == ["probe", "urgent", "normal-a", "normal-b"]
    assert (await relay.circuit_states())["receiver"]["state"] == "closed"
    assert await status_of(db, scheduled) == "pending"  # scheduled on purpose: keeps its time


async def test_one_ordering_key_goes_out_in_order_and_holds_up_nothing_else(db: Database) -> None:
    """An incident's request and its updates share a key: the update waits until the request is settled, even
    while the request is being retried; other keys and unkeyed messages go out meanwhile. The relay polls
    once an hour here, so the update can only have gone out because the request's delivery woke it."""
    attempts: list[tuple[str, int]] = []
    failures = {"request": 1}

    app = FastAPI()

    @app.post("/inbox")
    async def inbox(request: Request) -> JSONResponse:
        name = (await request.json())["n"]
        status = 503 if failures.get(name, 0) > 0 else 200
        failures[name] = failures.get(name, 0) - 1
        attempts.append((name, status))
        return JSONResponse({}, status_code=status)

    http = httpx.AsyncClient(transport=httpx.ASGITransport(app=app))
    relay = Relay(
        db, tables, http, {"receiver": Dest()}, RelayConfig(poll_seconds=3600.0, backoff_base=0.05, backoff_cap=0.1)
    )
    ids = {
        name: await send(db, {"n": name}, ordering_key=key)
        for name, key in [
            ("request", "incident:1"),
            ("update", "incident:1"),
            ("other", "incident:2"),
            ("unkeyed", None),
        ]
    }
    relay.start()
    try:

        async def all_delivered() -> bool:
            return {await status_of(db, i) for i in ids.values()} == {DELIVERED}

        await until(all_delivered)
    finally:
        await relay.stop()
    names = [name for name, _status in attempts]
    assert attempts[names.index("request")] == ("request", 503)
    assert names.index("update") > names.index("request", names.index("request") + 1)  # after the 200
    assert names.count("update") == 1  # never refused for coming too early
    assert {"other", "unkeyed"} <= set(names[:3])  # not held up by incident 1's retry


async def lease_of(db: Database, message_id: str) -> Any:
    async with db.sessions() as session:
        return (
            await session.execute(select(tables.outbox.c.lease_until).where(tables.outbox.c.message_id == message_id))
        ).scalar_one()


async def test_a_running_relay_is_handed_what_can_go_at_once_and_claims_only_what_must_wait(db: Database) -> None:
    """Unkeyed messages due now are written leased to the running relay and sent straight after their commit,
    without a claim; a message behind an ordering key or scheduled for later is left for the claim."""
    from datetime import timedelta

    from burgermelding_shared.timeutil import utcnow

    receiver = Receiver(gate=asyncio.Event())  # holds every delivery until the gate opens
    relay = await make_relay(db, receiver)  # polls once an hour: besides a hand-off, only a commit wakes a claim
    replica = await make_relay(db, Receiver())  # another process's relay: it claims only when asked to here

    async def write(n: Any, **kwargs: Any) -> tuple[str, Any]:
        """The message and its lease as its own transaction wrote it, before any claim could see it."""
        async with db.transaction() as session:
            message_id = await enqueue(session, tables, PROBE, Probe(n=n), **kwargs)
            lease = (
                await session.execute(
                    select(tables.outbox.c.lease_until).where(tables.outbox.c.message_id == message_id)
                )
            ).scalar_one()
        return message_id, lease

    relay.start()
    try:
        handed = [await write(n, precedence=Precedence.urgent_if(n == 0)) for n in range(3)]
        assert all(lease is not None for _id, lease in handed)  # leased to the running relay as they were written

        async def all_at_the_peer() -> bool:
            return sorted(receiver.keys) == sorted(i for i, _lease in handed)

        await until(all_at_the_peer)  # sent at once, each once; held there while the test looks
        assert await replica.run_once() == 0  # nothing to claim: each is the running relay's
        assert {await status_of(db, i) for i, _lease in handed} == {"pending"}

        later, later_lease = await write("later", not_before=utcnow() + timedelta(hours=1))
        keyed, keyed_lease = await write("keyed", ordering_key="incident:9")
        assert later_lease is None and keyed_lease is None  # left for the claim
        receiver.gate.set()

        async def delivered() -> bool:
            return {await status_of(db, i) for i in [*(i for i, _lease in handed), keyed]} == {DELIVERED}

        await until(delivered)  # the keyed one by a claim its commit woke, after the later one was written...
        assert await status_of(db, later) == "pending" and await lease_of(db, later) is None  # ...which it left
    finally:
        await relay.stop()
    assert sorted(str(payload["n"]) for _key, payload in receiver.received) == ["0", "1", "2", "keyed"]
    assert receiver.keys.count(keyed) == 1 and later not in receiver.keys


async def test_a_handed_off_message_whose_process_died_goes_out_when_its_lease_runs_out(db: Database) -> None:
    receiver = Receiver()
    relay = await make_relay(db, receiver)
    db.hand_off_to(lambda rows: None, 0.3)  # a relay that took the rows and died before sending them
    message_id = await send(db, {"n": "orphan"})
    db.hand_off_to(None)
    assert await lease_of(db, message_id) is not None
    assert await relay.run_once() == 0  # leased: nobody else sends it meanwhile
    await asyncio.sleep(0.35)
    assert await relay.run_once() == 1
    await asyncio.gather(*relay._in_flight)
    assert await status_of(db, message_id) == DELIVERED
    assert receiver.keys == [message_id]


async def test_a_handed_off_message_for_a_destination_that_is_down_waits_for_the_claim(db: Database) -> None:
    # Told to come back in a minute: no retry races the check below (an answer would close the circuit).
    receiver = Receiver(script=[(503, {"Retry-After": "60"})] * 2)
    relay = await make_relay(
        db, receiver, breaker_threshold=2, breaker_cooldown=3600, max_attempts=100, backoff_cap=10.0
    )
    relay.start()
    try:
        failing = [await send(db, {"n": n}) for n in range(2)]

        async def circuit_open() -> bool:
            return (await relay.circuit_states())["receiver"]["state"] == "open"

        await until(circuit_open)
        later = await send(db, {"n": "later"})

        async def given_back() -> bool:
            return await lease_of(db, later) is None

        await until(given_back)
        assert {await status_of(db, i) for i in [*failing, later]} == {"pending"}  # nothing dropped
        assert sorted(receiver.keys) == sorted(failing)  # and nothing sent to the open circuit
    finally:
        await relay.stop()


async def test_before_commit_gathers_a_transaction_into_one_message_and_fails_with_it(db: Database) -> None:
    from burgermelding_shared.db import before_commit

    async def finish(session: Any) -> None:
        await enqueue(session, tables, PROBE, Probe(n=session.info.pop("gathered")))

    async with db.transaction() as session:
        for n in range(3):
            session.info.setdefault("gathered", []).append(n)
            assert before_commit(session, "gather", finish) is (n == 0)  # registered once
    async with db.sessions() as session:
        payloads = (await session.execute(select(tables.outbox.c.payload))).scalars().all()
    assert payloads == ['{"n":[0,1,2]}']

    async def broken(session: Any) -> None:
        await enqueue(session, tables, PROBE, Probe())
        raise RuntimeError("cannot finish")

    with pytest.raises(RuntimeError):
        async with db.transaction() as session:
            before_commit(session, "broken", broken)
    async with db.sessions() as session:
        assert len((await session.execute(select(tables.outbox))).all()) == 1  # nothing of the failed one
        with pytest.raises(RuntimeError):  # a session nobody will commit this way cannot take the work
            before_commit(session, "lost", finish)
