"""Rate limits that never keep an address.

Clients are told apart by an HMAC of their address under a random salt of the day that lives only in memory
(Redis's when replicas share state, else this process's) and is gone two days later, so nothing that identifies
a citizen is stored, logged, or comparable across days. The counting is the `limits` package's moving window,
kept in the service's shared state (sharedstate.py). Refusals are a 429 with `Retry-After`.
"""

from __future__ import annotations

import hashlib
import hmac
import math
import time
from dataclasses import dataclass

from starlette.requests import Request

from burgermelding_shared.errors import ServiceError
from burgermelding_shared.sharedstate import SharedState, per_window


@dataclass
class RateLimiter:
    """At most `capacity` requests per key in any `per_seconds` seconds."""

    capacity: int
    per_seconds: float
    state: SharedState
    name: str

    def __post_init__(self) -> None:
        self.item = per_window(self.capacity, self.per_seconds)

    async def check(self, key: str) -> float:
        """0 if allowed (and counted), else the seconds to wait."""
        return await self.state.hit(self.item, f"{self.name}:{key}")

    async def peek(self, key: str) -> float:
        """Like `check` but counts nothing: 0 if a request would be allowed, else the seconds to wait."""
        return await self.state.peek(self.item, f"{self.name}:{key}")

    async def enforce(self, key: str) -> None:
        wait = await self.check(key)
        if wait > 0:
            raise rate_limited(wait)


def rate_limited(wait: float, what_en: str = "too many requests",
                 what_nl: str = "Te veel verzoeken") -> ServiceError:
    """The one 429: a machine-readable code, Dutch and English, and when to come back."""
    seconds = max(1, math.ceil(wait))
    return ServiceError(429, "rate_limited", f"{what_en}; try again in {seconds} s",
                        detail_nl=f"{what_nl}; probeer het over {seconds} s opnieuw",
                        headers={"Retry-After": str(seconds)})


def client_address(request: Request) -> str | None:
    """The client's address, used only to derive in-memory keys (`AnonymousClientKeys`); never stored or
    logged. Behind trusted proxies (the `trusted_proxies` setting) it is the rightmost X-Forwarded-For hop that
    is not a proxy: the hops before it are written by the client and prove nothing."""
    peer = request.client.host if request.client else None
    trusted = set(request.app.state.runtime.settings.trusted_proxies)
    if peer not in trusted:
        return peer
    hops = [hop.strip() for hop in request.headers.get("x-forwarded-for", "").split(",") if hop.strip()]
    for hop in reversed(hops):
        if hop not in trusted:
            return hop[:64]
    return peer


class AnonymousClientKeys:
    """Turns a client address into a key that cannot be turned back, and changes every day."""

    def __init__(self, state: SharedState) -> None:
        self.state = state

    async def key(self, address: str | None) -> str:
        salt = await self.state.address_salt(int(time.time() // 86400))
        return hmac.new(salt, (address or "unknown").encode(), hashlib.sha256).hexdigest()[:32]
