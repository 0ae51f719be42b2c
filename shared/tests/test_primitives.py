"""Blob store, service credentials, signed webhooks, trace context, settings: the pieces without a database."""

from __future__ import annotations

import base64
import hashlib
import json
import time
from pathlib import Path

import httpx
import pytest

from burgermelding_shared import service_auth, webhooks
from burgermelding_shared.blobstore import BlobCorrupted, BlobNotFound, LocalBlobStore
from burgermelding_shared.errors import ServiceError
from burgermelding_shared.settings import ServiceSettings
from burgermelding_shared.tracing import configure_tracing, continue_trace, current_trace_id, current_traceparent


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


def _credential(key: service_auth.ServiceKey, **claims: object) -> str:
    """A credential with the given claims changed, signed by `key` (to make the ones our services never make)."""
    import jwt

    now = int(time.time())
    payload = {"iss": key.issuer, "aud": "verification", "iat": now, "exp": now + 60, **claims}
    return jwt.encode(
        {k: v for k, v in payload.items() if v is not None},
        key.private_key,
        algorithm="EdDSA",
        headers={"kid": key.kid},
    )


def _damaged_signature(token: str) -> str:
    """The token with one character of its signature changed: always a change (replacing the last two with "AA"
    was none for a signature that ended so, about once in 256 runs), and in a character that carries bits."""
    head, signature = token.rsplit(".", 1)
    changed = "B" if signature[10] == "A" else "A"
    return f"{head}.{signature[:10]}{changed}{signature[11:]}"


def test_service_credentials_round_trip_and_refusals() -> None:
    intake, bridge = service_auth.new_key("report-intake", "intake-1"), service_auth.new_key("dispatch-bridge", "b-1")
    trusted = service_auth.TrustedKeys.load(
        {"report-intake": [intake.public_jwk()], "dispatch-bridge": [bridge.public_jwk()]}
    )
    only_intake = frozenset({"report-intake"})
    assert trusted.verify(intake.issue("verification"), "verification", only_intake) == "report-intake"
    impostor = service_auth.new_key("report-intake", "intake-1")  # the right name and key id, another key
    stolen_id = service_auth.ServiceKey("report-intake", "b-1", bridge.private_key)  # the bridge's key, intake's name
    untrusted = service_auth.development_key("report-intake")
    cases = [
        (impostor.issue("verification"), "invalid_service_credential"),
        (stolen_id.issue("verification"), "invalid_service_credential"),  # a key is bound to its own service
        (untrusted.issue("verification"), "unknown_service_key"),
        (intake.issue("dispatch-bridge"), "wrong_audience"),
        (bridge.issue("verification"), "issuer_not_allowed"),  # trusted, but may not call this endpoint
        (intake.issue("verification", ttl=-120), "expired_service_credential"),
        (_credential(intake, exp=int(time.time()) + 86_400), "invalid_service_credential"),  # too long-lived
        (_credential(intake, exp=None), "invalid_service_credential"),
        (_credential(intake, aud=None), "invalid_service_credential"),
        ("garbage", "invalid_service_credential"),
        ("a.b.c", "invalid_service_credential"),
        (_damaged_signature(intake.issue("verification")), "invalid_service_credential"),
    ]
    for bad, reason in cases:
        with pytest.raises(ServiceError) as err:
            trusted.verify(bad, "verification", only_intake)
        assert err.value.error == reason, bad

    # An unsigned token ("alg": "none") with a trusted key id is refused, whatever it claims.
    def b64(part: dict[str, object]) -> str:
        return base64.urlsafe_b64encode(json.dumps(part).encode()).rstrip(b"=").decode()

    unsigned = f"{b64({'alg': 'none', 'kid': 'intake-1'})}.{b64({'iss': 'report-intake', 'aud': 'verification'})}."
    with pytest.raises(ServiceError, match="not valid"):
        trusted.verify(unsigned, "verification", only_intake)


