"""State that the replicas of one service share: rate-limit windows, the daily address salt, circuit states.

The embedded default keeps it in this process's memory: right for one replica, and with several each enforces
its own share. With `redis_url` set it lives in Redis, so that a limit is one limit whichever replica a client
reaches, an address has one pseudonym on every replica, and a destination that is down is down for all of them.

Redis is never a reason to refuse a citizen. When it does not answer, this process falls back to its own memory
(each replica counting for itself, as the embedded default does), logs it once, counts it in
`bm_shared_state_fallbacks_total`, and asks Redis again after `RETRY_AFTER_SECONDS`.
"""

from __future__ import annotations

import logging
import secrets
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Literal, TypeVar

import redis.asyncio as aioredis

log = logging.getLogger(__name__)
T = TypeVar("T")

RETRY_AFTER_SECONDS = 5.0  # while Redis is out, each request does not wait for its timeout again
SALT_CACHE_SECONDS = 60.0
SALT_DAYS_KEPT = 2  # yesterday's salt may still be asked for just after midnight; then it is gone for good

CircuitStateName = Literal["closed", "half_open", "open"]


@dataclass(frozen=True)
class Slot:
    """One request counted in a moving window (`SharedState.reserve`) until it is given back (`release`)."""

    key: str
    member: str  # this request's own entry, so that giving it back removes no other request's
    in_redis: bool  # where it was counted: a slot taken while Redis was out is given back in this process


class LocalWindows:
    """Moving windows in this process's memory: per key, when each counted request leaves, oldest first.

    Nothing here awaits, so on the event loop a check and its count are one step: requests that arrive together
    cannot all see the same free room."""

    def __init__(self) -> None:
        self._entries: dict[str, deque[tuple[float, str]]] = {}
        self._swept_at = 0.0

    def reserve(self, key: str, capacity: int, per_seconds: float, member: str) -> float:
        now = time.monotonic()
        entries = self._entries.setdefault(key, deque())
        while entries and entries[0][0] <= now:
            entries.popleft()
        if len(entries) >= capacity:
            return entries[0][0] - now
        entries.append((now + per_seconds, member))  # one key, one window length: the deque stays in order
        # A flood of keys cannot grow memory without bound: at most once a second, windows gone quiet are dropped.
        if len(self._entries) > 10_000 and now - self._swept_at > 1:
            self._entries = {k: e for k, e in self._entries.items() if e and e[-1][0] > now}
            self._swept_at = now
        return 0.0

    def release(self, key: str, member: str) -> None:
        entries = self._entries.get(key)
        if entries is None:
            return
        for entry in entries:
            if entry[1] == member:
                entries.remove(entry)
                break
        if not entries:
            del self._entries[key]


# A moving window in Redis: a sorted set of the counted requests, scored by when each was counted (Redis's own
# clock, so that replicas whose clocks differ count alike). Checking for room and counting the request are one
# script: requests that reach several replicas at once cannot all see the same free room. Returns 0 when the
# request was counted, else the milliseconds until the oldest entry leaves the window.
_RESERVE = """
local now = redis.call('TIME')
local ms = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000)
local window = tonumber(ARGV[2])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ms - window)
if redis.call('ZCARD', KEYS[1]) < tonumber(ARGV[1]) then
  redis.call('ZADD', KEYS[1], ms, ARGV[3])
  redis.call('PEXPIRE', KEYS[1], window)
  return 0
end
local oldest = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
return math.max(1, tonumber(oldest[2]) + window - ms)
"""


@dataclass(frozen=True)
class CircuitView:
    """One destination's circuit as one replica last saw it."""

    state: CircuitStateName = "closed"
    failures: int = 0
    probe_taken: bool = False


