"""A HEIC's display copy is made after the 202 (photos.py, display.py): the promise of the 202 still holds.

The original is stored and its container checked before the 202; the report's messages wait for the display
copy; a photo whose pixels then do not decode is kept, marked and told; a store that fails is tried again.
"""

from __future__ import annotations

import asyncio
import io
import json
from collections.abc import Callable
from typing import Any

import pytest
from PIL import Image
from pillow_heif import register_heif_opener
from sqlalchemy import select

from report_intake.models import DisplayJob, Photo, messaging
from tests.helpers import heic_photo, make_jpeg, phone_photo, report_json
from tests.intake_support import post_report, stored_counts

LAT, LON = 52.0907, 5.1214
register_heif_opener()


def iphone_heic(seed: int = 1) -> bytes:
    return heic_photo(phone_photo(seed, LAT, LON, size=(1600, 1200)), LAT, LON)


def boxes(data: bytes) -> list[tuple[bytes, int, int]]:
    """(type, offset, size) of each top-level box."""
    found, offset = [], 0
    while offset < len(data):
        size = int.from_bytes(data[offset : offset + 4], "big")
        found.append((data[offset + 4 : offset + 8], offset, size))
        offset += size
    return found


def damaged_image_data() -> bytes:
    """A HEIC (without EXIF, which an app may strip) whose container is whole, so it opens, but whose HEVC stream
    starts with a broken length prefix: only the decode finds it."""
    out = io.BytesIO()
    with Image.open(io.BytesIO(phone_photo(4, LAT, LON, size=(1600, 1200)))) as im:
        im.save(out, "HEIF", quality=55, enc_params={"preset": "ultrafast"})
    data = out.getvalue()
    kind, offset, _size = boxes(data)[-1]
    assert kind == b"mdat"
    return data[: offset + 8] + b"\xff" * 8 + data[offset + 16 :]


async def view(intake: Any, created: dict) -> dict:
    response = await intake.client.get(
        created["status_url"], headers={"Authorization": f"Bearer {created['access_token']}"}
    )
    return response.json()  # type: ignore[no-any-return]


async def outbox_payloads(intake: Any) -> list[dict]:
    async with intake.runtime.db.sessions() as session:
        rows = (await session.execute(select(messaging.outbox.c.destination, messaging.outbox.c.payload))).all()
    return [{"destination": d, **(json.loads(p) if isinstance(p, str) else p)} for d, p in rows]


async def until(condition: Callable[[], Any], seconds: float = 15.0) -> None:
    deadline = asyncio.get_running_loop().time() + seconds
    while not await condition():
        assert asyncio.get_running_loop().time() < deadline, "timed out"
        await asyncio.sleep(0.05)


async def test_a_heic_gets_its_display_copy_after_the_202_and_then_travels_on(intake: Any) -> None:
    data = iphone_heic()
    response = await post_report(intake, report_json(), [("IMG_0001.HEIC", data, "image/heic")])
    assert response.status_code == 202, response.text
    created = response.json()

    async def ready() -> bool:
        return [p["display"] for p in (await view(intake, created))["photos"]] == ["ready"]

    await until(ready)
    async with intake.runtime.db.sessions() as session:
        photo = (await session.execute(select(Photo))).scalars().one()
        assert (await session.execute(select(DisplayJob))).first() is None  # the job is gone when done
    assert photo.content_type == "image/heic" and photo.sanitised_sha256
    assert intake.runtime.blobs.path_for(photo.sha256).read_bytes() == data  # the original, byte for byte
    with Image.open(io.BytesIO(intake.runtime.blobs.path_for(photo.sanitised_sha256).read_bytes())) as display:
        assert display.format == "JPEG" and display.size == (1600, 1200)
        assert not display.getexif() and "exif" not in display.info  # no GPS, no camera: nothing
    # Sent on only now, to both, with the display copy that verification hashes and the bridge shows.
    sent = await outbox_payloads(intake)
    assert sorted(m["destination"] for m in sent) == ["dispatch-bridge", "verification"]
    assert all(m["photos"][0]["sanitised_sha256"] == photo.sanitised_sha256 for m in sent)


async def test_a_truncated_heic_is_refused_before_the_202_and_nothing_is_stored(intake: Any) -> None:
    response = await post_report(
        intake, report_json(), [("cut.heic", iphone_heic()[:-5000], "image/heic")], headers={"Accept-Language": "nl"}
    )
    assert response.status_code == 422 and response.json()["error"] == "photo_unreadable"
    assert response.json()["detail"] == "foto 1 is beschadigd of onvolledig en kan niet worden gelezen"
    assert set((await stored_counts(intake)).values()) == {0}


