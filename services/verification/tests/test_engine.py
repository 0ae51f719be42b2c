"""The verification engine on real JPEGs: near duplicates, recycled images, metadata, text, grouping."""

from __future__ import annotations

import asyncio
import io
import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from PIL import Image, ImageEnhance, ImageOps
from sqlalchemy import select

from tests.helpers import exif_time, gps_tags, jpeg_bytes, make_scene
from tests.verification_support import result, submission, submit
from verification import grouping
from verification.config import VerificationSettings
from verification.models import IncidentGroup, ReportGroup, VerificationJob, messaging
from verification.nearindex import NearDuplicateIndex

HERE = {"lat": 52.0907, "lon": 5.1214}
KM_EAST = 1 / (111.32 * 0.6143)  # degrees of longitude per km at this latitude


@pytest.fixture
async def verification(start_service: Callable[..., Any]) -> Any:
    return await start_service(
        "verification", VerificationSettings, workers=1, bridge_url="http://127.0.0.1:9", group_merge_seconds=3600
    )


async def verify(service: Any, photos: list[bytes], **overrides: Any) -> dict[str, Any]:
    report = submission(service, photos, **overrides)
    assert (await submit(service, report)).status_code == 202
    return await result(service, report.report_id)


def codes(outcome: dict[str, Any]) -> dict[str, str]:
    found = {c["code"]: c["outcome"] for p in outcome["photos"] for c in p["checks"]}
    found.update({r["code"]: r["outcome"] for r in outcome["reasons"]})
    return found


async def test_near_duplicates_are_found_and_recycled_images_flagged(verification: Any) -> None:
    scene = make_scene(1)
    first = await verify(verification, [jpeg_bytes(scene)], location=HERE)
    resized = await verify(verification, [jpeg_bytes(scene.resize((600, 450)), quality=70)], location=HERE)
    assert resized["near_duplicate_of_reports"] == [first["report_id"]]
    assert codes(resized)["near_duplicate"] == "not_applicable"  # same place, same time: the same event
    far = {"lat": HERE["lat"], "lon": HERE["lon"] + 20 * KM_EAST}
    brightened = await verify(verification, [jpeg_bytes(ImageEnhance.Brightness(scene).enhance(1.2))], location=far)
    assert first["report_id"] in brightened["near_duplicate_of_reports"]
    assert codes(brightened)["recycled_image"] == "warn"
    mirrored = await verify(verification, [jpeg_bytes(ImageOps.mirror(scene))], location=HERE)
    assert first["report_id"] in mirrored["near_duplicate_of_reports"]  # PDQ of all rotations and mirrors
    for seed in (2, 3, 4):
        unrelated = await verify(verification, [jpeg_bytes(make_scene(seed))], location=HERE)
        assert unrelated["near_duplicate_of_reports"] == [] and unrelated["duplicate_of_reports"] == []


def with_thumbnail(image: Image.Image, thumbnail: Image.Image) -> bytes:
    """A JPEG whose EXIF block carries an embedded JPEG thumbnail, as cameras write it."""
    exif = Image.Exif()
    exif[0x0110] = "Camera"
    small = io.BytesIO()
    thumbnail.convert("RGB").resize((160, 120)).save(small, "JPEG", quality=80)
    return jpeg_bytes(image, exif=exif.tobytes() + small.getvalue())


async def test_a_stale_thumbnail_is_flagged_and_a_fresh_one_passes(verification: Any) -> None:
    scene, other = make_scene(5), make_scene(6)
    stale = await verify(verification, [with_thumbnail(scene, other)])
    assert codes(stale)["thumbnail_mismatch"] == "warn"
    fresh = await verify(verification, [with_thumbnail(make_scene(7), make_scene(7))])
    assert codes(fresh)["thumbnail_matches"] == "pass"


