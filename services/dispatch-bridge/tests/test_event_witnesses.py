"""The event's witnesses as the meldkamer is told them (EventSummary): installations new from one address are one
independent witness, and the summary says both numbers, so the dispatcher sees why."""

from __future__ import annotations

import hashlib
import json
import uuid
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select

from burgermelding_shared.contracts import PhotoRef, ReportSubmitted
from burgermelding_shared.service_auth import development_key
from dispatch_bridge.incidents import events
from dispatch_bridge.models import BridgeReport, Incident, messaging

DAM = (52.3731, 4.8926)


def witness_report(n: int, tag: str, source: str | None = None) -> ReportSubmitted:
    now = datetime.now(UTC)
    return ReportSubmitted(
        report_id=str(uuid.uuid4()),
        reference=f"BM-2026-{n:06d}",
        category="violence",
        description=f"Vechtpartij op de Dam, getuige {n}",
        location={"lat": DAM[0] + n * 1e-5, "lon": DAM[1]},
        observed_at=now,
        received_at=now,
        in_progress=True,
        submitter_tag=tag,
        submitter_kind="installation",
        independent_source=source,
    )


async def send(bridge: Any, report: ReportSubmitted) -> None:
    token = development_key("report-intake").issue("dispatch-bridge")
    response = await bridge.client.post(
        "/internal/v1/reports",
        content=report.model_dump_json(),
        headers={
            "Authorization": f"Bearer {token}",
            "Idempotency-Key": str(uuid.uuid4()),
            "content-type": "application/json",
        },
    )
    assert response.status_code == 200, response.text


async def send_witness(bridge: Any, n: int, tag: str, source: str | None = None) -> ReportSubmitted:
    report = witness_report(n, tag, source)
    await send(bridge, report)
    return report


def with_a_photo_added(report: ReportSubmitted, n: int, **changes: Any) -> ReportSubmitted:
    """The report's next revision, as intake sends it when the citizen adds a photo."""
    digest = hashlib.sha256(f"photo {n}".encode()).hexdigest()
    photo = PhotoRef(
        photo_id=str(uuid.uuid4()),
        sha256=digest,
        sanitised_sha256=digest,
        content_type="image/jpeg",
        size_bytes=1000,
        width=640,
        height=480,
    )
    return report.model_copy(update={"revision": report.revision + 1, "photos": [*report.photos, photo], **changes})


async def latest_summary(bridge: Any) -> dict[str, Any]:
    async with bridge.runtime.db.sessions() as session:
        rows = (
            (
                await session.execute(
                    select(messaging.outbox.c.payload).where(messaging.outbox.c.destination == "meldkamer")
                )
            )
            .scalars()
            .all()
        )
    summaries = [json.loads(payload).get("eventSummary") for payload in rows]
    return max((s for s in summaries if s), key=lambda s: s["version"])


async def test_installations_new_from_one_address_are_one_witness_and_the_summary_says_both(bridge: Any) -> None:
    for n in range(10):  # registered a minute ago, all from one address
        await send_witness(bridge, n, f"fresh-{n}", "address-registered-from")
    summary = await latest_summary(bridge)
    assert (summary["reportCount"], summary["senderCount"], summary["witnessCount"]) == (10, 10, 1)
    for n in range(10, 13):  # apps installed long ago, behind the same address or not: each its own witness
        await send_witness(bridge, n, f"installed-long-ago-{n}")
    await send_witness(bridge, 13, "fresh-0")  # a fresh one again, after its first hour: still one with the rest
    summary = await latest_summary(bridge)
    assert (summary["reportCount"], summary["senderCount"], summary["witnessCount"]) == (14, 13, 4)


async def test_witnesses_whose_apps_are_days_old_count_one_each_behind_one_address(bridge: Any) -> None:
    for n in range(30):
        await send_witness(bridge, n, f"phone-{n}")
    summary = await latest_summary(bridge)
    assert summary["senderCount"] == summary["witnessCount"] == summary["reportCount"] == 30


def test_a_revision_without_its_source_or_on_another_day_keeps_the_witness_the_report_first_was() -> None:
    """Issue 29 (review): the bridge counts witnesses from each report's latest submission. Ten installations new
    from one address report (one witness); a photo added to each after their first hour came, from an intake
    that recomputed the source, without it (and the next day under another pseudonym): ten witnesses. The bridge
    keeps the first source and sender it saw for a report, as verification does."""
    now = datetime.now(UTC)
    incident = Incident(
        id=str(uuid.uuid4()), category="violence", priority=1, delivery_state="accepted", created_at=now, updated_at=now
    )
    stored: list[BridgeReport] = []
    for n in range(10):
        first = witness_report(n, f"fresh-{n}", "address-registered-from")
        row = BridgeReport(
            report_id=first.report_id,
            reference=first.reference,
            category=first.category,
            in_progress=True,
            danger_to_life=False,
            submission=first.model_dump_json(),
            received_at=now,
            state="forwarded",
            incident_id=incident.id,
        )
        events.place(row, first)
        stored.append(row)
    assert events.describe(incident, stored, 1).witnessCount == 1
    for n, row in enumerate(stored):  # what forwarding._revise does with a revision
        previous = ReportSubmitted.model_validate_json(row.submission)
        revision = events.first_witness(
            with_a_photo_added(previous, n, independent_source=None, submitter_tag=f"next-day-{n}"), previous
        )
        row.submission, row.revision = revision.model_dump_json(), revision.revision
        events.place(row, revision)
    summary = events.describe(incident, stored, 2)
    assert (summary.reportCount, summary.senderCount, summary.witnessCount) == (10, 10, 1)
    assert {ReportSubmitted.model_validate_json(r.submission).independent_source for r in stored} == {
        "address-registered-from"
    }
    # A revision never replaces a source the report came with, and may bring one it had none of.
    previous = witness_report(20, "late", None)
    assert (
        events.first_witness(with_a_photo_added(previous, 20, independent_source="s"), previous).independent_source
        == "s"
    )
    previous = witness_report(21, "early", "first")
    assert (
        events.first_witness(with_a_photo_added(previous, 21, independent_source="other"), previous).independent_source
        == "first"
    )


async def test_photos_added_after_the_first_hour_do_not_split_the_witness_at_the_bridge(bridge: Any) -> None:
    first = [await send_witness(bridge, n, f"fresh-{n}", "address-registered-from") for n in range(10)]
    assert (await latest_summary(bridge))["witnessCount"] == 1
    for n, report in enumerate(first):  # after the hour, and the next day: without the source, another tag
        await send(bridge, with_a_photo_added(report, n, independent_source=None, submitter_tag=f"next-day-{n}"))
    summary = await latest_summary(bridge)
    assert (summary["reportCount"], summary["senderCount"], summary["witnessCount"]) == (10, 10, 1)
