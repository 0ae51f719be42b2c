"""Blob store, service credentials, signed webhooks, trace context, settings: the pieces without a database."""

from __future__ import annotations

import hashlib
import time
from pathlib import Path

import httpx
import pytest

from burgermelding_shared import service_auth, webhooks
from burgermelding_shared.blobstore import BlobCorrupted, BlobNotFound, LocalBlobStore
from burgermelding_shared.errors import ServiceError
from burgermelding_shared.settings import ServiceSettings
from burgermelding_shared.tracing import configure_tracing, continue_trace, current_trace_id, current_traceparent

SECRET = "x" * 40


def test_blob_store_is_content_addressed_and_checks_what_it_reads(tmp_path: Path) -> None:
    store = LocalBlobStore(tmp_path)
    digest = store.put_bytes(b"evidence")
    assert digest == hashlib.sha256(b"evidence").hexdigest()
    assert store.read_verified(digest) == b"evidence"
    assert store.put_bytes(b"evidence") == digest  # idempotent
    assert not list(tmp_path.rglob(".incoming-*"))  # no temporary files left behind
    store.path_for(digest).write_bytes(b"tampered")
    with pytest.raises(BlobCorrupted):
        store.read_verified(digest)


@pytest.mark.parametrize("key", ["../../etc/passwd", "a" * 63, "A" * 64, "/" + "a" * 63, ""])
def test_blob_keys_cannot_name_a_path(tmp_path: Path, key: str) -> None:
    with pytest.raises(BlobNotFound):
        LocalBlobStore(tmp_path).open(key)


def test_put_file_streams_a_file(tmp_path: Path) -> None:
    source = tmp_path / "photo.bin"
    source.write_bytes(b"\x00\x01" * 1_000_000)
    store = LocalBlobStore(tmp_path / "store")
    digest = store.put_file(source)
    assert store.read_verified(digest) == source.read_bytes()


def test_adopt_file_moves_an_upload_into_place(tmp_path: Path) -> None:
    store = LocalBlobStore(tmp_path / "store")
    upload = tmp_path / "upload-1"
    upload.write_bytes(b"\xff\xd8\xff" + b"\x07" * 500_000)
    expected = upload.read_bytes()
    digest = store.adopt_file(upload, hashlib.sha256(expected).hexdigest())
    assert store.read_verified(digest) == expected
    assert not upload.exists()  # moved, not copied
    again = tmp_path / "upload-2"
    again.write_bytes(expected)
    assert store.adopt_file(again, digest) == digest  # already held: the second upload is left to its owner
    assert again.exists()
    with pytest.raises(BlobNotFound):
        store.adopt_file(again, "../" + "a" * 61)


def test_service_token_round_trip_and_refusals() -> None:
    token = service_auth.issue_token(SECRET, "report-intake", "verification")
    assert service_auth.verify_token(SECRET, token, "verification", frozenset({"report-intake"})) == "report-intake"
    cases = [
        (service_auth.issue_token("y" * 40, "report-intake", "verification"), 401),  # forged with another key
        (service_auth.issue_token(SECRET, "report-intake", "dispatch-bridge"), 403),  # for another service
        (service_auth.issue_token(SECRET, "meldkamer", "verification"), 403),  # issuer not allowed here
        (service_auth.issue_token(SECRET, "report-intake", "verification", ttl=-120), 401),  # expired
        ("garbage", 401),
        (token[:-2] + "AA", 401),
    ]
    for bad, status in cases:
        with pytest.raises(ServiceError) as err:
            service_auth.verify_token(SECRET, bad, "verification", frozenset({"report-intake"}))
        assert err.value.status_code == status


def test_webhook_signatures() -> None:
    body = b'{"status":"Closed"}'
    headers = webhooks.signed_headers(SECRET, "evt-1", body)
    assert webhooks.verify(SECRET, headers, body) == "evt-1"
    with pytest.raises(ServiceError, match="signature"):
        webhooks.verify(SECRET, headers, body + b" ")  # body changed
    with pytest.raises(ServiceError, match="signature"):
        webhooks.verify("z" * 40, headers, body)  # signed with another secret
    stale = webhooks.signed_headers(SECRET, "evt-2", body, timestamp=int(time.time()) - 3600)
    with pytest.raises(ServiceError) as err:
        webhooks.verify(SECRET, stale, body)
    assert err.value.error == "stale_callback"
    rotated = {**headers, "webhook-signature": "v1,AAAA " + headers["webhook-signature"]}
    assert webhooks.verify(SECRET, rotated, body) == "evt-1"
    with pytest.raises(ServiceError):
        webhooks.verify(SECRET, {}, body)


def test_work_continues_the_trace_that_caused_it_or_starts_one() -> None:
    configure_tracing("test")
    assert current_trace_id() is None  # outside any span
    with continue_trace("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", "job"):
        assert current_trace_id() == "4bf92f3577b34da6a3ce929d0e0e4736"
        stored = current_traceparent()
        assert stored is not None and stored.split("-")[2] != "00f067aa0ba902b7"  # this span, a child
    seen = set()
    for bad in [None, "", "garbage", "00-" + "0" * 32 + "-00f067aa0ba902b7-01", "01-4bf92f35-00f067aa0ba902b7-01"]:
        with continue_trace(bad, "job"):
            trace_id = current_trace_id()
            assert trace_id is not None and len(trace_id) == 32 and trace_id != "0" * 32
            seen.add(trace_id)
    assert len(seen) == 5  # a new trace each time


