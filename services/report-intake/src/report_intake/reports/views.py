"""A report as its citizen sees it."""

from __future__ import annotations

from sqlmodel import col, select

from burgermelding_shared.app import Runtime
from report_intake.models import (
    Photo,
    TimelineEntry,
)
from report_intake.reports.access import Access, authorised_report
from report_intake.reports.photos import photo_summary
from report_intake.schemas import (
    ReportView,
    TimelineItem,
)


async def view_report(runtime: Runtime, report_id: str, access: Access, language: str) -> ReportView:
    async with runtime.db.sessions() as session:
        report = await authorised_report(runtime, session, report_id, access)
        photos = (
            (
                await session.execute(
                    select(Photo).where(Photo.report_id == report_id).order_by(col(Photo.received_at), col(Photo.id))
                )
            )
            .scalars()
            .all()
        )
        entries = (
            (
                await session.execute(
                    select(TimelineEntry)
                    .where(TimelineEntry.report_id == report_id)
                    .order_by(col(TimelineEntry.occurred_at), col(TimelineEntry.id))
                )
            )
            .scalars()
            .all()
        )
    return ReportView(
        id=report.id,
        reference=report.reference,
        status=report.status,
        category=report.category,
        in_progress=report.in_progress,
        received_at=report.received_at,
        photos=[photo_summary(p) for p in photos],
        timeline=[
            TimelineItem.model_validate(  # the stored event name is checked against the events a timeline has
                {
                    "id": e.id or 0,
                    "event": e.event,
                    "occurred_at": e.occurred_at,
                    "text": e.text_nl if language == "nl" else e.text_en,
                }
            )
            for e in entries
        ],
    )
