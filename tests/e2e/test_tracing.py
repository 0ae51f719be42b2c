"""Traces exported over OTLP: one report's trace, from the phone's `traceparent` to the control room and back,
in spans that every one of the four services sends to a collector (here a real HTTP server that decodes what
OpenTelemetry's OTLP/HTTP exporter sends, as an OpenTelemetry Collector would)."""

from __future__ import annotations

import secrets
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from tests.helpers import make_jpeg, report_json
from tests.suite import SERVICES, Suite, follow, local_http, start_suite, submit

# Runs on SQLite only (conftest.py, END_TO_END_DATABASES): trace context over HTTP, which no database decides.
pytestmark = pytest.mark.runs_on("sqlite")

PHONE_AGENT = "Burgermelding/2.4 (Android 15; Pixel 8)"
PHONE_ADDRESS = "203.0.113.77"


@dataclass
class Span:
    service: str
    name: str
    trace_id: str
    span_id: str
    parent_span_id: str
    kind: int


@dataclass
class Collector:
    """Receives OTLP/HTTP exports (protobuf) on /v1/traces and keeps every span."""

    spans: list[Span] = field(default_factory=list)
    bodies: list[bytes] = field(default_factory=list)
    attributes: set[str] = field(default_factory=set)
    paths: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def take(self, path: str, body: bytes) -> None:
        request = ExportTraceServiceRequest.FromString(body)
        with self.lock:
            self.paths.append(path)
            self.bodies.append(body)
            for resource_spans in request.resource_spans:
                service = next(
                    a.value.string_value for a in resource_spans.resource.attributes if a.key == "service.name"
                )
                for scope_spans in resource_spans.scope_spans:
                    self.attributes |= {a.key for s in scope_spans.spans for a in s.attributes}
                    self.spans.extend(
                        Span(service, s.name, s.trace_id.hex(), s.span_id.hex(), s.parent_span_id.hex(), s.kind)
                        for s in scope_spans.spans
                    )

    def of_trace(self, trace_id: str) -> list[Span]:
        with self.lock:
            return [span for span in self.spans if span.trace_id == trace_id]


def serve(collector: Collector) -> ThreadingHTTPServer:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("content-length", 0)))
            collector.take(self.path, body)
            self.send_response(200)
            self.send_header("content-type", "application/x-protobuf")
            self.send_header("content-length", "0")
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


@pytest.fixture(scope="module")
def traced(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Suite, Collector]]:
    collector = Collector()
    server = serve(collector)
    endpoint = f"http://127.0.0.1:{server.server_address[1]}"
    env = {f"{prefix}OTLP_ENDPOINT": endpoint for _package, prefix in SERVICES.values()}
    running = start_suite(tmp_path_factory.mktemp("traced"), env)
    try:
        yield running, collector
    finally:
        running.stop()
        server.shutdown()


def test_one_report_is_one_trace_across_all_four_services(traced: tuple[Suite, Collector]) -> None:
    suite, collector = traced
    trace_id, phone_span = secrets.token_hex(16), secrets.token_hex(8)
    response = submit(
        suite,
        report_json(description="Traced: fietsendiefstal"),
        [make_jpeg(1200, 900, pattern=5)],
        "e2e-traced-0001",
        headers={
            "traceparent": f"00-{trace_id}-{phone_span}-01",
            "User-Agent": PHONE_AGENT,
            "X-Forwarded-For": PHONE_ADDRESS,
        },
    )
    assert response.status_code == 202, response.text
    # The response names the trace and intake's own span in it, not the phone's.
    _version, answered_trace, answered_span, _flags = response.headers["traceparent"].split("-")
    assert answered_trace == trace_id and answered_span != phone_span
    assert follow(suite, response.json(), "closed")["status"] == "closed"

    wanted = {"report-intake", "verification", "dispatch-bridge", "meldkamer"}
    deadline = time.monotonic() + 30  # spans are exported in batches, about once a second
    while {span.service for span in collector.of_trace(trace_id)} != wanted and time.monotonic() < deadline:
        time.sleep(0.2)
    spans = collector.of_trace(trace_id)
    assert {span.service for span in spans} == wanted, sorted({(s.service, s.name) for s in spans})
    assert set(collector.paths) == {"/v1/traces"}
    names = {(span.service, span.name) for span in spans}
    assert ("report-intake", "POST /v1/reports") in names
    assert ("verification", "verify report") in names
    assert any(service == "dispatch-bridge" and name.startswith("outbox deliver") for service, name in names)
    # The intake's request span is a child of the phone's span; every other span has its parent in the trace.
    root = next(span for span in spans if span.name == "POST /v1/reports" and span.service == "report-intake")
    assert root.parent_span_id == phone_span

    def orphans() -> list[Span]:
        spans = collector.of_trace(trace_id)
        by_id = {span.span_id for span in spans}
        return [s for s in spans if s.parent_span_id not in by_id and s.span_id != root.span_id]

    # Each service exports in its own batches: a parent may arrive a second after its child.
    deadline = time.monotonic() + 15
    while orphans() and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not orphans(), [(s.service, s.name) for s in orphans()]
    spans = collector.of_trace(trace_id)
    # Nothing exported says who sent the report: no address, user agent, URL, query or signature.
    exported = b"".join(collector.bodies)
    assert PHONE_AGENT.encode() not in exported and PHONE_ADDRESS.encode() not in exported
    assert "http.route" in collector.attributes  # how a request was handled is exported
    assert not collector.attributes & {
        "client.address",
        "net.peer.ip",
        "http.client_ip",
        "user_agent.original",
        "http.user_agent",
        "url.full",
        "http.url",
        "http.target",
        "url.query",
    }
    assert b"sig=" not in exported and b"signature" not in exported.lower()


def test_health_probes_make_no_spans(traced: tuple[Suite, Collector]) -> None:

    suite, collector = traced
    probes, after = secrets.token_hex(16), secrets.token_hex(16)
    traced_route = {"intake": "/v1/categories", "bridge": "/v1/dispatch/incidents"}  # (the bridge's answers 401)
    for name in ("intake", "bridge"):
        for path in ("/healthz", "/readyz", "/metrics"):
            local_http().get(f"{suite.urls[name]}{path}", headers={"traceparent": f"00-{probes}-{'1' * 16}-01"})
        # Then a request that is traced. A service exports its spans in the order they end: once this one's
        # span has arrived, any span the probes before it had made has arrived too.
        local_http().get(
            f"{suite.urls[name]}{traced_route[name]}", headers={"traceparent": f"00-{after}-{'2' * 16}-01"}
        )
    deadline = time.monotonic() + 30  # spans are exported in batches, about once a second
    while {span.service for span in collector.of_trace(after)} != {"report-intake", "dispatch-bridge"}:
        assert time.monotonic() < deadline, "the traced requests after the probes were never exported"
        time.sleep(0.2)
    assert collector.of_trace(probes) == []