async def test_a_turned_photo_is_hashed_upright_and_its_thumbnail_compared_upright(verification: Any) -> None:
    """The pixels come from intake's display copy (upright); the thumbnail is stored as the camera held it."""
    scene = make_scene(12, (1200, 900))
    stored_sideways = scene.transpose(Image.Transpose.ROTATE_90)  # what a phone held upright writes...
    exif = Image.Exif()
    exif[0x0112] = 6  # ...with the tag that says: turn 270 degrees to show it
    thumb = io.BytesIO()
    stored_sideways.convert("RGB").resize((120, 160)).save(thumb, "JPEG", quality=80)
    turned = await verify(
        verification, [jpeg_bytes(stored_sideways, exif=exif.tobytes() + thumb.getvalue())], location=HERE
    )
    assert codes(turned)["thumbnail_matches"] == "pass"
    upright_again = await verify(verification, [jpeg_bytes(scene, quality=80)], location=HERE)
    assert (
        upright_again["duplicate_of_reports"] == []
        and turned["report_id"] in upright_again["near_duplicate_of_reports"]
    )
    assert turned["photos"][0]["width"] == 900 and turned["photos"][0]["height"] == 1200  # as stored


async def test_capture_time_against_gps_time(verification: Any) -> None:
    now = datetime.now(UTC)
    gps = gps_tags(HERE["lat"], HERE["lon"]) | {
        7: (float((now - timedelta(hours=3)).hour), 0.0, 0.0),
        29: (now - timedelta(hours=3)).strftime("%Y:%m:%d"),
    }
    exif = Image.Exif()
    exif.get_ifd(0x8769).update({0x9003: exif_time(now), 0x9011: "+00:00"})
    exif.get_ifd(0x8825).update(gps)
    outcome = await verify(verification, [jpeg_bytes(make_scene(8), exif=exif.tobytes())], location=HERE)
    assert codes(outcome)["gps_time_mismatch"] == "warn"


async def test_text_checks_meaningless_resubmitted_and_flooding(verification: Any) -> None:
    assert codes(await verify(verification, [], description="aaaaaaaaaa"))["text_meaningless"] == "warn"
    photo = jpeg_bytes(make_scene(9))
    tag = "client-of-the-day-1"
    first = await verify(verification, [photo], description="Inbraak bij de buren", submitter_tag=tag)
    assert first["verdict"] == "forward"
    again = await verify(verification, [photo], description="Inbraak bij de buren!", submitter_tag=tag)
    assert again["verdict"] == "reject" and codes(again)["resubmitted"] == "fail"
    other_sender = await verify(verification, [photo], description="Inbraak bij de buren", submitter_tag="other")
    assert other_sender["verdict"] != "reject"  # someone else seeing the same: never rejected for that
    flood = [
        await verify(verification, [], description=f"melding nummer {i} over iets", submitter_tag="flooder")
        for i in range(6)
    ]
    assert "flooding" not in codes(flood[3]) and codes(flood[5])["flooding"] == "warn"


async def test_reports_of_one_event_are_grouped_and_others_kept_apart(verification: Any) -> None:
    now = datetime.now(UTC)
    near = [{"lat": HERE["lat"] + d, "lon": HERE["lon"] + d} for d in (0.0, 0.0004, 0.0008)]  # within ~100 m
    one_event = [
        await verify(verification, [], location=loc, category="fire", observed_at=now - timedelta(minutes=m))
        for loc, m in zip(near, (30, 20, 5), strict=True)
    ]
    assert len({r["group_id"] for r in one_event}) == 1
    assert sorted(one_event[2]["group_reports"]) == sorted(r["report_id"] for r in one_event[:2])
    two_km = await verify(
        verification,
        [],
        category="fire",
        observed_at=now - timedelta(minutes=10),
        location={"lat": HERE["lat"], "lon": HERE["lon"] + 2 * KM_EAST},
    )
    six_hours = await verify(
        verification, [], category="fire", location=HERE, observed_at=now - timedelta(hours=6, minutes=30)
    )
    assert two_km["group_id"] != one_event[0]["group_id"] and two_km["group_reports"] == []
    assert six_hours["group_id"] != one_event[0]["group_id"] and six_hours["group_reports"] == []
    traffic = await verify(
        verification, [], category="traffic_accident", location=near[0], observed_at=now - timedelta(minutes=25)
    )
    assert traffic["group_id"] != one_event[0]["group_id"]  # another kind of event at the same spot


