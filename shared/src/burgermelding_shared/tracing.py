"""Traces with OpenTelemetry: one W3C trace from the citizen's request to the control room and back.

Every service runs OpenTelemetry's SDK. FastAPI's own telemetry makes each request a span in the trace that
the incoming `traceparent` header names (or a new trace), OpenTelemetry's httpx instrumentation sends `traceparent` on
every outgoing call, and the outbox and the verification jobs store the `traceparent` of the work that caused
them, so that a delivery or a job continues that trace later, in another process if need be. Spans are exported
over OTLP/HTTP only when an endpoint is configured (`*_OTLP_ENDPOINT`); without one they go nowhere, and the
trace id still travels and is in every log line.

The instrumentation records the client's address, its user agent, `X-Forwarded-For` and full URLs (a signed
photo link's signature among them). None of that leaves the process: the exporter passes on only the
attributes in `EXPORTED_ATTRIBUTES`, which say how a request was handled, never who sent it.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator, Sequence

import httpx
from fastapi.telemetry import TelemetryConfig
from opentelemetry import context, trace
from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import Event, ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult
from opentelemetry.trace import Link, SpanKind, Status
from starlette.types import Scope

__all__ = [
    "SpanKind",
    "app_telemetry",
    "configure_tracing",
    "continue_trace",
    "current_trace_id",
    "current_traceparent",
    "instrument_client",
    "shutdown_tracing",
]
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

log = logging.getLogger(__name__)
_propagator = TraceContextTextMapPropagator()
_tracer = trace.get_tracer("burgermelding")
# Probes and scrapes come every few seconds from machines, not citizens: no spans for them.
UNTRACED_PATHS = frozenset({"/healthz", "/readyz", "/metrics"})


EXPORTED_ATTRIBUTES = frozenset(
    {
        "http.request.method",
        "http.method",
        "http.route",
        "http.response.status_code",
        "http.status_code",
        "error.type",
        "url.scheme",
        "http.scheme",
        "network.protocol.version",
        "http.flavor",
        "server.address",
        "server.port",  # this service's own address, or the service it calls
    }
)


class AnonymousSpanExporter(SpanExporter):
    """Exports spans with their attributes cut down to `EXPORTED_ATTRIBUTES` (one rule, at the way out)."""

    def __init__(self, inner: SpanExporter) -> None:
        self.inner = inner

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        return self.inner.export([anonymous(span) for span in spans])

    def shutdown(self) -> None:
        self.inner.shutdown()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return self.inner.force_flush(timeout_millis)


def anonymous(span: ReadableSpan) -> ReadableSpan:
    """The span without what could name a person: attributes cut to the allow-list, and of a recorded
    exception only its type (its message and stack can hold SQL parameters, report text or a signed URL), the
    status without its description (the exception's text again), links without attributes."""
    kept = {key: value for key, value in (span.attributes or {}).items() if key in EXPORTED_ATTRIBUTES}
    events = [
        Event(
            event.name,
            {key: value for key, value in (event.attributes or {}).items() if key == "exception.type"},
            event.timestamp,
        )
        for event in span.events
    ]
    links = [Link(link.context) for link in span.links]
    return ReadableSpan(
        name=span.name,
        context=span.context,
        parent=span.parent,
        resource=span.resource,
        attributes=kept,
        events=events,
        links=links,
        kind=span.kind,
        status=Status(span.status.status_code),
        start_time=span.start_time,
        end_time=span.end_time,
        instrumentation_scope=span.instrumentation_scope,
    )


def configure_tracing(service: str, otlp_endpoint: str = "") -> None:
    """The process's tracer provider, once (a process is one service; tests run several in one process, and
    the first configures it). With an endpoint, spans are batched and exported to `<endpoint>/v1/traces`."""
    if isinstance(trace.get_tracer_provider(), TracerProvider):
        return
    provider = TracerProvider(resource=Resource.create({"service.name": service}))
    if otlp_endpoint:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        exporter = AnonymousSpanExporter(OTLPSpanExporter(endpoint=otlp_endpoint.rstrip("/") + "/v1/traces"))
        provider.add_span_processor(BatchSpanProcessor(exporter, schedule_delay_millis=1000))
        log.info("exporting traces over OTLP", extra={"endpoint": otlp_endpoint})
    trace.set_tracer_provider(provider)


def shutdown_tracing() -> None:
    """Export what is still batched (on the way out of a process)."""
    provider = trace.get_tracer_provider()
    if isinstance(provider, TracerProvider):
        provider.force_flush(timeout_millis=5000)


def app_telemetry() -> TelemetryConfig:
    """FastAPI's telemetry as we use it: a span per request, and nothing else of it. Its metrics are ours
    (metrics.py, Prometheus), its log records would duplicate our log lines, and spans for every dependency
    and serialisation step cost more than they tell."""
    return TelemetryConfig(tracing=True, metrics=False, logs=False, operation_spans=False, exclude=_untraced)


def _untraced(scope: Scope) -> bool:
    return scope.get("path") in UNTRACED_PATHS


def instrument_client(client: httpx.AsyncClient) -> None:
    HTTPXClientInstrumentor.instrument_client(client)


def current_trace_id() -> str | None:
    """The current trace id as 32 hex digits, or None outside any span."""
    span_context = trace.get_current_span().get_span_context()
    return format(span_context.trace_id, "032x") if span_context.is_valid else None


def current_traceparent() -> str | None:
    """The `traceparent` of the current span, to store with work that continues the trace later."""
    carrier: dict[str, str] = {}
    _propagator.inject(carrier)
    return carrier.get("traceparent")


@contextlib.contextmanager
def continue_trace(traceparent: str | None, name: str, kind: SpanKind = SpanKind.INTERNAL) -> Iterator[None]:
    """Work done outside a request (an outbox delivery, a verification job) as a span of the trace that caused
    it; a missing or malformed `traceparent` starts a new trace."""
    parent = (
        _propagator.extract({"traceparent": traceparent}, context=context.Context())
        if traceparent
        else context.Context()
    )
    with _tracer.start_as_current_span(name, context=parent, kind=kind):
        yield
