"""A cap on request bodies, applied before anything reads them.

FastAPI reads a JSON body in full before the route's dependencies run, so without a cap anyone, with or
without a credential, could make a service hold a gigabyte in memory just to be told 401. Bodies are refused
when their declared length is over the cap, and cut off while streaming when they pass it undeclared.
Routes that stream large uploads to disk under limits of their own are exempt (intake's photo uploads).
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from burgermelding_shared.errors import render_http_error

DEFAULT_MAX_BODY_BYTES = 1024 * 1024


class BodySizeLimitMiddleware:
    def __init__(self, app: ASGIApp, max_bytes: int = DEFAULT_MAX_BODY_BYTES,
                 exempt: Iterable[str] = ()) -> None:
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