async def test_the_merge_pass_joins_fragments(verification: Any) -> None:
    now = datetime.now(UTC)
    async with verification.runtime.db.transaction() as session:
        for gid, dlat in (("g-a", 0.0), ("g-b", 0.002)):  # ~220 m apart: one event split by the online pass
            session.add(
                IncidentGroup(
                    id=gid,
                    family="crime",
                    cell=f"cell-{gid}",
                    lat=HERE["lat"] + dlat,
                    lon=HERE["lon"],
                    first_seen=now,
                    last_seen=now,
                )
            )
            session.add(
                ReportGroup(
                    report_id=f"r-{gid}", group_id=gid, observed_at=now, lat=HERE["lat"] + dlat, lon=HERE["lon"]
                )
            )
    assert await grouping.merge_fragments(verification.runtime.db) == 1
    async with verification.runtime.db.sessions() as session:
        assert (await session.get(ReportGroup, "r-g-b")).group_id == "g-a"
        told = (
            (await session.execute(select(messaging.outbox).where(messaging.outbox.c.kind == "groups.merged")))
            .mappings()
            .all()
        )
    # The bridge is told, so incidents forwarded for both fragments become one at the meldkamer too.
    assert len(told) == 1 and told[0]["destination"] == "dispatch-bridge"
    merge = json.loads(told[0]["payload"])
    assert (merge["group_id"], merge["merged_group_id"], merge["merged_report_ids"]) == ("g-a", "g-b", ["r-g-b"])


async def test_independent_witnesses_raise_each_others_score(verification: Any) -> None:
    now = datetime.now(UTC)
    # A tip with little to check (no photo, a vague text): held for review when it stands alone.
    alone = await verify(
        verification,
        [],
        description="!!!",
        category="violence",
        location=HERE,
        observed_at=now,
        submitter_tag="phone-1",
        submitter_kind="installation",
    )
    assert alone["verdict"] == "review" and alone["independent_witnesses"] == 0
    same_phone = await verify(
        verification,
        [],
        description="vechtpartij op het plein",
        category="violence",
        location=HERE,
        observed_at=now,
        submitter_tag="phone-1",
        submitter_kind="installation",
    )
    assert same_phone["independent_witnesses"] == 0  # one phone sending twice corroborates nothing
    others = [
        await verify(
            verification,
            [],
            description=f"gevecht bij de fontein {n}",
            category="robbery",
            location={"lat": HERE["lat"] + 0.0003 * n, "lon": HERE["lon"]},
            observed_at=now,
            submitter_tag=f"phone-{n}",
            submitter_kind="installation",
        )
        for n in (2, 3, 4)
    ]
    assert [o["independent_witnesses"] for o in others] == [1, 2, 3]
    reason = next(r for r in others[-1]["reasons"] if r["code"] == "corroborated")
    assert reason["outcome"] == "pass" and reason["weight"] < 0 and reason["detail_nl"] and reason["detail_en"]
    assert others[0]["score"] < others[-1]["score"]  # more independent witnesses, more confidence
    again = await result(verification, alone["report_id"])  # the first witness, assessed again
    assert again["independent_witnesses"] == 3 and again["assessment"] >= 1
    assert again["verdict"] == "forward" and again["score"] > alone["score"]
    # Witnesses behind one network address without a credential count as one sender, not as corroboration.
    shared = [
        await verify(
            verification,
            [],
            description=f"ruzie {n}",
            category="violence",
            observed_at=now,
            location={"lat": HERE["lat"] + 0.01, "lon": HERE["lon"]},
            submitter_tag="cgnat-address",
            submitter_kind="address",
        )
        for n in range(3)
    ]
    assert all(r["independent_witnesses"] == 0 for r in shared)


async def test_installations_new_from_one_address_corroborate_nothing(verification: Any) -> None:
    """Issue 29: four credentials registered a minute ago from one address made a junk tip "corroborated" by
    four witnesses, and forwarded. Installations new from one address are one witness (their independent
    source), so they no longer corroborate each other; they are still verified as reports."""
    now = datetime.now(UTC)
    new_from_one_address = {"submitter_kind": "installation", "independent_source": "address-registered-from"}
    junk = await verify(
        verification,
        [],
        description="!!!",
        category="violence",
        location=HERE,
        observed_at=now,
        submitter_tag="fresh-0",
        **new_from_one_address,
    )
    assert junk["verdict"] == "review"
    others = [
        await verify(
            verification,
            [],
            description=f"gevecht bij de fontein {n}",
            category="violence",
            location={"lat": HERE["lat"] + 0.0003 * n, "lon": HERE["lon"]},
            observed_at=now,
            submitter_tag=f"fresh-{n}",
            **new_from_one_address,
        )
        for n in range(1, 10)
    ]
    assert [o["independent_witnesses"] for o in others] == [0] * 9
    again = await result(verification, junk["report_id"])
    assert again["verdict"] == "review" and again["independent_witnesses"] == 0  # not forwarded
    assert "corroborated" not in codes(again)
    # One installation older than an hour is a witness of its own: it and they corroborate each other, once.
    old = await verify(
        verification,
        [],
        description="ruzie bij de fontein",
        category="violence",
        location=HERE,
        observed_at=now,
        submitter_tag="installed-last-year",
        submitter_kind="installation",
    )
    assert old["independent_witnesses"] == 1
    assert (await result(verification, junk["report_id"]))["independent_witnesses"] == 1


