"""Messaging benchmark: CPU per message of the outbox, the relay and the inbox, the path every report takes
about a dozen times between the services.

Prints a readable table and one JSON line. Not a test: figures depend on the machine.

    uv run python bench/messaging.py [--messages 2000] [--db sqlite|postgresql]

Measured in this process, on a real database (a SQLite file in a temporary folder, or a scratch database on the
PostgreSQL at 127.0.0.1:5432): `enqueue` of one message in its own transaction (as a request that changes
something and tells another service does); the relay's claim, send and record of each of them, against an
in-process HTTP transport that answers 200 at once (so HTTP's own cost is not in this figure; the throughput
bench has it); and the receiver's `first_delivery` record in its own transaction. Then the same number of
messages one at a time, as they mostly travel at the suite's rates (each delivered before the next is written),
without an ordering key: claimed by the relay's loop, and handed to the running relay on commit (no claim);
enqueue and delivery measured together. CPU time (process time), not wall time, per
message; the best of `--repeat` rounds, each on a fresh database (this machine is noisy).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
import uuid
from pathlib import Path

import httpx
from sqlalchemy import text

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from burgermelding_shared.catalogue import REPORT_EVENTS, Service
from burgermelding_shared.contracts import ReportEvents, TimelineEvent
from burgermelding_shared.db import Database, new_registry
from burgermelding_shared.messaging import Relay, RelayConfig, enqueue, first_delivery, messaging_tables
from burgermelding_shared.timeutil import utcnow

POSTGRES_ADMIN = "postgresql+asyncpg://postgres@127.0.0.1:5432/postgres"


class _Here:
    base_url = "http://receiver.test"

    def headers_for(self, body: bytes, message_id: str) -> dict[str, str]:
        return {}


async def _postgres_url(name: str) -> str:
    admin = Database(POSTGRES_ADMIN)
    async with admin.engine.connect() as conn:
        conn = await conn.execution_options(isolation_level="AUTOCOMMIT")
        await conn.execute(text(f'DROP DATABASE IF EXISTS "{name}"'))
        await conn.execute(text(f'CREATE DATABASE "{name}"'))
    await admin.dispose()
    return f"postgresql+asyncpg://postgres@127.0.0.1:5432/{name}"


async def run(messages: int, backend: str) -> dict[str, float]:
    folder = tempfile.mkdtemp(prefix="bm-bench-messaging-")
    url = (
        f"sqlite+aiosqlite:///{folder}/bench.db"
        if backend == "sqlite"
        else await _postgres_url(f"bm_bench_messaging_{uuid.uuid4().hex[:8]}")
    )
    registry = new_registry()
    tables = messaging_tables(registry.metadata)
    db = Database(url)
    async with db.engine.begin() as conn:
        await conn.run_sync(registry.metadata.create_all)

    def answer(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={"ok": True})

    http = httpx.AsyncClient(transport=httpx.MockTransport(answer))
    relay = Relay(db, tables, http, {Service.REPORT_INTAKE: _Here()}, RelayConfig(concurrency=8, batch_size=32))
    payload = ReportEvents(
        report_id="r",
        events=[TimelineEvent(event="forwarded", occurred_at=utcnow(), text_en="Sent on", text_nl="Doorgestuurd")],
    )

    start = time.process_time()
    for n in range(messages):
        async with db.transaction() as session:
            await enqueue(session, tables, REPORT_EVENTS, payload, ordering_key=f"incident:{n % 50}")
    enqueue_cpu = time.process_time() - start

    start = time.process_time()
    while relay.stats.delivered < messages:
        await relay.run_once()
        if relay._in_flight:
            await asyncio.wait(set(relay._in_flight))
    relay_cpu = time.process_time() - start

    start = time.process_time()
    for n in range(messages):
        async with db.transaction() as session:
            await first_delivery(session, tables, message=REPORT_EVENTS, message_id=str(n), source="bench")
    inbox_cpu = time.process_time() - start

    # One at a time, as messages mostly travel at the suite's rates: each is committed and delivered before the
    # next (the claims above take 32 rows each, which hides what a claim per message costs). Unkeyed, first
    # claimed by the relay's loop (woken on commit), then handed to the running relay on commit.
    relay.start()
    one_at_a_time = {}
    for mode in ("claim", "handoff"):
        if mode == "claim":
            db.hand_off_to(None)
        else:
            db.hand_off_to(relay._take_handed_off, relay.config.lease_seconds)
        delivered_before = relay.stats.delivered
        start = time.process_time()
        for n in range(messages):
            async with db.transaction() as session:
                await enqueue(session, tables, REPORT_EVENTS, payload)
            while relay.stats.delivered - delivered_before <= n:  # noqa: ASYNC110 (yield to the relay's tasks)
                await asyncio.sleep(0)
        one_at_a_time[mode] = time.process_time() - start
    await relay.stop()

    await http.aclose()
    await db.dispose()
    per = 1e6 / messages
    return {
        "enqueue_us": round(enqueue_cpu * per),
        "relay_us": round(relay_cpu * per),
        "inbox_us": round(inbox_cpu * per),
        "total_us": round((enqueue_cpu + relay_cpu + inbox_cpu) * per),
        "one_claimed_us": round(one_at_a_time["claim"] * per),
        "one_handed_off_us": round(one_at_a_time["handoff"] * per),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--messages", type=int, default=2000)
    parser.add_argument("--db", choices=["sqlite", "postgresql"], default="sqlite")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    rounds = [asyncio.run(run(args.messages, args.db)) for _ in range(args.repeat)]
    figures = {name: min(r[name] for r in rounds) for name in rounds[0] if name != "total_us"}
    figures["total_us"] = figures["enqueue_us"] + figures["relay_us"] + figures["inbox_us"]
    print(f"messaging on {args.db}, {args.messages} messages, CPU per message (best of {args.repeat}):")
    print(f"  enqueue (own transaction)        {figures['enqueue_us']:6d} us")
    print(f"  relay: claim, send, record       {figures['relay_us']:6d} us")
    print(f"  inbox record (own transaction)   {figures['inbox_us']:6d} us")
    print(f"  one message end to end           {figures['total_us']:6d} us")
    print("one at a time (each delivered before the next is written), enqueue + delivery:")
    print(f"  claimed by the relay's loop      {figures['one_claimed_us']:6d} us")
    print(f"  handed to the relay on commit    {figures['one_handed_off_us']:6d} us")
    print(
        json.dumps(
            {"benchmark": "messaging", "database": args.db, "messages": args.messages, "repeat": args.repeat, **figures}
        )
    )


if __name__ == "__main__":
    main()
