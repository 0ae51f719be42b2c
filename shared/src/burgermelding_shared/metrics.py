"""Prometheus metrics of one service: `/metrics` in the text format.

Three kinds, each from the place that knows it: request latency by route and every error answered (from the
access-log middleware and the error renderer, so no route has to remember), counters a service's own code
increments, and gauges read at each scrape from the database, which every replica shares (outbox depth and age,
dead letters, the verification backlog): those are the same whichever replica is scraped, so the alerts take
their `max`. So is the circuit state when the replicas share it in Redis; without Redis each has its own.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from sqlalchemy import case, func, select

from burgermelding_shared.messaging import DEAD, PENDING, Precedence
from burgermelding_shared.timeutil import utcnow

if TYPE_CHECKING:
    from burgermelding_shared.app import Runtime

Scraper = Callable[["Runtime", "Metrics"], Awaitable[None]]
CIRCUIT_STATES = {"closed": 0, "half_open": 1, "open": 2}
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


class Metrics:
    """A service's registry (one per app, so that several apps in one process keep theirs apart)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.request_seconds = Histogram(
            "bm_http_request_duration_seconds",
            "Time to answer a request, by route template",
            ["route", "method", "status"],
            registry=self.registry,
            buckets=LATENCY_BUCKETS,
        )
        self.problems = Counter(
            "bm_http_problems",
            "Error responses (problem details) by route and machine-readable error code; on "
            "POST /v1/reports these are the reports refused, by reason",
            ["route", "method", "status", "error"],
            registry=self.registry,
        )
        self.scrapers: list[Scraper] = [outbox_scraper, circuit_scraper]
        self._made: dict[str, Any] = {}

    def gauge(self, name: str, documentation: str, labels: Sequence[str] = ()) -> Gauge:
        if name not in self._made:
            self._made[name] = Gauge(name, documentation, labels, registry=self.registry)
        return self._made[name]

    def counter(self, name: str, documentation: str, labels: Sequence[str] = ()) -> Counter:
        if name not in self._made:
            self._made[name] = Counter(name, documentation, labels, registry=self.registry)
        return self._made[name]

    async def scrape(self, runtime: Runtime) -> bytes:
        for scraper in self.scrapers:
            await scraper(runtime, self)
        return generate_latest(self.registry)


def age_seconds(oldest: datetime | None, now: datetime) -> float:
    if oldest is None:
        return 0.0
    if oldest.tzinfo is None:  # SQLite hands back naive UTC
        oldest = oldest.replace(tzinfo=now.tzinfo)
    return max(0.0, (now - oldest).total_seconds())


async def outbox_scraper(runtime: Runtime, metrics: Metrics) -> None:
    """Outbox depth, oldest waiting message and dead letters per destination (urgent ones apart: an urgent
    request dead-lettered must wake someone)."""
    outbox = runtime.messaging.outbox
    async with runtime.db.sessions() as session:
        # How long a message has waited: one that was tried and failed, since it was written; one never tried,
        # since it was due (a meldkamer's scripted callback is written long before its moment).
        tried = outbox.c.attempts > 0
        waiting = (
            await session.execute(
                select(
                    outbox.c.destination,
                    func.count(),
                    func.min(case((tried, outbox.c.created_at))),
                    func.min(case((~tried, outbox.c.next_attempt_at))),
                )
                .where(outbox.c.status == PENDING)
                .group_by(outbox.c.destination)
            )
        ).all()
        dead = (
            await session.execute(
                select(outbox.c.destination, outbox.c.priority, func.count())
                .where(outbox.c.status == DEAD)
                .group_by(outbox.c.destination, outbox.c.priority)
            )
        ).all()
    now = utcnow()
    depth = metrics.gauge("bm_outbox_pending_messages", "Messages waiting in the outbox", ["destination"])
    oldest = metrics.gauge(
        "bm_outbox_oldest_pending_age_seconds",
        "How long the longest-waiting message has waited (since written if it was tried, since due if not)",
        ["destination"],
    )
    letters = metrics.gauge(
        "bm_outbox_dead_letters", "Dead-lettered messages (kept, replayable)", ["destination", "urgent"]
    )
    for gauge in (depth, oldest, letters):
        gauge.clear()
    for destination in runtime.relay.destinations:
        depth.labels(destination).set(0)
        oldest.labels(destination).set(0)
        for urgent in ("true", "false"):
            letters.labels(destination, urgent).set(0)
    for destination, count, first_tried, first_due in waiting:
        depth.labels(destination).set(count)
        oldest.labels(destination).set(max(age_seconds(first_tried, now), age_seconds(first_due, now)))
    for destination, priority, count in dead:
        letters.labels(destination, "true" if priority >= Precedence.URGENT else "false").inc(count)


async def circuit_scraper(runtime: Runtime, metrics: Metrics) -> None:
    circuit = metrics.gauge(
        "bm_circuit_state",
        "Circuit to a destination (shared by the replicas when they share "
        "state in Redis, else this replica's own): 0 closed, 1 half-open "
        "(one probe allowed), 2 open (nothing sent)",
        ["destination"],
    )
    circuit.clear()
    states = await runtime.relay.circuit_states()
    for destination in runtime.relay.destinations:
        circuit.labels(destination).set(CIRCUIT_STATES[states.get(destination, {}).get("state", "closed")])