async def result_of_revision(service: Any, report_id: str, revision: int) -> dict[str, Any]:
    for _ in range(600):  # bounded wait for the worker process; not a timing assertion
        async with service.runtime.db.sessions() as session:
            job = await session.get(VerificationJob, f"{report_id}:{revision}")
        if job is not None and job.status == "done":
            return json.loads(job.result)  # type: ignore[no-any-return]
        await asyncio.sleep(0.05)
    raise AssertionError("job not done")


async def test_a_revision_after_the_first_hour_is_still_the_witness_its_report_first_was(verification: Any) -> None:
    """Issue 29 (review): photos added after the installations' first hour came without their independent
    source (and on the next day under another pseudonym). A report is the witness its first message said: the
    revisions of four reports new from one address still corroborate as one witness, not four."""
    now = datetime.now(UTC)
    fresh = [
        submission(
            verification,
            [],
            description=f"gevecht bij de fontein {n}",
            category="violence",
            location={"lat": HERE["lat"] + 0.0003 * n, "lon": HERE["lon"]},
            observed_at=now,
            submitter_tag=f"fresh-{n}",
            submitter_kind="installation",
            independent_source="address-registered-from",
        )
        for n in range(4)
    ]
    for report in fresh:
        assert (await submit(verification, report)).status_code == 202
        assert (await result(verification, report.report_id))["independent_witnesses"] == 0
    old = await verify(
        verification,
        [],
        description="ruzie bij de fontein",
        category="violence",
        location=HERE,
        observed_at=now,
        submitter_tag="installed-last-year",
        submitter_kind="installation",
    )
    assert old["independent_witnesses"] == 1
    for n, report in enumerate(fresh):
        revision = report.model_copy(
            update={"revision": 1, "independent_source": None, "submitter_tag": f"next-day-{n}"}
        )
        assert (await submit(verification, revision)).status_code == 202
        assert (await result_of_revision(verification, report.report_id, 1))["independent_witnesses"] == 1
    assert (await result(verification, old["report_id"]))["independent_witnesses"] == 1


async def test_a_hundred_witnesses_behind_one_address_with_apps_installed_days_ago_are_a_hundred(
    verification: Any,
) -> None:
    now = datetime.now(UTC)
    outcomes = [
        await verify(
            verification,
            [],
            description=f"vechtpartij op het plein, getuige {n}",
            category="violence",
            location={"lat": HERE["lat"] + 0.00002 * n, "lon": HERE["lon"]},
            observed_at=now,
            submitter_tag=f"phone-{n}",
            submitter_kind="installation",
        )
        for n in range(100)
    ]
    assert outcomes[-1]["independent_witnesses"] == 99  # no independent source: each its own witness
    reason = next(r for r in outcomes[-1]["reasons"] if r["code"] == "corroborated")
    assert reason["detail_en"].startswith("99 other independent witness(es)") and reason["detail_nl"]


async def test_the_index_is_rebuilt_from_the_database_and_sees_another_replicas_inserts(verification: Any) -> None:
    scene = make_scene(10)
    stored = await verify(verification, [jpeg_bytes(scene)])
    replica = NearDuplicateIndex()  # a second replica's index, or this one after a restart
    await replica.sync(verification.runtime.db)
    from verification.perceptual import pdq_hashes
    from verification.phash import phash

    small = scene.resize((512, 384))
    matches = replica.search(phash(small), pdq_hashes(small)[1])
    assert matches and all(m.same_image for m in matches)
    assert stored["photos"][0]["phash"]