def test_service_key_rotation_by_key_id() -> None:
    old, new = service_auth.new_key("report-intake", "2026-11"), service_auth.new_key("report-intake", "2026-12")
    before = service_auth.TrustedKeys.load({"report-intake": [old.public_jwk()]})
    during = service_auth.TrustedKeys.load({"report-intake": [old.public_jwk(), new.public_jwk()]})
    after = service_auth.TrustedKeys.load({"report-intake": [new.public_jwk()]})
    assert before.verify(old.issue("verification"), "verification", None) == "report-intake"
    for key in (old, new):  # while both are trusted, replicas still on the old key and those on the new one work
        assert during.verify(key.issue("verification"), "verification", None) == "report-intake"
    assert after.verify(new.issue("verification"), "verification", None) == "report-intake"
    with pytest.raises(ServiceError, match="does not trust"):
        after.verify(old.issue("verification"), "verification", None)
    # A key written to and read from the settings is the same key.
    reloaded = service_auth.load_service_key("report-intake", new.private_jwk())
    assert after.verify(reloaded.issue("verification"), "verification", None) == "report-intake"


def test_trusted_keys_refuse_private_keys_missing_ids_and_other_curves() -> None:
    key = service_auth.new_key("report-intake", "k1")
    with pytest.raises(ValueError, match="private key"):
        service_auth.TrustedKeys.load({"report-intake": [key.private_jwk()]})
    with pytest.raises(ValueError, match="key id"):
        service_auth.TrustedKeys.load({"report-intake": [{k: v for k, v in key.public_jwk().items() if k != "kid"}]})
    with pytest.raises(ValueError, match="Ed25519"):
        service_auth.TrustedKeys.load({"report-intake": [{**key.public_jwk(), "crv": "X25519"}]})
    with pytest.raises(ValueError, match="twice"):
        service_auth.TrustedKeys.load({"report-intake": [key.public_jwk()], "verification": [key.public_jwk()]})
    with pytest.raises(ValueError, match="private key"):
        service_auth.load_service_key("report-intake", key.public_jwk())


WEBHOOK_OLD = {"2026-11": "whsec_" + base64.b64encode(b"o" * 32).decode()}
WEBHOOK_NEW = {"2026-12": "whsec_" + base64.b64encode(b"n" * 32).decode()}


def test_webhook_signatures() -> None:
    body = b'{"status":"Closed"}'
    headers = webhooks.signed_headers(WEBHOOK_OLD, "evt-1", body)
    assert webhooks.verify(WEBHOOK_OLD, headers, body) == webhooks.VerifiedWebhook("evt-1", "2026-11")
    with pytest.raises(ServiceError, match="signature"):
        webhooks.verify(WEBHOOK_OLD, headers, body + b" ")  # body changed
    with pytest.raises(ServiceError, match="signature"):
        webhooks.verify(WEBHOOK_NEW, headers, body)  # signed with another secret
    with pytest.raises(ServiceError, match="signature"):
        webhooks.verify(WEBHOOK_OLD, {**headers, "webhook-id": "evt-2"}, body)  # the id is signed too
    stale = webhooks.signed_headers(WEBHOOK_OLD, "evt-2", body, timestamp=int(time.time()) - 3600)
    with pytest.raises(ServiceError) as err:
        webhooks.verify(WEBHOOK_OLD, stale, body)
    assert err.value.error == "stale_callback"
    for malformed in ("v1,AAAA", "v1", "v1,!!!", "v2,abc", ","):
        with pytest.raises(ServiceError, match="signature"):
            webhooks.verify(WEBHOOK_OLD, {**headers, "webhook-signature": malformed}, body)
    with pytest.raises(ServiceError, match="signature"):
        webhooks.verify(WEBHOOK_OLD, headers, b"\xff\xfe")  # not UTF-8: refused, not a 500
    with pytest.raises(ServiceError):
        webhooks.verify(WEBHOOK_OLD, {}, body)


def test_webhook_headers_that_are_not_plain_digits_and_weak_keys_are_refused() -> None:
    body = b"{}"
    headers = webhooks.signed_headers(WEBHOOK_OLD, "evt-9", body)
    for timestamp in ("\u00b2", "9" * 5000, "-1", " 1"):  # a superscript two is a digit to str.isdigit
        with pytest.raises(ServiceError, match="required"):
            webhooks.verify(WEBHOOK_OLD, {**headers, "webhook-timestamp": timestamp}, body)
    for malformed in ("whsec_" + "!" * 40 + "AAAA", base64.b64encode(b"k" * 32).decode()):  # not base64, no prefix
        with pytest.raises(ValueError):
            webhooks.check_keys({"k": malformed})
    assert webhooks.secret_fields("keys", {"k": "whsec_" + base64.b64encode(b"s" * 8).decode()}) == {"keys[k]": "short"}
    published = webhooks.development_keys()[webhooks.DEVELOPMENT_KEY_ID]
    assert webhooks.secret_fields("keys", {"renamed": published})["keys[renamed]"].startswith("dev-only-")


