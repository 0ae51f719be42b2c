"""W3C trace context: one trace id carried from the citizen's request to the control room and back."""

from __future__ import annotations

import contextlib
import contextvars
import re
import secrets
from collections.abc import Iterator
from dataclasses import dataclass

_TRACEPARENT = re.compile(r"^00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$")


@dataclass(frozen=True)
class TraceContext:
    trace_id: str
    span_id: str
    flags: str = "01"

    @property
    def traceparent(self) -> str:
        return f"00-{self.trace_id}-{self.span_id}-{self.flags}"

    def child(self) -> TraceContext:
        """A new span in the same trace, for an outgoing hop."""
        return TraceContext(self.trace_id, secrets.token_hex(8), self.flags)


current_trace: contextvars.ContextVar[TraceContext | None] = contextvars.ContextVar(
    "current_trace", default=None
)


def parse_traceparent(value: str | None) -> TraceContext | None:
    """The context in a `traceparent` header, or None when absent or malformed (all-zero ids are invalid)."""
    if not value:
        return None
    match = _TRACEPARENT.match(value.strip().lower())
    if not match:
        return None
    trace_id, span_id, flags = match.groups()
    if trace_id == "0" * 32 or span_id == "0" * 16:
        return None
    return TraceContext(trace_id, span_id, flags)


def new_trace() -> TraceContext:
    return TraceContext(secrets.token_hex(16), secrets.token_hex(8))


@contextlib.contextmanager
def continue_trace(traceparent: str | None) -> Iterator[None]:
    """Work done outside a request (a worker, a relay callback) continues the trace that caused it."""
    parent = parse_traceparent(traceparent)
    token = current_trace.set(parent.child() if parent else new_trace())
    try:
        yield
    finally:
        current_trace.reset(token)


def outgoing_traceparent() -> str:
    """The `traceparent` to send on an outgoing call: a child of the current span, or a fresh trace."""
    ctx = current_trace.get()
    return (ctx.child() if ctx else new_trace()).traceparent
