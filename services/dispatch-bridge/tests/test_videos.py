"""Videos at the dispatchers' desk (issue #33): the poster as the display copy, the playable copy without metadata
served in byte ranges (a player seeks), each viewing once in the audit chain, the console's player, the
meldkamer's EIDO media component, and the evidence package with the original, the poster and the playable copy."""

from __future__ import annotations

import hashlib
import io
import json
import tempfile
import uuid
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from bridge_support import api_login, browser, log_in, start_bridge
from sqlalchemy import select

from burgermelding_shared.contracts import PhotoRef, ReportSubmitted
from burgermelding_shared.evidence import verify_package
from burgermelding_shared.timeutil import utcnow
from burgermelding_shared.videos import VideoLimits, check_video, make_compatible_copy
from dispatch_bridge.accounts.tokens import Actor
from dispatch_bridge.meldkamer import requests as meldkamer_requests
from dispatch_bridge.models import BridgeReport
from dispatch_bridge.records import evidence
from dispatch_bridge.reports import receiving
from tests.videos import phone_clip

SARA = Actor("sara", "supervisor")


@pytest.fixture
async def bridge(start_service: Callable[..., Any]) -> Any:
    return await start_bridge(start_service)


async def video_report(bridge: Any, clip: bytes | None = None) -> tuple[ReportSubmitted, bytes]:
    """A report with a video as intake passes it on (the poster and playable copy made by intake's own check)."""
    clip = clip or phone_clip(61, seconds=2.0, place=(52.0907, 5.1214), recorded_at=utcnow())
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "upload"
        path.write_bytes(clip)
        video = check_video(path, limits=VideoLimits(), poster_max_side=2048)
        playable = video.playable_path.read_bytes()
        store = bridge.runtime.blobs
        ref = PhotoRef(
            photo_id="vid1",
            sha256=store.put_bytes(clip),
            sanitised_sha256=store.put_bytes(video.display_jpeg),
            content_type=video.content_type,
            size_bytes=len(clip),
            width=video.width,
            height=video.height,
            kind="video",
            playable_sha256=store.put_bytes(playable),
            playable_type=video.playable_type,
            playable_codecs=video.playable_codecs if video.needs_compatible_copy else None,
            duration_seconds=video.facts.duration_seconds,
            compatible="pending" if video.needs_compatible_copy else None,
        )
    now = utcnow()
    report = ReportSubmitted(
        report_id=str(uuid.uuid4()),
        reference="BM-2026-000061",
        category="violence",
        description="Vechtpartij, gefilmd",
        location={"lat": 52.0907, "lon": 5.1214},
        observed_at=now,
        received_at=now,
        in_progress=True,
        submitter_tag="inst-61",
        submitter_kind="installation",
        photos=[ref],
    )
    assert await receiving.receive_report(bridge.runtime, report, str(uuid.uuid4()), "report-intake") == "accepted"
    return report, playable


async def test_a_dispatcher_plays_a_video_in_ranges_and_each_viewing_is_audited_once(bridge: Any) -> None:
    report, playable = await video_report(bridge)
    dirk, sara = await api_login(bridge, "dirk"), await api_login(bridge, "sara")
    detail = (await bridge.client.get(f"/v1/dispatch/reports/{report.report_id}", headers=dirk)).json()
    assert [(p["kind"], p["duration_seconds"]) for p in detail["photos"]] == [("video", 2.0)]
    base = f"/v1/dispatch/reports/{report.report_id}/photos/vid1"
    poster = await bridge.client.get(base, headers=dirk)
    assert poster.headers["content-type"] == "image/jpeg" and poster.content.startswith(b"\xff\xd8")
    whole = await bridge.client.get(f"{base}/video", headers=dirk)
    assert whole.status_code == 200 and whole.content == playable
    assert whole.headers["content-type"] == "video/mp4" and whole.headers["accept-ranges"] == "bytes"
    assert whole.headers["cache-control"] == "no-store"
    part = await bridge.client.get(f"{base}/video", headers={**dirk, "Range": "bytes=1000-1999"})
    assert part.status_code == 206 and part.content == playable[1000:2000]
    assert part.headers["content-range"] == f"bytes 1000-1999/{len(playable)}"
    beyond = await bridge.client.get(f"{base}/video", headers={**dirk, "Range": f"bytes={len(playable) + 10}-"})
    assert beyond.status_code == 416
    original = await bridge.client.get(f"{base}?original=true", headers=sara)  # streamed from its file
    assert original.status_code == 200 and hashlib.sha256(original.content).hexdigest() == report.photos[0].sha256
    assert original.headers["content-type"] == "video/mp4"
    assert (await bridge.client.get(f"{base}?original=true", headers=dirk)).status_code == 403
    photo_only = await bridge.client.get(f"{base.replace('vid1', 'nope')}/video", headers=dirk)
    assert (photo_only.status_code, photo_only.json()["error"]) == (404, "video_not_found")
    log = (await bridge.client.get("/v1/dispatch/audit", headers=sara)).json()
    viewed = [e for e in log if e["action"] == "view_video"]
    assert len(viewed) == 1 and viewed[0]["username"] == "dirk"  # the player's first request, not every range


async def test_the_console_shows_a_player_with_the_poster(bridge: Any) -> None:
    report, playable = await video_report(bridge)
    async with browser(bridge) as client:
        await log_in(client)
        page = (await client.get(f"/console/reports/{report.report_id}")).text
        media = f"/console/reports/{report.report_id}/photos/vid1"
        assert f'poster="{media}"' in page and f'<source src="{media}/video" type="video/mp4">' in page
        assert "Video bij melding" in page
        view = (await client.get(f"{media}/view")).text
        assert "<video" in view and f'{media}/video"' in view
        played = await client.get(f"{media}/video", headers={"Range": "bytes=0-99"})
        assert played.status_code == 206 and played.content == playable[:100]