def test_a_development_key_under_another_id_is_still_refused_in_production() -> None:
    renamed = {**service_auth.development_key("service").private_jwk(), "kid": "prod-2026"}
    bridge = service_auth.new_key("dispatch-bridge", "b-1")
    trusted = {"dispatch-bridge": [bridge.public_jwk()]}
    with pytest.raises(ValueError, match="service_key"):
        ServiceSettings(environment="production", service_key=json.dumps(renamed), trusted_service_keys=trusted)
    dev_public = {**service_auth.development_key("dispatch-bridge").public_jwk(), "kid": "prod-2026"}
    own = json.dumps(service_auth.new_key("service", "s-1").private_jwk())
    with pytest.raises(ValueError, match="trusted_service_keys"):
        ServiceSettings(
            environment="production", service_key=own, trusted_service_keys={"dispatch-bridge": [dev_public]}
        )


def test_webhook_key_rotation_by_key_id() -> None:
    """Receiver adds the new key, sender signs with both, then with the new one only; the receiver sees by key id
    when the old one is no longer used and drops it."""
    body = b'{"status":"Closed"}'
    receiver_during = {**WEBHOOK_OLD, **WEBHOOK_NEW}
    assert webhooks.verify(receiver_during, webhooks.signed_headers(WEBHOOK_OLD, "e1", body), body).key_id == "2026-11"
    both = webhooks.signed_headers(receiver_during, "e2", body)
    assert len(both["webhook-signature"].split()) == 2
    assert webhooks.verify(WEBHOOK_OLD, both, body).key_id == "2026-11"  # a receiver not yet rotated still accepts
    assert webhooks.verify(WEBHOOK_NEW, both, body).key_id == "2026-12"
    assert webhooks.verify(receiver_during, webhooks.signed_headers(WEBHOOK_NEW, "e3", body), body).key_id == "2026-12"
    with pytest.raises(ServiceError, match="signature"):
        webhooks.verify(WEBHOOK_NEW, webhooks.signed_headers(WEBHOOK_OLD, "e4", body), body)


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

    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app, client=("198.51.100.23", 50000)), base_url="http://bridge.internal"
    ) as client:
        response = await client.get(
            "/v1/media/abc?expires=1799999999&signature=secret-signature",
            headers={"User-Agent": "Burgermelding/2.4 (Pixel 8)", "X-Forwarded-For": "203.0.113.77"},
        )
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
    key, bridge = service_auth.new_key("service", "s-1"), service_auth.new_key("dispatch-bridge", "b-1")
    real = {
        "service_key": json.dumps(key.private_jwk()),
        "trusted_service_keys": {"dispatch-bridge": [bridge.public_jwk()]},
    }
    ServiceSettings(environment="production", **real)
    with pytest.raises(ValueError, match=r"placeholder.*service_key"):
        ServiceSettings(environment="production", trusted_service_keys=real["trusted_service_keys"])
    with pytest.raises(ValueError, match=r"placeholder.*trusted_service_keys"):
        ServiceSettings(environment="production", service_key=real["service_key"])
    dev = service_auth.development_key("dispatch-bridge").public_jwk()
    with pytest.raises(ValueError, match="trusted_service_keys"):  # one published key among real ones
        ServiceSettings(
            environment="production",
            service_key=real["service_key"],
            trusted_service_keys={"dispatch-bridge": [bridge.public_jwk(), dev]},
        )
    with pytest.raises(ValueError, match="not JSON"):
        ServiceSettings(service_key="not json")


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
    waiting = [
        asyncio.create_task(work(n, u)) for n, u in (("ordinary-1", False), ("ordinary-2", False), ("urgent", True))
    ]
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
