"""Whatever a phone or an attacker sends: after each, the service still answers and nothing half-stored remains."""

from __future__ import annotations

import io
import json
import os
import struct
import zlib
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from report_intake.config import IntakeSettings
from tests.helpers import gps_tags, make_jpeg, report_json
from tests.intake_support import post_report, stored_counts

NOTHING = {"reports": 0, "photos": 0, "timeline": 0, "outbox": 0, "keys": 0, "blobs": 0, "uploads": 0}


def bomb_png(width: int = 100_000, height: int = 100_000) -> bytes:
    """A tiny PNG that claims 10 billion pixels: the header is honest about its size, the data is a few rows."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)  # 8-bit greyscale
    rows = zlib.compress(b"\x00" * (width + 1) * 4, 9)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", rows) + chunk(b"IEND", b"")


async def expect_refused(intake: Any, response: Any, status: int, error: str) -> None:
    assert response.status_code == status, response.text
    assert response.json()["error"] == error and response.json()["detail"]
    assert await stored_counts(intake) == NOTHING
    assert (await intake.client.get("/healthz")).status_code == 200


def bomb_heic(width: int, height: int) -> bytes:
    """A real 64x64 HEIC whose image spatial extents ('ispe') claim another size: libheif reports the claim."""
    import pillow_heif

    pillow_heif.register_heif_opener()
    buffer = io.BytesIO()
    Image.new("RGB", (64, 64), (10, 20, 30)).save(buffer, "HEIF")
    data = bytearray(buffer.getvalue())
    at = data.find(b"ispe")
    assert at > 0 and struct.unpack(">II", data[at + 8 : at + 16]) == (64, 64)
    data[at + 8 : at + 16] = struct.pack(">II", width, height)
    return bytes(data)


@pytest.mark.parametrize(
    ("name", "make", "guard"),
    [
        # Between our limit (50 MP) and Pillow's warning (100 MP): only our own check stands in the way.
        ("60-megapixel.png", lambda: bomb_png(10_000, 6_000), "more than the limit"),
        # Where Pillow merely warns (100 to 200 MP): still ours, never a warning that lets the decode go on.
        ("150-megapixel.png", lambda: bomb_png(15_000, 10_000), "more than the limit"),
        # Past Pillow's own error (10 gigapixels): refused the same way.
        ("10-gigapixel.png", lambda: bomb_png(100_000, 100_000), "decompression bomb"),
        # An iPhone photo whose HEIF boxes claim 60 MP.
        ("60-megapixel.heic", lambda: bomb_heic(10_000, 6_000), "more than the limit"),
    ],
)
async def test_decompression_bombs_are_refused_before_decoding(intake: Any, name: str, make: Any, guard: str) -> None:
    data = make()
    assert len(data) < 100_000
    response = await post_report(intake, report_json(), [(name, data, "application/octet-stream")])
    await expect_refused(intake, response, 413, "photo_too_many_pixels")
    assert guard in response.json()["detail"]


async def test_a_100_mb_upload_is_cut_off_while_streaming(intake: Any) -> None:
    sent = 0
    boundary = "bm-boundary-1234"

    async def body() -> AsyncIterator[bytes]:
        nonlocal sent
        head = (
            f'--{boundary}\r\nContent-Disposition: form-data; name="report"\r\n\r\n'
            f'{json.dumps(report_json())}\r\n--{boundary}\r\nContent-Disposition: form-data; name="photos"; '
            f'filename="huge.jpg"\r\nContent-Type: image/jpeg\r\n\r\n'
        ).encode()
        yield head
        chunk = b"\xff\xd8\xff" + os.urandom(1024 * 1024 - 3)
        for _ in range(100):
            sent += len(chunk)
            yield chunk
        yield f"\r\n--{boundary}--\r\n".encode()

    response = await intake.client.post(
        "/v1/reports",
        content=body(),
        headers={"Idempotency-Key": "big-upload-1", "Content-Type": f"multipart/form-data; boundary={boundary}"},
    )
    await expect_refused(intake, response, 413, "upload_too_large")
    assert sent <= 25 * 1024 * 1024  # refused at the 20 MB limit, not after 100 MB


async def test_a_body_declared_over_the_request_limit_is_refused_before_reading(intake: Any) -> None:
    # The most a report may carry is every photo at its limit plus the report part: 100 MB is allowed in
    # principle (5 photos of 20 MB), a declared 10 GB is refused from the header alone, before a byte is read.
    response = await intake.client.post(
        "/v1/reports",
        content=b"x" * 10,
        headers={
            "Idempotency-Key": "big-upload-2",
            "Content-Type": "multipart/form-data; boundary=x",
            "Content-Length": str(10 * 1024**3),
        },
    )
    await expect_refused(intake, response, 413, "upload_too_large")
    assert "the request" in response.json()["detail"]


async def test_oversized_report_json_is_refused(intake: Any) -> None:
    response = await post_report(intake, json.dumps(report_json(description="x" * 200_000)))
    await expect_refused(intake, response, 413, "upload_too_large")


async def test_too_long_text_is_refused(intake: Any) -> None:
    response = await post_report(intake, report_json(description="x" * 2001))
    await expect_refused(intake, response, 422, "invalid_report")


async def test_too_many_photos(start_service: Callable[..., Any]) -> None:
    intake = await start_service("report_intake", IntakeSettings, max_photos_per_report=2)
    photos = [(f"p{i}.jpg", make_jpeg(pattern=i), "image/jpeg") for i in range(3)]
    response = await post_report(intake, report_json(), photos)
    await expect_refused(intake, response, 413, "too_many_photos")


async def test_a_polyglot_is_kept_as_evidence_but_shown_only_as_a_clean_copy(intake: Any) -> None:
    payload = b"PK\x03\x04" + b"hidden archive payload " * 50
    polyglot = make_jpeg() + payload  # a valid JPEG that is also a ZIP-ish file
    response = await post_report(intake, report_json(), [("p.jpg", polyglot, "image/jpeg")])
    assert response.status_code == 202
    counts = await stored_counts(intake)
    assert counts["photos"] == 1 and counts["uploads"] == 0
    from sqlalchemy import select

    from report_intake.models import Photo

    async with intake.runtime.db.sessions() as session:
        photo = (await session.execute(select(Photo))).scalars().one()
    assert intake.runtime.blobs.read_verified(photo.sha256) == polyglot  # evidence: byte for byte
    display = intake.runtime.blobs.read_verified(photo.sanitised_sha256)
    assert b"hidden archive payload" not in display and display.startswith(b"\xff\xd8\xff")


async def test_garbage_and_oversized_exif_does_not_reach_the_display_copy(intake: Any) -> None:
    data = make_jpeg(
        exif={0x0110: "\x00" * 3000, 0x0131: "<script>" * 500, 0x0112: 99},
        exif_ifd={0x9003: "9999:99:99 99:99:99"},
        gps=gps_tags(52.1, 5.1),
    )
    response = await post_report(intake, report_json(), [("p.jpg", data, "image/jpeg")])
    assert response.status_code == 202, response.text
    from sqlalchemy import select

    from report_intake.models import Photo

    async with intake.runtime.db.sessions() as session:
        photo = (await session.execute(select(Photo))).scalars().one()
    display = Image.open(io.BytesIO(intake.runtime.blobs.read_verified(photo.sanitised_sha256)))
    assert not display.getexif() and not display.info.get("exif")


@pytest.mark.parametrize("filename", ["../../../../tmp/evil.jpg", "/etc/passwd", "..\\..\\win.ini", "a\x00b.jpg"])
async def test_path_traversal_file_names_are_only_data(intake: Any, tmp_path: Path, filename: str) -> None:
    response = await post_report(intake, report_json(), [(filename, make_jpeg(), "image/jpeg")])
    assert response.status_code == 202
    assert not Path("/tmp/evil.jpg").exists()
    stored = {p.name for p in intake.settings.blob_dir.rglob("*") if p.is_file()}
    assert all(len(name) == 64 for name in stored)  # only digests are file names


async def test_an_absurdly_long_file_name_is_a_malformed_part(intake: Any) -> None:
    response = await post_report(intake, report_json(), [("x" * 5000 + ".jpg", make_jpeg(), "image/jpeg")])
    await expect_refused(intake, response, 400, "malformed_multipart")


async def test_webp_and_heic_are_accepted_by_content(intake: Any) -> None:
    import pillow_heif

    pillow_heif.register_heif_opener()
    photos = []
    for fmt, name in (("WEBP", "p.webp"), ("HEIF", "p.jpg")):  # the HEIC file is misnamed on purpose
        buffer = io.BytesIO()
        Image.new("RGB", (320, 240), (10, 200, 30)).save(buffer, fmt)
        photos.append((name, buffer.getvalue(), "application/octet-stream"))
    response = await post_report(intake, report_json(), photos)
    assert response.status_code == 202, response.text
    created = response.json()
    view = (
        await intake.client.get(created["status_url"], headers={"Authorization": f"Bearer {created['access_token']}"})
    ).json()
    assert sorted(p["content_type"] for p in view["photos"]) == ["image/heic", "image/webp"]


async def test_a_burst_over_the_rate_limit_gets_429_with_retry_after(start_service: Callable[..., Any]) -> None:
    intake = await start_service("report_intake", IntakeSettings, reports_per_client=3, reports_per_seconds=3600)
    statuses = []
    for i in range(5):
        response = await post_report(intake, report_json(description=f"burst {i}"), key=f"burst-key-{i:03d}")
        statuses.append(response.status_code)
    assert statuses == [202, 202, 202, 429, 429]
    assert int(response.headers["retry-after"]) > 0 and response.json()["error"] == "rate_limited"
    assert (await stored_counts(intake))["reports"] == 3
    assert (await intake.client.get("/healthz")).status_code == 200


async def test_replicas_sharing_redis_hold_one_limit(
    start_service: Callable[..., Any], redis_url: tuple[str, str]
) -> None:
    url, prefix = redis_url
    replicas = [
        await start_service(
            "report_intake",
            IntakeSettings,
            reports_per_client=3,
            reports_per_seconds=3600,
            wrong_tokens_per_report=2,
            redis_url=url,
            redis_key_prefix=prefix,
            # What is tested is that the replicas share one count; on a loaded machine a call can pass the
            # production timeout (0.5 s) and the replica then counts alone for a while, by design.
            redis_timeout_seconds=10,
        )
        for _ in range(2)
    ]
    # A client that the load balancer sends to each replica in turn gets the limit once, not once per replica.
    created = (await post_report(replicas[0], report_json(), key="shared-key-first")).json()
    statuses = [
        (
            await post_report(replicas[i % 2], report_json(description=f"burst {i}"), key=f"shared-key-{i:03d}")
        ).status_code
        for i in range(1, 5)
    ]
    assert statuses == [202, 202, 429, 429]
    assert (await replicas[0].client.get("/readyz")).json()["shared_state"] == "redis"
    # Guessing a report's token through both replicas is counted once too.
    guesses = [
        (
            await replicas[i % 2].client.get(created["status_url"], headers={"Authorization": f"Bearer guess-{i}"})
        ).status_code
        for i in range(3)
    ]
    assert guesses == [404, 404, 429]


async def test_redis_down_never_refuses_a_report(start_service: Callable[..., Any]) -> None:
    intake = await start_service(
        "report_intake",
        IntakeSettings,
        reports_per_client=2,
        reports_per_seconds=3600,
        redis_url="redis://127.0.0.1:1/0",
    )
    statuses = [
        (await post_report(intake, report_json(description=f"down {i}"), key=f"down-key-{i:03d}")).status_code
        for i in range(3)
    ]
    assert statuses == [202, 202, 429]  # limited by this replica alone meanwhile, never a 5xx
    ready = await intake.client.get("/readyz")
    assert ready.status_code == 200 and ready.json()["shared_state"] == "memory (redis unavailable)"
    metrics = (await intake.client.get("/metrics")).text
    assert 'bm_shared_state_fallbacks_total{what="rate_limits"}' in metrics


async def test_retries_of_an_answered_report_are_free_and_answered_even_at_the_limit(
    start_service: Callable[..., Any],
) -> None:
    intake = await start_service("report_intake", IntakeSettings, reports_per_client=2, reports_per_seconds=3600)
    one, two, three = (report_json(description=text) for text in ("eerste", "tweede", "derde"))
    first = await post_report(intake, one, key="retry-key-0001")
    # A phone on a bad connection sends its report again and again: the replays cost nothing...
    replays = [await post_report(intake, one, key="retry-key-0001") for _ in range(4)]
    assert {r.status_code for r in replays} == {202} and {r.json()["id"] for r in replays} == {first.json()["id"]}
    second = await post_report(intake, two, key="retry-key-0002")
    assert second.status_code == 202  # ...so its second report still fits in the limit of two
    refused = await post_report(intake, three, key="retry-key-0003")
    assert (refused.status_code, refused.json()["error"]) == (429, "rate_limited")
    # At the limit, a retry of an answered report still gets its answer (the app must learn its report arrived).
    late = await post_report(intake, two, key="retry-key-0002")
    assert late.status_code == 202 and late.json()["id"] == second.json()["id"]
    assert (await stored_counts(intake))["reports"] == 2


async def test_retries_of_an_answered_report_are_not_free_without_bound(start_service: Callable[..., Any]) -> None:
    intake = await start_service("report_intake", IntakeSettings, token_uses_per_client=3)
    body = report_json(description="keer op keer")
    first = await post_report(intake, body, key="replay-flood-01")
    replays = [(await post_report(intake, body, key="replay-flood-01")).status_code for _ in range(4)]
    assert first.status_code == 202 and replays == [202, 202, 202, 429]  # counted like status polls


async def test_guessing_tokens_for_a_report_is_slowed_down(start_service: Callable[..., Any]) -> None:
    intake = await start_service("report_intake", IntakeSettings, wrong_tokens_per_report=3)
    created = (await post_report(intake, report_json())).json()
    statuses = []
    for i in range(5):
        response = await intake.client.get(created["status_url"], headers={"Authorization": f"Bearer guess-{i}"})
        statuses.append(response.status_code)
    assert statuses == [404, 404, 404, 429, 429]


async def test_behind_a_trusted_proxy_citizens_are_told_apart(start_service: Callable[..., Any]) -> None:
    intake = await start_service(
        "report_intake",
        IntakeSettings,
        reports_per_client=1,
        reports_per_seconds=3600,
        trusted_proxies=["127.0.0.1", "testclient"],
    )
    first = await post_report(intake, report_json(), key="proxy-key-01", headers={"X-Forwarded-For": "203.0.113.1"})
    second = await post_report(intake, report_json(), key="proxy-key-02", headers={"X-Forwarded-For": "203.0.113.2"})
    again = await post_report(intake, report_json(), key="proxy-key-03", headers={"X-Forwarded-For": "203.0.113.1"})
    spoofed = await post_report(
        intake, report_json(), key="proxy-key-04", headers={"X-Forwarded-For": "203.0.113.9, 203.0.113.1"}
    )  # client-written hop ignored
    assert [r.status_code for r in (first, second, again, spoofed)] == [202, 202, 429, 429]


async def test_errors_speak_dutch_when_asked(intake: Any) -> None:
    nl = {"Accept-Language": "nl-NL,nl;q=0.9,en;q=0.5", "Idempotency-Key": "dutch-errors-0001"}
    body = b'--b\r\nContent-Disposition: form-data; name="photos"; filename="a.jpg"\r\n\r\n\xff\xd8\xff'  # no end
    cut_short = await intake.client.post(
        "/v1/reports", content=body, headers={**nl, "content-type": "multipart/form-data; boundary=b"}
    )
    assert cut_short.status_code == 400 and cut_short.json()["error"] == "malformed_multipart"
    assert cut_short.json()["detail"] == "De multipart-inhoud houdt midden in een deel op"
    unknown = await intake.client.get("/v1/nothing-here", headers=nl)
    assert unknown.json() == {
        "type": "tag:burgermelding.politie.nl,2026:problem:not_found",
        "title": "Not Found",
        "status": 404,
        "error": "not_found",
        "detail": "Niet gevonden",
        "detail_nl": "Niet gevonden",
    }
    open311 = await intake.client.post(
        "/open311/v2/requests.json",
        content=b"service_code=burglary",
        headers={**nl, "content-type": "application/x-www-form-urlencoded"},
    )
    # Open311's routes answer in the spec's error shape, in Dutch too.
    assert open311.json()[0]["reason"] == "missing_location"
    assert open311.json()[0]["description"].startswith("stuur lat en long")