async def test_exported_spans_say_how_a_request_was_handled_never_who_sent_it() -> None:
    from fastapi import FastAPI
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    from burgermelding_shared.tracing import AnonymousSpanExporter, app_telemetry

    raw, exported = InMemorySpanExporter(), InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(raw))
    provider.add_span_processor(SimpleSpanProcessor(AnonymousSpanExporter(exported)))
    app = FastAPI(telemetry={**app_telemetry(), "tracer_provider": provider})

    @app.get("/v1/media/{key}")
    async def media(key: str) -> dict[str, str]:
        return {"key": key}

    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app, client=("198.51.100.23", 50000)),
                                 base_url="http://bridge.internal") as client:
        response = await client.get("/v1/media/abc?expires=1799999999&signature=secret-signature", headers={
            "User-Agent": "Burgermelding/2.4 (Pixel 8)", "X-Forwarded-For": "203.0.113.77"})
        assert (await client.get("/healthz")).status_code == 404  # a probe's path: no span even when unknown
    assert response.status_code == 200
    (recorded,) = raw.get_finished_spans()
    everything = repr(dict(recorded.attributes or {}))
    # The telemetry records the path and the query (so this test can see them)...
    assert "1799999999" in everything and "/v1/media/abc" in everything
    (span,) = exported.get_finished_spans()
    attributes = dict(span.attributes or {})
    # ...and none of it leaves the process; the route template and the status do.
    for private in ("198.51.100.23", "Pixel 8", "secret-signature", "203.0.113.77", "/v1/media/abc", "1799999999"):
        assert private not in repr(attributes), private
    assert attributes["http.route"] == "/v1/media/{key}" and attributes["http.response.status_code"] == 200
    assert span.name == "GET /v1/media/{key}"

    # An exception recorded on a span (a database error with the report's text in its parameters) leaves only
    # its type: not its message, its stack, or the status description made from it.
    tracer = provider.get_tracer("test")
    with pytest.raises(ValueError), tracer.start_as_current_span("outbox deliver report.submitted"):
        raise ValueError("INSERT ... parameters ('fietsendief bij Jan de Vries, Dorpsstraat 1')")
    failed = exported.get_finished_spans()[-1]
    assert "Jan de Vries" in repr(raw.get_finished_spans()[-1].events[0].attributes)  # recorded raw...
    assert [dict(event.attributes or {}) for event in failed.events] == [{"exception.type": "ValueError"}]
    assert failed.status.description is None and "Jan de Vries" not in repr(failed.status)  # ...never exported


def test_placeholder_secrets_are_refused_in_production() -> None:
    ServiceSettings(environment="development")  # placeholders are fine locally
    with pytest.raises(ValueError, match="placeholder"):
        ServiceSettings(environment="production")
    with pytest.raises(ValueError, match="placeholder"):
        ServiceSettings(environment="production", internal_secret="too-short")
    ServiceSettings(environment="production", internal_secret="s" * 40)


async def test_priority_slots_hand_a_free_slot_to_urgent_work_first() -> None:
    import asyncio

    from burgermelding_shared.slots import PrioritySlots

    slots = PrioritySlots(1, reserve=0)
    started: list[str] = []
    gate = asyncio.Event()

    async def work(name: str, urgent: bool) -> None:
        async with slots.slot(urgent):
            started.append(name)
            if name == "first":
                await gate.wait()

    first = asyncio.create_task(work("first", False))
    await asyncio.sleep(0)
    waiting = [asyncio.create_task(work(n, u)) for n, u in (("ordinary-1", False), ("ordinary-2", False),
                                                              ("urgent", True))]
    cancelled = asyncio.create_task(work("cancelled", True))
    await asyncio.sleep(0)
    cancelled.cancel()
    gate.set()
    await asyncio.gather(first, *waiting)
    assert started == ["first", "urgent", "ordinary-1", "ordinary-2"]
    assert slots.busy == 0


async def test_urgent_work_starts_beside_ordinary_work_within_the_reserve() -> None:
    import asyncio

    from burgermelding_shared.slots import PrioritySlots

    slots = PrioritySlots(2, reserve=1)
    gate = asyncio.Event()
    running: list[str] = []

    async def work(name: str, urgent: bool) -> None:
        async with slots.slot(urgent):
            running.append(name)
            await gate.wait()

    tasks = [asyncio.create_task(work(f"ordinary-{n}", False)) for n in range(3)]
    tasks += [asyncio.create_task(work(f"urgent-{n}", True)) for n in range(2)]
    await asyncio.sleep(0.01)
    # Two ordinary photos use the cores; one urgent starts at once beside them; the rest wait.
    assert running == ["ordinary-0", "ordinary-1", "urgent-0"] and slots.busy == 3
    gate.set()
    await asyncio.gather(*tasks)
    assert running[3:] == ["urgent-1", "ordinary-2"] and slots.busy == 0


async def test_ordinary_work_runs_in_lower_priority_threads_and_urgent_work_does_not() -> None:
    import os
    import threading

    from burgermelding_shared.slots import PriorityExecutor

    def niceness() -> int:
        return os.getpriority(os.PRIO_PROCESS, threading.get_native_id())

    work = PriorityExecutor(2)
    try:
        base = os.getpriority(os.PRIO_PROCESS, 0)
        assert await work.run(True, niceness) == base
        assert await work.run(False, niceness) == min(19, base + 5)
    finally:
        work.shutdown()
