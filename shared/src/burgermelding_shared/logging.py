"""Structured JSON logs, one object per line, each carrying the current trace id.

Nothing here logs client addresses, user agents, headers or bodies: citizen routes must stay anonymous,
and the access log below records only method, route, status and duration.
"""

from __future__ import annotations

import logging
import sys
import time
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from pythonjsonlogger.core import RESERVED_ATTRS
from pythonjsonlogger.json import JsonFormatter as LibraryJsonFormatter
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from burgermelding_shared.tracing import current_trace_id, current_traceparent

if TYPE_CHECKING:
    from burgermelding_shared.metrics import Metrics


class JsonFormatter(LibraryJsonFormatter):
    """python-json-logger's formatter with our field names, UTC times in milliseconds and the trace id; the
    `extra` of a log call becomes fields of its own."""

    def __init__(self, service: str) -> None:
        super().__init__(
            ["asctime", "levelname", "name", "message"],
            rename_fields={
                "asctime": "ts",
                "levelname": "level",
                "name": "logger",
                "message": "msg",
                "exc_info": "exc",
            },
            static_fields={"service": service},
            reserved_attrs=[*RESERVED_ATTRS, "color_message"],  # uvicorn's coloured copy
            json_default=str,
            json_ensure_ascii=False,
        )

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:
        return datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds")

    def add_fields(self, log_data: dict[str, Any], record: logging.LogRecord, message_dict: dict[str, Any]) -> None:
        super().add_fields(log_data, record, message_dict)
        log_data["level"] = record.levelname.lower()
        trace_id = current_trace_id()
        if trace_id is not None:
            log_data["trace_id"] = trace_id


def configure_logging(service: str, level: str = "INFO") -> None:
    """Send every log record, uvicorn's included, as JSON to stderr."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter(service))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for name in ("uvicorn", "uvicorn.error"):
        logging.getLogger(name).handlers[:] = []
        logging.getLogger(name).propagate = True
    # uvicorn's access log writes the client address; it is switched off and replaced by AccessLogMiddleware.
    logging.getLogger("uvicorn.access").disabled = True
    logging.getLogger("httpx").setLevel(logging.WARNING)


access_log = logging.getLogger("burgermelding.access")


class AccessLogMiddleware:
    """One anonymous access-log line and latency sample per request, and the request's `traceparent` on the
    response (so a report of a problem can name its trace). Runs inside FastAPI's telemetry, whose span is the
    request's (tracing.py)."""

    def __init__(self, app: ASGIApp, metrics: Metrics | None = None) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        traceparent = current_traceparent()
        started = time.perf_counter()
        status = 500

        async def send_wrapper(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                if traceparent:
                    message["headers"] = [*message.get("headers", []), (b"traceparent", traceparent.encode())]
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            route = getattr(scope.get("route"), "path", None) or "unmatched"
            seconds = time.perf_counter() - started
            access_log.info(
                "request",
                extra={
                    "method": scope.get("method"),
                    "route": route,
                    "status": status,
                    "duration_ms": round(seconds * 1000, 2),
                },
            )
            if self.metrics is not None:
                self.metrics.request_seconds.labels(route, scope.get("method"), str(status)).observe(seconds)