class LocalCircuits:
    """Circuit states in this process's memory (the embedded default, and the fallback while Redis is out)."""

    def __init__(self) -> None:
        self._failures: dict[str, int] = {}
        self._opened_at: dict[str, float] = {}
        self._probe_until: dict[str, float] = {}

    async def read(self, destination: str, cooldown: float) -> CircuitView:
        opened_at = self._opened_at.get(destination)
        failures = self._failures.get(destination, 0)
        if opened_at is None:
            return CircuitView("closed", failures)
        now = time.monotonic()
        if now - opened_at < cooldown:
            return CircuitView("open", failures)
        return CircuitView("half_open", failures, self._probe_until.get(destination, 0.0) > now)

    async def failure(self, destination: str, threshold: int) -> None:
        self._failures[destination] = self._failures.get(destination, 0) + 1
        self._probe_until.pop(destination, None)
        if self._failures[destination] >= threshold or destination in self._opened_at:
            self._opened_at[destination] = time.monotonic()

    async def success(self, destination: str) -> bool:
        self._failures.pop(destination, None)
        self._probe_until.pop(destination, None)
        return self._opened_at.pop(destination, None) is not None

    async def take_probe(self, destination: str, lease: float) -> bool:
        now = time.monotonic()
        if self._probe_until.get(destination, 0.0) > now:
            return False
        self._probe_until[destination] = now + lease
        return True


# The circuit of one destination in Redis, without any clock but Redis's own: a hash with the consecutive
# failures and whether the circuit tripped, a cooldown key that expires when a probe may go, and a probe key
# that one replica at a time holds.
_FAILURE = """
local failures = redis.call('HINCRBY', KEYS[1], 'failures', 1)
local tripped = redis.call('HGET', KEYS[1], 'tripped')
if failures >= tonumber(ARGV[1]) or tripped == '1' then
  redis.call('HSET', KEYS[1], 'tripped', '1')
  redis.call('SET', KEYS[2], '1', 'PX', ARGV[2])
end
redis.call('DEL', KEYS[3])
redis.call('PEXPIRE', KEYS[1], ARGV[3])
return failures
"""
_SUCCESS = """
local tripped = redis.call('HGET', KEYS[1], 'tripped')
redis.call('DEL', KEYS[1], KEYS[2], KEYS[3])
if tripped == '1' then return 1 end
return 0
"""
_READ = """
local values = redis.call('HMGET', KEYS[1], 'failures', 'tripped')
return {values[1] or '0', values[2] or '0', redis.call('EXISTS', KEYS[2]), redis.call('EXISTS', KEYS[3])}
"""
CIRCUIT_MEMORY_MS = 86_400_000  # a circuit nobody touched for a day is forgotten (closed)


