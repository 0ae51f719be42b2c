"""Rate limits and the address pseudonyms, in this process's memory and shared by replicas in Redis."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable

import pytest

from burgermelding_shared.errors import ServiceError
from burgermelding_shared.ratelimit import AnonymousClientKeys, RateLimiter
from burgermelding_shared.sharedstate import SharedState

UNREACHABLE_REDIS = "redis://127.0.0.1:1/0"  # nothing listens on port 1: every call is refused at once


@pytest.fixture
async def replicas(redis_url: tuple[str, str]) -> AsyncIterator[Callable[[], SharedState]]:
    """Make the shared state of another replica of one service, all in the test's own Redis keys."""
    made: list[SharedState] = []

    def make() -> SharedState:
        made.append(SharedState(redis_url[0], f"{redis_url[1]}:intake"))
        return made[-1]

    yield make
    for state in made:
        await state.aclose()


async def test_a_window_allows_its_capacity_then_refuses_with_the_wait() -> None:
    limiter = RateLimiter(capacity=3, per_seconds=60, state=SharedState(), name="create")
    assert [await limiter.check("a") for _ in range(3)] == [0, 0, 0]
    assert 59 <= await limiter.check("a") <= 60
    assert await limiter.check("b") == 0  # another client is not affected
    assert 59 <= await limiter.peek("a") <= 60  # peeking counts nothing and tells the same wait


async def test_enforce_gives_429_with_retry_after() -> None:
    limiter = RateLimiter(capacity=1, per_seconds=10, state=SharedState(), name="create")
    await limiter.enforce("k")
    with pytest.raises(ServiceError) as err:
        await limiter.enforce("k")
    assert err.value.status_code == 429 and err.value.headers == {"Retry-After": "10"}


async def test_a_limit_in_redis_is_one_limit_across_replicas(replicas: Callable[[], SharedState]) -> None:
    one = RateLimiter(capacity=4, per_seconds=60, state=replicas(), name="create")
    other = RateLimiter(capacity=4, per_seconds=60, state=replicas(), name="create")
    # A client that alternates between two replicas gets the limit once, not twice.
    assert [await limiter.check("client") for limiter in (one, other, one, other)] == [0, 0, 0, 0]
    assert await one.check("client") > 0 and await other.check("client") > 0
    with pytest.raises(ServiceError) as err:
        await other.enforce("client")
    assert err.value.error == "rate_limited" and 59 <= int(err.value.headers["Retry-After"]) <= 60
    # Concurrent requests through both replicas: exactly the capacity is allowed.
    race = [RateLimiter(capacity=5, per_seconds=60, state=state, name="race") for state in (replicas(), replicas())]
    waits = await asyncio.gather(*(race[n % 2].check("burst") for n in range(20)))
    assert sum(1 for wait in waits if wait == 0) == 5


async def test_without_redis_limits_are_per_replica() -> None:
    one = RateLimiter(capacity=1, per_seconds=60, state=SharedState(), name="create")
    other = RateLimiter(capacity=1, per_seconds=60, state=SharedState(), name="create")
    assert await one.check("client") == 0 and await other.check("client") == 0  # each its own share


async def test_redis_down_falls_back_to_this_replica_and_is_counted() -> None:
    fell_back: list[str] = []
    state = SharedState(UNREACHABLE_REDIS, "bm-test-down:intake", on_fallback=fell_back.append)
    limiter = RateLimiter(capacity=2, per_seconds=60, state=state, name="create")
    # Never a refusal or an error because Redis is down: the limit is counted in this process meanwhile.
    assert [await limiter.check("client") for _ in range(2)] == [0, 0]
    assert await limiter.check("client") > 0
    assert fell_back[0] == "rate_limits" and await state.ping() is False
    assert len(await AnonymousClientKeys(state).key("203.0.113.7")) == 32
    await state.aclose()


async def test_client_keys_hide_the_address() -> None:
    keys = AnonymousClientKeys(SharedState())
    key = await keys.key("203.0.113.7")
    assert "203.0.113.7" not in key and key == await keys.key("203.0.113.7")
    assert key != await keys.key("203.0.113.8")
    # A fresh salt in another process: not comparable across processes (nor across days).
    assert key != await AnonymousClientKeys(SharedState()).key("203.0.113.7")


async def test_replicas_sharing_redis_give_an_address_one_pseudonym(replicas: Callable[[], SharedState],
                                                                    redis_url: tuple[str, str]) -> None:
    one, other = AnonymousClientKeys(replicas()), AnonymousClientKeys(replicas())
    key = await one.key("203.0.113.7")
    assert key == await other.key("203.0.113.7") and key != await other.key("203.0.113.8")
    # Another deployment (another key prefix) has its own salt.
    elsewhere = SharedState(redis_url[0], f"{redis_url[1]}-other:intake")
    assert key != await AnonymousClientKeys(elsewhere).key("203.0.113.7")
    await elsewhere.aclose()
