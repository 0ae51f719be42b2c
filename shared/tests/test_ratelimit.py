from __future__ import annotations

import pytest

from burgermelding_shared.errors import ServiceError
from burgermelding_shared.ratelimit import AnonymousClientKeys, RateLimiter


def test_bucket_allows_a_burst_then_refuses_until_refilled() -> None:
    limiter = RateLimiter(capacity=3, per_seconds=60)
    assert [limiter.check("a", now=0) for _ in range(3)] == [0, 0, 0]
    assert limiter.check("a", now=0) == pytest.approx(20)
    assert limiter.check("b", now=0) == 0  # another client is not affected
    assert limiter.check("a", now=20) == 0  # one token back after 20 s


def test_enforce_gives_429_with_retry_after() -> None:
    limiter = RateLimiter(capacity=1, per_seconds=10)
    limiter.enforce("k")
    with pytest.raises(ServiceError) as err:
        limiter.enforce("k")
    assert err.value.status_code == 429 and err.value.headers == {"Retry-After": "10"}


def test_client_keys_hide_the_address() -> None:
    keys = AnonymousClientKeys()
    key = keys.key("203.0.113.7")
    assert "203.0.113.7" not in key and key == keys.key("203.0.113.7") and key != keys.key("203.0.113.8")
    assert key != AnonymousClientKeys().key("203.0.113.7")  # a fresh salt: not comparable across processes/days
