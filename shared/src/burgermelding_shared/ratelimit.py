"""Rate limits that never keep an address.

Clients are told apart by an HMAC of their address under a random salt that lives only in this process's
memory and is replaced every day, so nothing that identifies a citizen is stored, logged, or comparable across
days. Buckets live in memory: with several replicas each enforces its own share (a deliberate trade-off: no
shared store of client keys). Refusals are a 429 with `Retry-After`.
"""

from __future__ import annotations

import hashlib
import hmac
import math
import secrets
import time
from dataclasses import dataclass, field

from burgermelding_shared.errors import ServiceError

MAX_KEYS = 100_000  # a flood of distinct keys cannot grow memory without bound


@dataclass
class _Bucket:
    tokens: float
    updated: float


@dataclass
class RateLimiter:
    """A token bucket per key: `capacity` requests at once, refilled at `capacity / per_seconds` a second."""

    capacity: int
    per_seconds: float
    buckets: dict[str, _Bucket] = field(default_factory=dict)

    def check(self, key: str, now: float | None = None) -> float:
        """0 if allowed (and counted), else the seconds to wait."""
        now = time.monotonic() if now is None else now
        rate = self.capacity / self.per_seconds
        bucket = self.buckets.get(key)
        if bucket is None:
            if len(self.buckets) >= MAX_KEYS:
                self._prune(now, rate)
            bucket = self.buckets[key] = _Bucket(float(self.capacity), now)
        bucket.tokens = min(self.capacity, bucket.tokens + (now - bucket.updated) * rate)
        bucket.updated = now
        if bucket.tokens >= 1:
            bucket.tokens -= 1
            return 0.0
        return (1 - bucket.tokens) / rate

    def peek(self, key: str, now: float | None = None) -> float:
        """Like `check` but counts nothing: 0 if a request would be allowed, else the seconds to wait."""
        bucket = self.buckets.get(key)
        if bucket is None:
            return 0.0
        now = time.monotonic() if now is None else now
        rate = self.capacity / self.per_seconds
        tokens = min(self.capacity, bucket.tokens + (now - bucket.updated) * rate)
        return 0.0 if tokens >= 1 else (1 - tokens) / rate

    def _prune(self, now: float, rate: float) -> None:
        full = [k for k, b in self.buckets.items() if b.tokens + (now - b.updated) * rate >= self.capacity]
        for key in full:
            del self.buckets[key]
        if len(self.buckets) >= MAX_KEYS:  # still full: drop the oldest half rather than grow
            for key in sorted(self.buckets, key=lambda k: self.buckets[k].updated)[: MAX_KEYS // 2]:
                del self.buckets[key]

    def enforce(self, key: str) -> None:
        wait = self.check(key)
        if wait > 0:
            raise rate_limited(wait)


def rate_limited(wait: float, what_en: str = "too many requests",
                 what_nl: str = "Te veel verzoeken") -> ServiceError:
    """The one 429: a machine-readable code, Dutch and English, and when to come back."""
    seconds = max(1, math.ceil(wait))
    return ServiceError(429, "rate_limited", f"{what_en}; try again in {seconds} s",
                        detail_nl=f"{what_nl}; probeer het over {seconds} s opnieuw",
                        headers={"Retry-After": str(seconds)})


class AnonymousClientKeys:
    """Turns a client address into a key that cannot be turned back, and changes every day."""

    def __init__(self) -> None:
        self._day = -1
        self._salt = b""

    def key(self, address: str | None) -> str:
        day = int(time.time() // 86400)
        if day != self._day:
            self._day, self._salt = day, secrets.token_bytes(32)
        return hmac.new(self._salt, (address or "unknown").encode(), hashlib.sha256).hexdigest()[:32]
