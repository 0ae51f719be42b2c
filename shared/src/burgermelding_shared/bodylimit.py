"""Request bodies: a cap on their size, and a pace they must keep, applied before anything reads them.

FastAPI reads a JSON body in full before the route's dependencies run, so without a cap anyone, with or
without a credential, could make a service hold a gigabyte in memory just to be told 401. Bodies are refused
when their declared length is over the cap, and cut off while streaming when they pass it undeclared.
Routes that stream large uploads to disk under limits of their own are exempt from the cap (intake's photo
uploads), not from the pace.

The pace: a body that stops arriving for `idle_seconds`, or arrives slower on average than `min_bytes_per_second`
once `grace_seconds` have passed, is answered 408 and its connection closed. A phone on a poor 2G link still
sends 30 KB/s; a client that trickles a byte now and then only holds a connection open (slowloris), and each
such upload would otherwise hold its temporary file, and the request's place, for as long as it likes.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Iterable

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from burgermelding_shared.errors import render_http_error

DEFAULT_MAX_BODY_BYTES = 1024 * 1024


class BodySizeLimitMiddleware:
    def __init__(self, app: ASGIApp, max_bytes: int = DEFAULT_MAX_BODY_BYTES, exempt: Iterable[str] = ()) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.exempt = [re.compile(pattern) for pattern in exempt]

    def _too_large(self) -> HTTPException:
        # An HTTPException (not our ServiceError): FastAPI lets it through its body parsing unchanged, and
        # the one error handler renders it as {"error": "payload_too_large", ...}.
        return HTTPException(413, f"the request body is larger than the limit of {self.max_bytes} bytes")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or any(p.fullmatch(scope["path"]) for p in self.exempt):
            await self.app(scope, receive, send)
            return
        for name, value in scope.get("headers", []):
            if name == b"content-length" and value.isdigit() and int(value) > self.max_bytes:
                await self._refuse(scope, receive, send)
                return
        received = 0

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise self._too_large()
            return message

        await self.app(scope, limited_receive, send)

    async def _refuse(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Answer 413 at once, in the one error format, without reading the body."""
        response = render_http_error(Request(scope, receive), self._too_large())
        await response(scope, receive, send)


class BodyPaceMiddleware:
    """Answers 408 to a request body that stalls or crawls (see the module's docstring)."""

    def __init__(self, app: ASGIApp, idle_seconds: float, min_bytes_per_second: float, grace_seconds: float) -> None:
        self.app, self.idle_seconds = app, idle_seconds
        self.min_rate, self.grace_seconds = min_bytes_per_second, grace_seconds

    def _too_slow(self, why: str) -> HTTPException:
        return HTTPException(
            408, f"the request body arrived too slowly ({why}); send it again", headers={"Connection": "close"}
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started: float | None = None
        received, done = 0, False

        async def paced_receive() -> Message:
            nonlocal started, received, done
            if done:  # after the body, receive() waits for the client to leave: no pace to keep
                return await receive()
            if started is None:  # from when the app first asks: a route may wait (for the database) before reading
                started = time.monotonic()
            try:
                async with asyncio.timeout(self.idle_seconds):
                    message = await receive()
            except TimeoutError:
                raise self._too_slow(f"nothing for {self.idle_seconds:g} s") from None
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                done = not message.get("more_body", False)
                elapsed = time.monotonic() - started
                if not done and elapsed > self.grace_seconds and received < self.min_rate * elapsed:
                    raise self._too_slow(f"{received / elapsed:.0f} bytes/s")
            return message

        await self.app(scope, paced_receive, send)
