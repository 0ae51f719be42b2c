"""Faults the simulated meldkamer can show, set by settings or at run time through the admin endpoint.

Errors can happen before the request is handled, or after it (the incident is stored, but the answer is an
error): the second kind is what tests that the bridge never makes a second incident.
"""

from __future__ import annotations

import asyncio
import random
import time
from dataclasses import dataclass, field
from typing import Annotated, Literal

from pydantic import BaseModel, Field

from burgermelding_shared.errors import ServiceError

# The statuses a simulated fault answers with: what a control room's gateway gives when it is overloaded or broken.
# The operations that can fail document each of them, so that a client built from the document expects them.
FaultStatus = Literal[429, 500, 502, 503]
FAULT_STATUSES: tuple[int, ...] = (429, 500, 502, 503)


class Faults(BaseModel):
    latency_ms: float = Field(0, ge=0, le=60_000, description="Added to every request for service or update.")
    error_rate: float = Field(0, ge=0, le=1, description="Share of requests answered with an error.")
    error_statuses: list[FaultStatus] = Field([500, 503, 429], description="Errors to pick from.")
    retry_after_seconds: int = Field(1, ge=0, le=3600, description="Retry-After sent with 429 and 503.")
    fail_after_commit: float = Field(
        0.5, ge=0, le=1, description="Share of errors that happen after the incident was stored."
    )
    timeout_rate: float = Field(0, ge=0, le=1, description="Share of requests that hang (the client times out).")
    timeout_seconds: float = Field(15, ge=0, le=600)
    # Pairs as two-number lists, not tuples: OpenAPI 3.1 has no schema for a tuple that generators can use.
    outage_windows: list[Annotated[list[float], Field(min_length=2, max_length=2)]] = Field(
        [], description="[seconds after start, duration]: whole outages, answered with 503."
    )
    duplicate_callback_rate: float = Field(0, ge=0, le=1, description="Share of callbacks sent twice.")
    out_of_order_jitter_seconds: float = Field(
        0, ge=0, le=600, description="Random extra delay per callback, so later ones may arrive first."
    )


def new_seed() -> int:
    return random.SystemRandom().randrange(2**32)


@dataclass
class FaultState:
    """The faults in force and the one generator every random fault is drawn from (which request fails, hangs or
    fails after its commit, which callback is sent twice or late). The same `seed` makes the same draws: with
    the same faults and the same requests in the same order, a run's faults come back (`fault_seed`)."""

    faults: Faults
    seed: int = field(default_factory=new_seed)
    started: float = field(default_factory=time.monotonic)
    outage_until: float = 0.0
    rng: random.Random = field(init=False)

    def __post_init__(self) -> None:
        self.rng = random.Random(self.seed)

    def in_outage(self) -> float:
        """Seconds of outage left now (0 if none)."""
        now = time.monotonic()
        left = max(0.0, self.outage_until - now)
        elapsed = now - self.started
        for start, duration in self.faults.outage_windows:
            if start <= elapsed < start + duration:
                left = max(left, start + duration - elapsed)
        return left

    def _error(self, status: int) -> ServiceError:
        headers = {"Retry-After": str(self.faults.retry_after_seconds)} if status in (429, 503) else None
        return ServiceError(
            status,
            "injected_fault",
            f"simulated meldkamer fault ({status})",
            detail_nl=f"gesimuleerde storing van de meldkamer ({status})",
            headers=headers,
        )

    async def before(self) -> ServiceError | None:
        """Apply the faults that come before handling; returns an error to raise after handling, if any."""
        outage = self.in_outage()
        if outage > 0:
            raise ServiceError(
                503,
                "outage",
                "the meldkamer is unavailable",
                detail_nl="de meldkamer is niet bereikbaar",
                headers={"Retry-After": str(max(1, int(outage)))},
            )
        if self.faults.latency_ms:
            await asyncio.sleep(self.faults.latency_ms / 1000)
        if self.rng.random() < self.faults.timeout_rate:
            await asyncio.sleep(self.faults.timeout_seconds)
        if self.rng.random() < self.faults.error_rate:
            error = self._error(self.rng.choice(self.faults.error_statuses))
            if self.rng.random() < self.faults.fail_after_commit:
                return error
            raise error
        return None

    def callback_delay(self) -> float:
        return self.rng.uniform(0, self.faults.out_of_order_jitter_seconds)

    def duplicate_callback(self) -> bool:
        return self.rng.random() < self.faults.duplicate_callback_rate
