"""Rate limits that never keep an address.

Clients are told apart by an HMAC of their address under a random salt of the day that lives only in memory
(Redis's when replicas share state, else this process's) and is gone two days later, so nothing that identifies
a citizen is stored, logged, or comparable across days. The counting is a moving window kept in the service's
shared state (sharedstate.py). Refusals are a 429 with `Retry-After`.

A request is counted before its work, in the same step that checks for room (`Reservation`), never peeked at
first and counted afterwards: requests sent together would all pass the peek. What a request took is given
back when it fails or turns out to be a retry of one already answered, so honest retries cost nothing.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import math
import time
from dataclasses import dataclass
from types import TracebackType

from starlette.requests import Request

from burgermelding_shared.errors import ServiceError
from burgermelding_shared.sharedstate import SharedState, Slot


@dataclass
class RateLimiter:
    """At most `capacity` requests per key in any `per_seconds` seconds; a refusal says `refusal` (en, nl)."""

    capacity: int
    per_seconds: float
    state: SharedState
    name: str
    refusal: tuple[str, str] = ("too many requests", "Te veel verzoeken")

    async def take(self, key: str) -> tuple[Slot | None, float]:
        """Count one request if there is room, in one step: (its slot, 0), or (None, the seconds to wait)."""
        return await self.state.reserve(f"{self.name}:{key}", self.capacity, self.per_seconds)

    async def enforce(self, key: str) -> Slot:
        """Count one request, or refuse it with the 429."""
        slot, wait = await self.take(key)
        if slot is None:
            raise rate_limited(wait, *self.refusal)
        return slot


class Reservation:
    """What one request took of its limits: counted at once, and given back (`give_back`) if the request fails
    or turns out to be a retry of one already answered, so that an honest retry costs nothing. Used as
    `async with`, it is given back when the block raises, whatever the exception; `keep` makes it final."""

    def __init__(self) -> None:
        self._taken: list[tuple[RateLimiter, Slot]] = []

    async def take(self, limiter: RateLimiter, key: str) -> None:
        """Count this request against one more limit; on a refusal (429) what it already took is given back."""
        try:
            self._taken.append((limiter, await limiter.enforce(key)))
        except BaseException:
            await self.give_back()
            raise

    def keep(self) -> None:
        """The request did what it was counted for: nothing is given back any more."""
        self._taken = []

    async def give_back(self) -> None:
        taken, self._taken = self._taken, []
        for limiter, slot in taken:
            await limiter.state.release(slot)

    async def __aenter__(self) -> Reservation:
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        if error is not None:
            await self.give_back()


def rate_limited(wait: float, what_en: str = "too many requests", what_nl: str = "Te veel verzoeken") -> ServiceError:
    """The one 429: a machine-readable code, Dutch and English, and when to come back."""
    seconds = max(1, math.ceil(wait))
    return ServiceError(
        429,
        "rate_limited",
        f"{what_en}; try again in {seconds} s",
        detail_nl=f"{what_nl}; probeer het over {seconds} s opnieuw",
        headers={"Retry-After": str(seconds)},
    )


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


def network_of(address: str | None) -> str:
    """What a client is told apart by: its address, an IPv6 one by its /64. A subscriber is given a whole /64
    (a phone on a mobile network gets one of its own), so counting single IPv6 addresses would give one client
    2**64 fresh limits, and as many fresh registration addresses."""
    if not address:
        return "unknown"
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return address  # not an address (a test client's name): counted as it is
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.IPv6Network((ip, 64), strict=False))
    return str(ip)


class AnonymousClientKeys:
    """Turns a client address (its network: `network_of`) into a key that cannot be turned back, and changes
    every day."""

    def __init__(self, state: SharedState) -> None:
        self.state = state

    async def key(self, address: str | None) -> str:
        salt = await self.state.address_salt(int(time.time() // 86400))
        return hmac.new(salt, network_of(address).encode(), hashlib.sha256).hexdigest()[:32]
