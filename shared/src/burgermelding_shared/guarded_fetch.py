"""Fetching a URL a client named, without letting the client aim us at anything else.

A URL in a request (Open311's `media_url`) makes the server a client: unguarded, anyone could have us call an
address inside the police network (server-side request forgery), hold a connection open for ever, or send us a
gigabyte. So a fetch here:
- goes only to a host on the allow-list (the deployment names the photo hosts of the integrators it trusts);
- goes only to public addresses: the host's name is resolved once, every address it resolves to must be public
  (unless the deployment allows private ones, for a photo host of its own), and the connection is made to that
  very address (the name goes along as Host and TLS server name), so a second lookup cannot point elsewhere;
- follows at most a few redirects, each checked the same way before it is followed;
- stops at a size and a time limit, and streams to a file: a large answer never sits in memory.
Every refusal says why (`FetchRefused.reason`), so the caller can tell the client instead of dropping the URL.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urljoin, urlsplit

import httpx

REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})


@dataclass(frozen=True)
class FetchLimits:
    allowed_hosts: frozenset[str]  # "photos.example.nl" (any port) or "photos.example.nl:8443"
    max_bytes: int
    max_seconds: float
    max_redirects: int = 3
    private_addresses: bool = False  # allow hosts that resolve to private, loopback or link-local addresses


class FetchRefused(Exception):
    """Why a URL was not fetched: `reason` is one of not_allowed, private_address, too_large, failed."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message


def _allowed(host: str, port: int, allowed: frozenset[str]) -> bool:
    return host in allowed or f"{host}:{port}" in allowed


async def _addresses(host: str, port: int) -> list[str]:
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except OSError as exc:
        raise FetchRefused("failed", f"the host {host} could not be resolved") from exc
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


async def _checked_target(url: str, limits: FetchLimits) -> tuple[str, str, int, str]:
    """(scheme, host, port, address to connect to) of a URL we may fetch, or FetchRefused."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise FetchRefused("not_allowed", "only http and https URLs with a host are fetched")
    if parts.username or parts.password:
        raise FetchRefused("not_allowed", "URLs with a user name or password are not fetched")
    host = parts.hostname.lower()
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError as exc:
        raise FetchRefused("not_allowed", "the URL's port is not a number") from exc
    if not _allowed(host, port, limits.allowed_hosts):
        raise FetchRefused("not_allowed", f"{host} is not one of the hosts photos are fetched from")
    addresses = await _addresses(host, port)
    for address in addresses:
        if not limits.private_addresses and not ipaddress.ip_address(address).is_global:
            raise FetchRefused("private_address", f"{host} resolves to a private address")
    if not addresses:
        raise FetchRefused("failed", f"the host {host} could not be resolved")
    return parts.scheme, host, port, addresses[0]


def _pinned(url: str, address: str) -> str:
    """The URL with its host replaced by the address it resolved to (the connection goes there, nowhere else)."""
    parts = urlsplit(url)
    literal = f"[{address}]" if ":" in address else address
    netloc = f"{literal}:{parts.port}" if parts.port else literal
    return parts._replace(netloc=netloc).geturl()


async def fetch_to_file(url: str, limits: FetchLimits, destination: Path) -> int:
    """Fetch `url` into `destination` under `limits`; returns the number of bytes. FetchRefused otherwise (the
    file is then removed)."""
    try:
        async with asyncio.timeout(limits.max_seconds):
            return await _fetch(url, limits, destination)
    except TimeoutError as exc:
        await asyncio.to_thread(destination.unlink, missing_ok=True)
        raise FetchRefused("failed", f"the URL did not answer within {limits.max_seconds:g} seconds") from exc
    except FetchRefused:
        await asyncio.to_thread(destination.unlink, missing_ok=True)
        raise


async def _fetch(url: str, limits: FetchLimits, destination: Path) -> int:
    async with httpx.AsyncClient(follow_redirects=False, trust_env=False) as client:
        for _hop in range(limits.max_redirects + 1):
            scheme, host, port, address = await _checked_target(url, limits)
            default_port = port == (443 if scheme == "https" else 80)
            request = client.build_request(
                "GET",
                _pinned(url, address),
                headers={"Host": host if default_port else f"{host}:{port}", "Accept": "image/*"},
                extensions={"sni_hostname": host} if scheme == "https" else {},
            )
            try:
                response = await client.send(request, stream=True)
            except httpx.HTTPError as exc:
                raise FetchRefused("failed", f"the URL could not be fetched ({type(exc).__name__})") from exc
            try:
                if response.status_code in REDIRECT_STATUSES and "location" in response.headers:
                    url = urljoin(url, response.headers["location"])
                    continue
                if response.status_code != 200:
                    raise FetchRefused("failed", f"the URL answered HTTP {response.status_code}")
                declared = response.headers.get("content-length", "")
                if declared.isdigit() and int(declared) > limits.max_bytes:
                    raise FetchRefused("too_large", f"the file is larger than {limits.max_bytes:,} bytes")
                size = 0
                with destination.open("wb") as out:
                    async for chunk in response.aiter_bytes():
                        size += len(chunk)
                        if size > limits.max_bytes:
                            raise FetchRefused("too_large", f"the file is larger than {limits.max_bytes:,} bytes")
                        out.write(chunk)
                return size
            except httpx.HTTPError as exc:
                raise FetchRefused("failed", f"the URL could not be read ({type(exc).__name__})") from exc
            finally:
                await response.aclose()
    raise FetchRefused("failed", f"more than {limits.max_redirects} redirects")
