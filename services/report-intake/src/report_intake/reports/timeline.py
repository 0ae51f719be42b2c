"""A report's timeline: events from the bridge applied in order, and followed live by its citizen."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections import defaultdict
from collections.abc import AsyncIterator, Iterator

from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from burgermelding_shared.app import Runtime
from burgermelding_shared.catalogue import REPORT_EVENTS
from burgermelding_shared.contracts import CitizenTimelineEvent, ReportEvents
from burgermelding_shared.errors import ServiceError
from burgermelding_shared.messaging import first_delivery
from burgermelding_shared.timeutil import utcnow
from report_intake.config import IntakeSettings
from report_intake.models import Report, TimelineEntry, messaging
from report_intake.records import audit
from report_intake.reports import access as reports_access
from report_intake.reports.status import RANK, STATUSES, ReportStatus, is_status


class TimelineNotifier:
    """Wakes the live streams of a report when its timeline grows in this process. Streams also poll, so a
    change made by another replica arrives too, a little later."""

    def __init__(self) -> None:
        self._events: dict[str, set[asyncio.Event]] = defaultdict(set)

    def notify(self, report_id: str) -> None:
        for event in self._events.get(report_id, ()):
            event.set()

    @contextlib.contextmanager
    def listen(self, report_id: str) -> Iterator[asyncio.Event]:
        event = asyncio.Event()
        self._events[report_id].add(event)
        try:
            yield event
        finally:
            self._events[report_id].discard(event)
            if not self._events[report_id]:
                del self._events[report_id]


def notify(runtime: Runtime, report_id: str) -> None:
    notifier: TimelineNotifier | None = runtime.extras.get("notifier")
    if notifier is not None:
        notifier.notify(report_id)


def add_timeline(
    session: AsyncSession, report_id: str, event: CitizenTimelineEvent, text_en: str, text_nl: str
) -> None:
    session.add(TimelineEntry(report_id=report_id, event=event, occurred_at=utcnow(), text_en=text_en, text_nl=text_nl))


async def apply_events(runtime: Runtime, news: ReportEvents, message_id: str, source: str) -> bool:
    """Add events from the bridge to the report's timeline, in order; False for a duplicate delivery."""
    async with runtime.db.transaction() as session:
        if not await first_delivery(session, messaging, message=REPORT_EVENTS, message_id=message_id, source=source):
            return False
        # Locked: two messages of one report can arrive at once (a status and the next one), and each must see
        # the other's status, or the later commit would put back an earlier status over "closed".
        report = (
            (await session.execute(select(Report).where(Report.id == news.report_id).with_for_update()))
            .scalars()
            .first()
        )
        if report is None:
            raise ServiceError(
                404, "report_not_found", f"no report {news.report_id}", detail_nl=f"geen melding {news.report_id}"
            )
        for event in news.events:
            session.add(
                TimelineEntry(
                    report_id=report.id,
                    event=event.event,
                    occurred_at=event.occurred_at,
                    text_en=event.text_en,
                    text_nl=event.text_nl,
                )
            )
            if is_status(event.event) and STATUSES.allows(report.status, ReportStatus(event.event)):
                report.status = STATUSES.move(report.status, ReportStatus(event.event))
                report.status_rank = RANK[report.status]
                audit.record(
                    session,
                    "report.status",
                    report.id,
                    actor="dispatch-bridge",
                    detail={"status": event.event, "incident_number": event.incident_number},
                )
                audit.mark_finished(session, report)
            if event.incident_number:
                report.incident_number = event.incident_number
        session.add(report)
    notify(runtime, news.report_id)
    return True


async def timeline_stream(
    runtime: Runtime, report_id: str, access: reports_access.Access, language: str, last_event_id: str | None
) -> AsyncIterator[str]:
    """Server-Sent Events: every timeline entry after `last_event_id`, then new ones as they come."""
    async with runtime.db.sessions() as session:
        await reports_access.authorised_report(runtime, session, report_id, access)
    settings: IntakeSettings = runtime.settings
    notifier: TimelineNotifier = runtime.extras["notifier"]
    after = int(last_event_id) if last_event_id and last_event_id.isdigit() else 0

    async def stream() -> AsyncIterator[str]:
        nonlocal after
        deadline = time.monotonic() + settings.sse_max_seconds
        yield "retry: 3000\n\n"
        with notifier.listen(report_id) as wake:
            while time.monotonic() < deadline:
                wake.clear()
                async with runtime.db.sessions() as session:
                    entries = (
                        (
                            await session.execute(
                                select(TimelineEntry)
                                .where(TimelineEntry.report_id == report_id, col(TimelineEntry.id) > after)
                                .order_by(col(TimelineEntry.id))
                            )
                        )
                        .scalars()
                        .all()
                    )
                    status = (await session.execute(select(Report.status).where(Report.id == report_id))).scalar()
                for entry in entries:
                    after = entry.id or after
                    data = {
                        "event": entry.event,
                        "occurred_at": entry.occurred_at.isoformat(),
                        "status": status,
                        "text": entry.text_nl if language == "nl" else entry.text_en,
                    }
                    yield f"id: {entry.id}\nevent: timeline\ndata: {json.dumps(data)}\n\n"
                # A heartbeat at least every 15 s keeps proxies from closing the stream.
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(max(0.0, min(15.0, deadline - time.monotonic()))):
                        await wake.wait()
                yield ": keep-alive\n\n"

    return stream()
