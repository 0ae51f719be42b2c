"""State that the replicas of one service share: rate-limit counts, the daily address salt, circuit states.

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
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Literal, TypeVar

import redis.asyncio as aioredis
from limits import RateLimitItem, RateLimitItemPerSecond
from limits.aio.storage import MemoryStorage, RedisStorage, Storage
from limits.aio.strategies import MovingWindowRateLimiter

log = logging.getLogger(__name__)
T = TypeVar("T")

RETRY_AFTER_SECONDS = 5.0  # while Redis is out, each request does not wait for its timeout again
REDIS_TIMEOUT_SECONDS = 0.5  # a limit check is on the path of every report: a slow Redis must not hold it up
SALT_CACHE_SECONDS = 60.0
SALT_DAYS_KEPT = 2  # yesterday's salt may still be asked for just after midnight; then it is gone for good

CircuitStateName = Literal["closed", "half_open", "open"]


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

    def __init__(self, redis_url: str = "", namespace: str = "bm:service",
                 on_fallback: Callable[[str], None] | None = None) -> None:
        self.prefix = namespace + ":"
        self._on_fallback = on_fallback
        self._local_limits = MovingWindowRateLimiter(MemoryStorage())
        self._local_circuits = LocalCircuits()
        self._local_salts: dict[int, bytes] = {}
        self._shared_salt: tuple[int, float, bytes] | None = None  # (day, kept until, salt) as read from Redis
        self._local_counters: dict[str, tuple[int, float]] = {}  # key: (value, expires at, monotonic)
        self._redis: aioredis.Redis | None = None
        self._shared_limits: MovingWindowRateLimiter | None = None
        self._down_until = 0.0
        if redis_url:
            options: dict[str, Any] = {"socket_timeout": REDIS_TIMEOUT_SECONDS,
                                       "socket_connect_timeout": REDIS_TIMEOUT_SECONDS}
            self._redis = aioredis.Redis.from_url(redis_url, **options)
            storage: Storage = RedisStorage("async+" + redis_url, implementation="redispy", wrap_exceptions=True,
                                            key_prefix=self.prefix + "limits", **options)
            self._shared_limits = MovingWindowRateLimiter(storage)

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

    async def _shared_or_local(self, what: str, shared: Callable[[], Awaitable[T]],
                               local: Callable[[], Awaitable[T]]) -> T:
        if self._redis is None:
            return await local()
        if time.monotonic() >= self._down_until:
            try:
                return await shared()
            except Exception as exc:  # any failure of Redis: a timeout, a refused connection, a script error
                if time.monotonic() - self._down_until > 60:  # once per outage, not once per request
                    log.warning("shared state in Redis unavailable; this replica uses its own memory for now",
                                extra={"what": what, "error": f"{type(exc).__name__}: {exc}"})
                self._down_until = time.monotonic() + RETRY_AFTER_SECONDS
        if self._on_fallback is not None:
            self._on_fallback(what)
        return await local()

    # Rate limits: a moving window of `capacity` requests per `per_seconds`, per key.

    async def hit(self, item: RateLimitItem, key: str) -> float:
        """Count one request; 0 if it is allowed, else the seconds until it would be."""
        async def on(limiter: MovingWindowRateLimiter) -> float:
            if await limiter.hit(item, key):
                return 0.0
            return await self._wait(limiter, item, key)
        return await self._shared_or_local("rate_limits", lambda: on(self._shared_limiter()),
                                           lambda: on(self._local_limits))

    async def peek(self, item: RateLimitItem, key: str) -> float:
        """Like `hit` but counts nothing."""
        async def on(limiter: MovingWindowRateLimiter) -> float:
            if await limiter.test(item, key):
                return 0.0
            return await self._wait(limiter, item, key)
        return await self._shared_or_local("rate_limits", lambda: on(self._shared_limiter()),
                                           lambda: on(self._local_limits))

    def _shared_limiter(self) -> MovingWindowRateLimiter:
        assert self._shared_limits is not None
        return self._shared_limits

    @staticmethod
    async def _wait(limiter: MovingWindowRateLimiter, item: RateLimitItem, key: str) -> float:
        stats = await limiter.get_window_stats(item, key)
        return max(0.0, stats.reset_time - time.time())

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
            self._shared_salt = (day, time.monotonic() + SALT_CACHE_SECONDS, bytes(salt))
            return bytes(salt)

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
                value, _ = await pipe.incr(full).pexpire(full, max(1, int(ttl * 1000))).execute()
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
        return await self._shared_or_local("circuits", shared,
                                           lambda: self._local_circuits.read(destination, cooldown))

    async def circuit_failure(self, destination: str, threshold: int, cooldown: float) -> None:
        async def shared() -> None:
            assert self._redis is not None
            await self._redis.eval(_FAILURE, 3, *self._circuit_keys(destination), threshold,
                                   max(1, int(cooldown * 1000)), CIRCUIT_MEMORY_MS)
        await self._shared_or_local("circuits", shared,
                                    lambda: self._local_circuits.failure(destination, threshold))

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
        return await self._shared_or_local("circuits", shared,
                                           lambda: self._local_circuits.take_probe(destination, lease))


async def _value(value: T) -> T:
    return value


def per_window(capacity: int, per_seconds: float) -> RateLimitItem:
    """`capacity` requests in any `per_seconds` seconds (whole seconds: the window's resolution)."""
    return RateLimitItemPerSecond(capacity, max(1, round(per_seconds)))