async def test_the_meldkamer_gets_the_video_and_the_evidence_package_holds_all_three(bridge: Any) -> None:
    report, playable = await video_report(bridge)
    media = meldkamer_requests.media_for(bridge.settings, report, report.photos, "inc-1")
    assert media[0]["contentType"] == "video/mp4" and media[0]["label"] == "video 1 of BM-2026-000061"
    assert media[0]["digestSha256"] == report.photos[0].sha256
    link = urlsplit(media[0]["uri"])  # the signed link the meldkamer follows
    fetched = await bridge.client.get(f"{link.path}?{link.query}")
    assert fetched.status_code == 200 and fetched.headers["digest"] == f"sha-256={report.photos[0].sha256}"
    async with bridge.runtime.db.sessions() as session:
        incident_id = (await session.execute(select(BridgeReport.incident_id))).scalar_one()
    path, _signed = await evidence.export_evidence(bridge.runtime, SARA, incident_id)
    assert verify_package(path).findings == []
    with zipfile.ZipFile(io.BytesIO(path.read_bytes())) as package:
        names = package.namelist()
        manifest = json.loads(package.read("manifest.json"))
        packed = package.read(next(n for n in names if n.endswith("playable/vid1.mp4")))
    assert packed == playable
    kinds = {e["name"].rsplit("/", 1)[0]: e["kind"] for e in manifest["files"] if "vid1" in e["name"]}
    assert any(n.endswith("originals/vid1.mp4") for n in names)
    assert any(n.endswith("sanitised/vid1.jpg") for n in names)
    assert any(n.endswith("playable/vid1.mp4") for n in names)
    assert set(kinds.values()) == {"original", "sanitised", "playable"}, kinds


async def test_an_hevc_video_plays_from_its_compatible_copy_once_intake_has_made_it(bridge: Any) -> None:
    """An iPhone's HEVC: the remuxed copy typed with its codec (a browser that cannot play it skips it unfetched),
    a note while the H.264 copy is made, then both sources; the API says 409 until the copy is there."""
    clip = phone_clip(62, seconds=1.0, codec="hevc", container="mov", phone="iphone")
    report, _playable = await video_report(bridge, clip)
    ref = report.photos[0]
    assert ref.compatible == "pending" and (ref.playable_codecs or "").startswith("hvc1.1.")
    dirk, sara = await api_login(bridge, "dirk"), await api_login(bridge, "sara")
    base = f"/v1/dispatch/reports/{report.report_id}/photos/vid1/video"
    pending = await bridge.client.get(f"{base}?copy=compatible", headers=dirk)
    assert (pending.status_code, pending.json()["error"]) == (409, "video_copy_pending") and pending.json()["detail_nl"]
    assert (await bridge.client.get(f"{base}?copy=other", headers=dirk)).status_code == 422
    media = f"/console/reports/{report.report_id}/photos/vid1"
    async with browser(bridge) as client:
        await log_in(client)
        page = (await client.get(f"/console/reports/{report.report_id}")).text
        assert f'<source src="{media}/video" type="video/mp4; codecs=&#34;{ref.playable_codecs}&#34;">' in page
        assert "?copy=compatible" not in page and "Een kopie die in elke browser speelt wordt gemaakt" in page
    with tempfile.TemporaryDirectory() as folder:  # intake makes the copy and sends the next revision
        original = Path(folder) / "original"
        original.write_bytes(clip)
        made = make_compatible_copy(original, Path(folder) / "copy.mp4", 1.0, VideoLimits())
        compatible = (Path(folder) / "copy.mp4").read_bytes()
    bridge.runtime.blobs.put_bytes(compatible)
    ready = report.model_copy(
        update={
            "revision": report.revision + 1,
            "photos": [ref.model_copy(update={"compatible": "ready", "compatible_sha256": made})],
        }
    )
    assert await receiving.receive_report(bridge.runtime, ready, str(uuid.uuid4()), "report-intake") == "revised"
    detail = (await bridge.client.get(f"/v1/dispatch/reports/{report.report_id}", headers=dirk)).json()
    assert detail["photos"][0]["compatible"] == "ready"
    served = await bridge.client.get(f"{base}?copy=compatible", headers=dirk)
    assert served.status_code == 200 and served.content == compatible
    assert served.headers["content-type"] == "video/mp4"
    async with browser(bridge) as client:
        await log_in(client)
        page = (await client.get(f"/console/reports/{report.report_id}")).text
        assert f'<source src="{media}/video?copy=compatible" type="video/mp4; codecs=&#34;avc1.640028&#34;">' in page
        assert "Een kopie die in elke browser speelt wordt gemaakt" not in page
        view = (await client.get(f"{media}/view")).text
        assert "?copy=compatible" in view
    log = (await bridge.client.get("/v1/dispatch/audit", headers=sara)).json()
    assert {e["detail"].get("copy") for e in log if e["action"] == "view_video"} >= {"compatible"}
    async with bridge.runtime.db.sessions() as session:
        incident_id = (await session.execute(select(BridgeReport.incident_id))).scalar_one()
    path, _signed = await evidence.export_evidence(bridge.runtime, SARA, incident_id)
    assert verify_package(path).findings == []
    with zipfile.ZipFile(io.BytesIO(path.read_bytes())) as package:
        assert package.read(next(n for n in package.namelist() if n.endswith("compatible/vid1.mp4"))) == compatible
