"""Rate limits and the address pseudonyms, in this process's memory and shared by replicas in Redis."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable

import pytest

from burgermelding_shared.errors import ServiceError
from burgermelding_shared.ratelimit import AnonymousClientKeys, RateLimiter, Reservation
from burgermelding_shared.sharedstate import SharedState

UNREACHABLE_REDIS = "redis://127.0.0.1:1/0"  # nothing listens on port 1: every call is refused at once


async def wait_of(limiter: RateLimiter, key: str) -> float:
    """Count one request if there is room: 0, else the seconds to wait (and nothing is counted)."""
    return (await limiter.take(key))[1]


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
    assert [await wait_of(limiter, "a") for _ in range(3)] == [0, 0, 0]
    assert 59 <= await wait_of(limiter, "a") <= 60
    assert await wait_of(limiter, "b") == 0  # another client is not affected


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
    assert [await wait_of(limiter, "client") for limiter in (one, other, one, other)] == [0, 0, 0, 0]
    assert await wait_of(one, "client") > 0 and await wait_of(other, "client") > 0
    with pytest.raises(ServiceError) as err:
        await other.enforce("client")
    assert err.value.error == "rate_limited" and 59 <= int(err.value.headers["Retry-After"]) <= 60
    # Concurrent requests through both replicas: exactly the capacity is allowed.
    race = [RateLimiter(capacity=5, per_seconds=60, state=state, name="race") for state in (replicas(), replicas())]
    waits = await asyncio.gather(*(wait_of(race[n % 2], "burst") for n in range(20)))
    assert sum(1 for wait in waits if wait == 0) == 5


async def test_without_redis_limits_are_per_replica() -> None:
    one = RateLimiter(capacity=1, per_seconds=60, state=SharedState(), name="create")
    other = RateLimiter(capacity=1, per_seconds=60, state=SharedState(), name="create")
    assert await wait_of(one, "client") == 0 and await wait_of(other, "client") == 0  # each its own share


async def test_redis_down_falls_back_to_this_replica_and_is_counted() -> None:
    fell_back: list[str] = []
    state = SharedState(UNREACHABLE_REDIS, "bm-test-down:intake", on_fallback=fell_back.append)
    limiter = RateLimiter(capacity=2, per_seconds=60, state=state, name="create")
    # Never a refusal or an error because Redis is down: the limit is counted in this process meanwhile.
    assert [await wait_of(limiter, "client") for _ in range(2)] == [0, 0]
    assert await wait_of(limiter, "client") > 0
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


async def test_replicas_sharing_redis_give_an_address_one_pseudonym(
    replicas: Callable[[], SharedState], redis_url: tuple[str, str]
) -> None:
    one, other = AnonymousClientKeys(replicas()), AnonymousClientKeys(replicas())
    key = await one.key("203.0.113.7")
    assert key == await other.key("203.0.113.7") and key != await other.key("203.0.113.8")
    # Another deployment (another key prefix) has its own salt.
    elsewhere = SharedState(redis_url[0], f"{redis_url[1]}-other:intake")
    assert key != await AnonymousClientKeys(elsewhere).key("203.0.113.7")
    await elsewhere.aclose()


@pytest.mark.parametrize("backend", ["memory", "redis"])
async def test_a_parallel_burst_gets_exactly_the_capacity_and_what_is_given_back_is_free_again(
    backend: str, replicas: Callable[[], SharedState]
) -> None:
    states = [SharedState()] if backend == "memory" else [replicas(), replicas()]  # two replicas share Redis
    limiters = [RateLimiter(capacity=10, per_seconds=60, state=state, name="create") for state in states]

    async def request(n: int) -> Reservation | None:
        reservation = Reservation()
        try:
            await reservation.take(limiters[n % len(limiters)], "installation:a")
        except ServiceError as refused:
            assert refused.status_code == 429 and refused.headers["Retry-After"] in ("59", "60")
            return None
        return reservation

    taken = await asyncio.gather(*(request(n) for n in range(50)))
    granted = [r for r in taken if r is not None]
    assert len(granted) == 10  # checked and counted in one step: the burst cannot all pass a check first
    # A request that failed gives its count back: exactly that much room again, no more.
    await granted[0].give_back()
    await granted[0].give_back()  # giving back twice gives back once
    again = await asyncio.gather(*(request(n) for n in range(5)))
    assert sum(r is not None for r in again) == 1
    granted[1].keep()  # a request that did its work keeps its count, whatever happens after
    await granted[1].give_back()
    assert await wait_of(limiters[0], "installation:a") > 0


async def test_a_refusal_by_a_later_limit_gives_back_the_earlier_ones() -> None:
    state = SharedState()
    own = RateLimiter(capacity=5, per_seconds=60, state=state, name="create")
    guard = RateLimiter(
        capacity=1,
        per_seconds=60,
        state=state,
        name="guard",
        refusal=("too many from this network", "Te veel vanaf dit netwerk"),
    )
    first = Reservation()
    await first.take(own, "phone")
    await first.take(guard, "address")
    second = Reservation()
    await second.take(own, "phone")
    with pytest.raises(ServiceError) as refused:
        await second.take(guard, "address")
    assert refused.value.detail.startswith("too many from this network")
    assert refused.value.detail_nl.startswith("Te veel vanaf dit netwerk")
    # The refused request holds nothing of the installation's own limit: four of five are left.
    assert [await wait_of(own, "phone") for _ in range(5)] == [0, 0, 0, 0, pytest.approx(60, abs=1)]


async def test_async_with_gives_back_on_any_failure() -> None:
    limiter = RateLimiter(capacity=1, per_seconds=60, state=SharedState(), name="create")
    reservation = Reservation()
    await reservation.take(limiter, "k")
    with pytest.raises(RuntimeError):
        async with reservation:
            raise RuntimeError("the photo store is down")
    async with Reservation() as ok:
        await ok.take(limiter, "k")  # the room is there again, and stays taken after a block that succeeds
    assert await wait_of(limiter, "k") > 0


async def test_a_count_taken_while_redis_was_out_is_given_back_in_this_replica() -> None:
    state = SharedState(UNREACHABLE_REDIS, "bm-test-down:intake")
    limiter = RateLimiter(capacity=1, per_seconds=60, state=state, name="create")
    reservation = Reservation()
    await reservation.take(limiter, "k")
    await reservation.give_back()
    assert await wait_of(limiter, "k") == 0
    await state.aclose()


async def test_an_ipv6_client_is_told_apart_by_its_64_not_by_each_address() -> None:
    keys = AnonymousClientKeys(SharedState())
    one_subscriber = [await keys.key(f"2001:db8:1:2::{n:x}") for n in range(1, 50)]
    assert len(set(one_subscriber)) == 1  # a /64 is one subscriber: no fresh limit per address in it
    assert await keys.key("2001:db8:1:3::1") != one_subscriber[0]
    assert await keys.key("::ffff:203.0.113.7") == await keys.key("203.0.113.7")
    assert await keys.key("203.0.113.7") != await keys.key("203.0.113.8")  # IPv4: each address, as before
    assert await keys.key(None) == await keys.key("unknown")
