"""Connections that never finish their headers are closed (slowloris).

uvicorn times out a connection only while it idles between requests; one that sends a request line and then
a header byte now and then stays open for as long as its sender likes, and enough of them use up the file
descriptors a service has. This protocol gives the request line and headers `header_timeout` seconds from their
first byte (or from the connection's opening), then answers 408 and closes. What comes after the headers, the
body, keeps a pace of its own (`bodylimit.BodyPaceMiddleware`).
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

_BODY = json.dumps(
    {
        "type": "tag:burgermelding.politie.nl,2026:problem:request_timeout",
        "title": "Request Timeout",
        "status": 408,
        "error": "request_timeout",
        "detail": "the request's headers arrived too slowly; send it again",
        "detail_nl": "De headers van het verzoek kwamen te langzaam binnen; stuur het opnieuw",
    }
).encode()
_TOO_SLOW = (
    b"HTTP/1.1 408 Request Timeout\r\ncontent-type: application/problem+json\r\nconnection: close\r\n"
    b"content-length: " + str(len(_BODY)).encode() + b"\r\n\r\n" + _BODY
)


def header_timeout_protocol(header_timeout: float) -> type[asyncio.Protocol]:
    """uvicorn's HTTP protocol (httptools), with a deadline on each request's line and headers."""

    class HeaderDeadlineProtocol(HttpToolsProtocol):
        _header_deadline: asyncio.TimerHandle | None = None

        def connection_made(self, transport: Any) -> None:
            super().connection_made(transport)
            self._start_header_deadline()

        def on_message_begin(self) -> None:
            super().on_message_begin()
            self._start_header_deadline()

        def on_headers_complete(self) -> None:
            self._cancel_header_deadline()
            super().on_headers_complete()

        def connection_lost(self, exc: Exception | None) -> None:
            self._cancel_header_deadline()
            super().connection_lost(exc)

        def _start_header_deadline(self) -> None:
            self._cancel_header_deadline()
            self._header_deadline = self.loop.call_later(header_timeout, self._headers_too_slow)

        def _cancel_header_deadline(self) -> None:
            if self._header_deadline is not None:
                self._header_deadline.cancel()
                self._header_deadline = None

        def _headers_too_slow(self) -> None:
            self._header_deadline = None
            if self.cycle is not None and not self.cycle.response_complete:
                # An earlier (pipelined) request is still being answered: judge these headers once it is done,
                # and never write a 408 into the middle of its response.
                self._start_header_deadline()
            elif not self.transport.is_closing():
                self.transport.write(_TOO_SLOW)
                self.transport.close()

    return HeaderDeadlineProtocol