async def test_a_heic_whose_pixels_do_not_decode_is_kept_marked_and_told(intake: Any) -> None:
    broken = damaged_image_data()
    response = await post_report(intake, report_json(), [("odd.heic", broken, "image/heic")])
    assert response.status_code == 202, response.text  # its container is whole: what can be checked first, is
    created = response.json()

    async def decided() -> bool:
        return [p["display"] for p in (await view(intake, created))["photos"]] == ["unreadable"]

    await until(decided)
    report = await view(intake, created)
    assert "photo_unreadable" in [e["event"] for e in report["timeline"]]
    async with intake.runtime.db.sessions() as session:
        photo = (await session.execute(select(Photo))).scalars().one()
    assert photo.sanitised_sha256 is None
    assert intake.runtime.blobs.path_for(photo.sha256).read_bytes() == broken  # kept as evidence, as it came
    sent = await outbox_payloads(intake)  # the report still travels on; verification judges the photo
    assert len(sent) == 2 and all(m["photos"][0]["sanitised_sha256"] is None for m in sent)


async def test_a_store_that_fails_holds_the_report_back_and_is_tried_again(
    intake: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    blobs = intake.runtime.blobs
    real_put = blobs.put_bytes

    def full_disk(data: bytes) -> str:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(blobs, "put_bytes", full_disk)
    response = await post_report(intake, report_json(), [("IMG_0002.HEIC", iphone_heic(2), "image/heic")])
    assert response.status_code == 202, response.text  # the original went in before the disk filled up
    created = response.json()

    async def failed_once() -> bool:
        async with intake.runtime.db.sessions() as session:
            job = (await session.execute(select(DisplayJob))).scalars().first()
        return job is not None and job.last_error is not None

    await until(failed_once)
    assert [p["display"] for p in (await view(intake, created))["photos"]] == ["pending"]  # visible, not missing
    assert await outbox_payloads(intake) == []  # nothing goes on without its display copy

    monkeypatch.setattr(blobs, "put_bytes", real_put)  # space again: the retry (after 2 s) succeeds

    async def ready() -> bool:
        return [p["display"] for p in (await view(intake, created))["photos"]] == ["ready"]

    await until(ready)
    assert len(await outbox_payloads(intake)) == 2


async def test_photos_added_to_a_report_with_a_heic_travel_with_their_display_copies(intake: Any) -> None:
    response = await post_report(intake, report_json(), [("IMG_0003.HEIC", iphone_heic(3), "image/heic")])
    created = response.json()
    added = await intake.client.post(
        f"{created['status_url']}/photos",
        files=[("photos", ("later.jpg", make_jpeg(), "image/jpeg"))],
        headers={"Authorization": f"Bearer {created['access_token']}", "Idempotency-Key": "add-photos-0001"},
    )
    assert added.status_code == 202, added.text

    async def all_ready() -> bool:
        photos = (await view(intake, created))["photos"]
        return len(photos) == 2 and {p["display"] for p in photos} == {"ready"}

    await until(all_ready)
    await until(lambda: _newest_revision_sent(intake, 1))


async def _newest_revision_sent(intake: Any, revision: int) -> bool:
    sent = await outbox_payloads(intake)
    newest = [m for m in sent if m["revision"] == revision]
    return len(newest) == 2 and all(all(p["sanitised_sha256"] for p in m["photos"]) for m in newest)


async def test_an_urgent_heic_report_goes_to_the_bridge_at_once_and_its_display_copy_follows(
    intake: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    blobs = intake.runtime.blobs
    real_put = blobs.put_bytes
    monkeypatch.setattr(blobs, "put_bytes", lambda data: (_ for _ in ()).throw(OSError(28, "No space left")))
    response = await post_report(
        intake, report_json(in_progress=True), [("IMG_0005.HEIC", iphone_heic(5), "image/heic")]
    )
    assert response.status_code == 202, response.text
    # While its display copy cannot be made, the in-progress report is already on its way to the meldkamer.
    first = await outbox_payloads(intake)
    assert [(m["destination"], m["revision"]) for m in first] == [("dispatch-bridge", 0)]
    assert first[0]["photos"][0]["display"] == "pending" and first[0]["photos"][0]["sanitised_sha256"] is None

    monkeypatch.setattr(blobs, "put_bytes", real_put)
    await until(lambda: _newest_revision_sent(intake, 1), seconds=20)
    sent = await outbox_payloads(intake)  # verification judges the report with its copy, the bridge shows it
    assert sorted((m["destination"], m["revision"]) for m in sent) == [
        ("dispatch-bridge", 0),
        ("dispatch-bridge", 1),
        ("verification", 1),
    ]


async def test_a_heic_of_thousands_of_tiny_boxes_is_refused_without_walking_them_all(intake: Any) -> None:
    padded = iphone_heic(6) + b"\x00\x00\x00\x08free" * 20_000  # boxes that fill the file, 20,000 of them
    response = await post_report(intake, report_json(), [("boxes.heic", padded, "image/heic")])
    assert response.status_code == 422 and response.json()["error"] == "photo_unreadable"
    assert set((await stored_counts(intake)).values()) == {0}