class SharedState:
    """A service's shared state: in Redis when `redis_url` is set, else in this process's memory."""

    def __init__(
        self,
        redis_url: str = "",
        namespace: str = "bm:service",
        on_fallback: Callable[[str], None] | None = None,
        timeout_seconds: float = 0.5,
    ) -> None:
        self.prefix = namespace + ":"
        self._on_fallback = on_fallback
        self._local_windows = LocalWindows()
        self._local_circuits = LocalCircuits()
        self._local_salts: dict[int, bytes] = {}
        self._shared_salt: tuple[int, float, bytes] | None = None  # (day, kept until, salt) as read from Redis
        self._local_counters: dict[str, tuple[int, float]] = {}  # key: (value, expires at, monotonic)
        self._redis: aioredis.Redis | None = None
        self._down_until = 0.0
        if redis_url:
            options: dict[str, Any] = {
                "socket_timeout": timeout_seconds,
                "socket_connect_timeout": timeout_seconds,
            }
            self._redis = aioredis.Redis.from_url(redis_url, **options)

    @property
    def shared(self) -> bool:
        return self._redis is not None

    async def aclose(self) -> None:
        if self._redis is not None:
            await self._redis.aclose()

    async def ping(self) -> bool:
        """True if Redis answers (or none is configured)."""
        if self._redis is None:
            return True
        try:
            return bool(await self._redis.ping())
        except Exception:
            return False

    async def _shared_or_local(
        self, what: str, shared: Callable[[], Awaitable[T]], local: Callable[[], Awaitable[T]]
    ) -> T:
        if self._redis is None:
            return await local()
        if time.monotonic() >= self._down_until:
            try:
                return await shared()
            except Exception as exc:  # any failure of Redis: a timeout, a refused connection, a script error
                if time.monotonic() - self._down_until > 60:  # once per outage, not once per request
                    log.warning(
                        "shared state in Redis unavailable; this replica uses its own memory for now",
                        extra={"what": what, "error": f"{type(exc).__name__}: {exc}"},
                    )
                self._down_until = time.monotonic() + RETRY_AFTER_SECONDS
        if self._on_fallback is not None:
            self._on_fallback(what)
        return await local()

    # Rate limits: a moving window of `capacity` requests per `per_seconds`, per key.

    async def reserve(self, key: str, capacity: int, per_seconds: float) -> tuple[Slot | None, float]:
        """Count one request if the window has room, in one step: (its slot, 0), or (None, the seconds until
        there is room). The slot is counted until it leaves the window or is given back (`release`)."""
        member = secrets.token_hex(8)
        full = f"{self.prefix}window:{key}"

        async def shared() -> tuple[Slot | None, float]:
            assert self._redis is not None
            wait_ms = int(await self._redis.eval(_RESERVE, 1, full, capacity, max(1, int(per_seconds * 1000)), member))
            return (Slot(key, member, in_redis=True), 0.0) if wait_ms == 0 else (None, wait_ms / 1000)

        async def local() -> tuple[Slot | None, float]:
            wait = self._local_windows.reserve(key, capacity, per_seconds, member)
            return (Slot(key, member, in_redis=False), 0.0) if wait == 0 else (None, wait)

        return await self._shared_or_local("rate_limits", shared, local)

    async def release(self, slot: Slot) -> None:
        """Give a counted request back (it failed, or was a retry of one already answered)."""
        if not slot.in_redis:
            self._local_windows.release(slot.key, slot.member)
            return

        async def shared() -> None:
            assert self._redis is not None
            await self._redis.zrem(f"{self.prefix}window:{slot.key}", slot.member)

        async def kept() -> None:
            pass  # Redis is out: the slot stays counted there until it leaves the window (too strict, never lax)

        await self._shared_or_local("rate_limits", shared, kept)

    # The salt of the day that address pseudonyms are keyed with (ratelimit.AnonymousClientKeys).

    async def address_salt(self, day: int) -> bytes:
        """A random salt per day, the same on every replica; it lives only in memory (Redis's or this
        process's) and is gone two days later, so no stored pseudonym can ever be traced back to an address."""

        async def shared() -> bytes:
            # Asked several times per report: kept for a minute (the day's salt does not change, but a Redis
            # that lost its data makes a new one, which every replica must pick up soon).
            cached = self._shared_salt
            if cached is not None and cached[0] == day and cached[1] > time.monotonic():
                return cached[2]
            assert self._redis is not None
            key = f"{self.prefix}address-salt:{day}"
            await self._redis.set(key, secrets.token_bytes(32), nx=True, ex=SALT_DAYS_KEPT * 86400)
            salt = await self._redis.get(key)
            if not salt:
                raise RuntimeError("the salt expired between writing and reading it")
            assert isinstance(salt, bytes)  # the client decodes no responses
            self._shared_salt = (day, time.monotonic() + SALT_CACHE_SECONDS, salt)
            return salt

        async def local() -> bytes:
            if day not in self._local_salts:
                self._local_salts = {d: s for d, s in self._local_salts.items() if d >= day - 1}
                self._local_salts[day] = secrets.token_bytes(32)
            return self._local_salts[day]

        return await self._shared_or_local("address_salt", shared, local)

    # Counters and holds that expire (login throttling: failures in a row, and how long to wait).

    async def count(self, key: str, ttl: float) -> int:
        """Add one to a counter that is forgotten `ttl` seconds after its last increase; the new value."""
        full = f"{self.prefix}counter:{key}"

        async def shared() -> int:
            assert self._redis is not None
            async with self._redis.pipeline(transaction=True) as pipe:
                pipe.incr(full)  # a pipeline's commands are queued (not awaited) and run by execute()
                pipe.pexpire(full, max(1, int(ttl * 1000)))
                value, _ = await pipe.execute()
            return int(value)

        async def local() -> int:
            now = time.monotonic()
            value, until = self._local_counters.get(full, (0, 0.0))
            value = value + 1 if until > now else 1
            self._local_counters[full] = (value, now + ttl)
            self._forget_expired_local(now)
            return value

        return await self._shared_or_local("counters", shared, local)

    async def hold(self, key: str, seconds: float) -> None:
        """Mark `key` as held for `seconds` (a wait imposed on whoever it names)."""
        full = f"{self.prefix}hold:{key}"

        async def shared() -> None:
            assert self._redis is not None
            await self._redis.set(full, "1", px=max(1, int(seconds * 1000)))

        async def local() -> None:
            self._local_counters[full] = (1, time.monotonic() + seconds)

        await self._shared_or_local("counters", shared, local)

    async def held_for(self, key: str) -> float:
        """Seconds left of a hold on `key`; 0 if none."""
        full = f"{self.prefix}hold:{key}"

        async def shared() -> float:
            assert self._redis is not None
            left = await self._redis.pttl(full)
            return max(0.0, left / 1000) if left and left > 0 else 0.0

        async def local() -> float:
            _, until = self._local_counters.get(full, (0, 0.0))
            return max(0.0, until - time.monotonic())

        return await self._shared_or_local("counters", shared, local)

    async def take(self, key: str, seconds: float) -> bool:
        """Take a turn named `key` for at most `seconds`: True for one holder at a time (`give_back` ends it)."""
        full = f"{self.prefix}turn:{key}"

        async def shared() -> bool:
            assert self._redis is not None
            return bool(await self._redis.set(full, "1", nx=True, px=max(1, int(seconds * 1000))))

        async def local() -> bool:
            now = time.monotonic()
            if self._local_counters.get(full, (0, 0.0))[1] > now:
                return False
            self._local_counters[full] = (1, now + seconds)
            return True

        return await self._shared_or_local("counters", shared, local)

    async def give_back(self, key: str) -> None:
        full = f"{self.prefix}turn:{key}"

        async def shared() -> None:
            assert self._redis is not None
            await self._redis.delete(full)

        async def local() -> None:
            self._local_counters.pop(full, None)

        await self._shared_or_local("counters", shared, local)

    async def forget(self, *keys: str) -> None:
        """Drop counters and holds (a successful login clears its failures)."""
        names = [f"{self.prefix}{kind}:{key}" for key in keys for kind in ("counter", "hold")]

        async def shared() -> None:
            assert self._redis is not None
            await self._redis.delete(*names)

        async def local() -> None:
            for name in names:
                self._local_counters.pop(name, None)

        await self._shared_or_local("counters", shared, local)

    def _forget_expired_local(self, now: float) -> None:
        if len(self._local_counters) > 10_000:  # a flood of names cannot grow memory without bound
            self._local_counters = {k: v for k, v in self._local_counters.items() if v[1] > now}

    # Circuit states, per destination this service sends to.

    def _circuit_keys(self, destination: str) -> list[str]:
        base = f"{self.prefix}circuit:{destination}"
        return [base, base + ":cooldown", base + ":probe"]

    async def read_circuit(self, destination: str, cooldown: float) -> CircuitView:
        async def shared() -> CircuitView:
            assert self._redis is not None
            failures, tripped, cooling, probe = await self._redis.eval(_READ, 3, *self._circuit_keys(destination))
            if int(tripped) != 1:
                return CircuitView("closed", int(failures))
            if int(cooling):
                return CircuitView("open", int(failures))
            return CircuitView("half_open", int(failures), bool(int(probe)))

        return await self._shared_or_local("circuits", shared, lambda: self._local_circuits.read(destination, cooldown))

    async def circuit_failure(self, destination: str, threshold: int, cooldown: float) -> None:
        async def shared() -> None:
            assert self._redis is not None
            await self._redis.eval(
                _FAILURE,
                3,
                *self._circuit_keys(destination),
                threshold,
                max(1, int(cooldown * 1000)),
                CIRCUIT_MEMORY_MS,
            )

        await self._shared_or_local("circuits", shared, lambda: self._local_circuits.failure(destination, threshold))

    async def circuit_success(self, destination: str) -> bool:
        """Record an answer; True when that closes a circuit that had tripped (the destination is back)."""

        async def shared() -> bool:
            assert self._redis is not None
            return bool(await self._redis.eval(_SUCCESS, 3, *self._circuit_keys(destination)))

        # The local state is cleared too: after an outage of Redis it must not hold an old open circuit.
        recovered_here = await self._local_circuits.success(destination)
        return await self._shared_or_local("circuits", shared, lambda: _value(recovered_here))

    async def take_probe(self, destination: str, lease: float) -> bool:
        """True for exactly one replica at a time: the one that may send the probe of a half-open circuit."""

        async def shared() -> bool:
            assert self._redis is not None
            key = self._circuit_keys(destination)[2]
            return bool(await self._redis.set(key, "1", nx=True, px=max(1, int(lease * 1000))))

        return await self._shared_or_local(
            "circuits", shared, lambda: self._local_circuits.take_probe(destination, lease)
        )


async def _value(value: T) -> T:
    return value
