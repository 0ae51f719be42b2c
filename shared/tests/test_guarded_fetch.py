"""The guarded fetcher's refusals that need no server (the fetches themselves are tested through Open311's media_url
in services/report-intake/tests/test_open311.py, against a real HTTP server)."""

from __future__ import annotations

from pathlib import Path

import pytest

from burgermelding_shared.guarded_fetch import FetchLimits, FetchRefused, _pinned, fetch_to_file

LIMITS = FetchLimits(allowed_hosts=frozenset({"photos.example.nl", "localhost"}), max_bytes=1000, max_seconds=2)


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("file:///etc/passwd", "not_allowed"),
        ("ftp://photos.example.nl/a.jpg", "not_allowed"),
        ("http://user:secret@photos.example.nl/a.jpg", "not_allowed"),
        ("http://photos.example.nl:notaport/a.jpg", "not_allowed"),
        ("http://elsewhere.example.nl/a.jpg", "not_allowed"),
        ("http://127.0.0.1/a.jpg", "not_allowed"),  # an address is a host too: not on the list
        ("http://localhost/a.jpg", "private_address"),  # on the list, but it is this machine
        ("http:///a.jpg", "not_allowed"),
    ],
)
async def test_a_url_that_may_not_be_fetched_is_refused_with_its_reason(url: str, reason: str, tmp_path: Path) -> None:
    target = tmp_path / "fetched"
    with pytest.raises(FetchRefused) as refused:
        await fetch_to_file(url, LIMITS, target)
    assert refused.value.reason == reason, refused.value.message
    assert not target.exists()


def test_the_connection_goes_to_the_resolved_address_with_the_port_kept() -> None:
    assert _pinned("https://photos.example.nl/a.jpg?x=1", "203.0.113.7") == "https://203.0.113.7/a.jpg?x=1"
    assert _pinned("http://photos.example.nl:8080/a", "2001:db8::1") == "http://[2001:db8::1]:8080/a"
