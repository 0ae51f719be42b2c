"""The flood rule: one sender (by its daily pseudonym) repeating itself or sending too much in a window."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import func
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import select

from burgermelding_shared.contracts import CheckResult, ReportSubmitted
from verification.checks import check
from verification.models import ReportText
from verification.text import content_hash, is_meaningless, text_hash

REPEAT_WINDOW = timedelta(hours=24)


FLOOD_WINDOW = timedelta(minutes=10)


async def text_checks(
    session: AsyncSession, report: ReportSubmitted, flood_warn: int = 5, flood_spam: int = 20
) -> list[CheckResult]:
    results: list[CheckResult] = []
    if is_meaningless(report.description):
        results.append(
            check(
                "text_meaningless",
                "warn",
                "The text says nothing a dispatcher can use.",
                "De tekst bevat niets waar een centralist iets mee kan.",
            )
        )
    tag = report.submitter_tag
    if not tag:
        return results
    since = report.received_at - REPEAT_WINDOW
    earlier = (
        (
            await session.execute(
                select(ReportText).where(
                    ReportText.submitter_tag == tag,
                    ReportText.report_id != report.report_id,
                    ReportText.received_at >= since,
                )
            )
        )
        .scalars()
        .all()
    )
    if any(e.content_hash == content_hash(report) for e in earlier):
        results.append(
            check(
                "resubmitted",
                "fail",
                "The same report (text and photos) was already sent.",
                "Dezelfde melding (tekst en foto's) is al eerder verstuurd.",
            )
        )
    elif any(e.text_hash == text_hash(report.description) for e in earlier):
        results.append(
            check(
                "repeated_text",
                "warn",
                "The same text was already sent in another report today.",
                "Dezelfde tekst is vandaag al in een andere melding verstuurd.",
            )
        )
    recent = (
        await session.execute(
            select(func.count())
            .select_from(ReportText)
            .where(ReportText.submitter_tag == tag, ReportText.received_at >= report.received_at - FLOOD_WINDOW)
        )
    ).scalar_one()
    if recent >= flood_spam:
        results.append(
            check(
                "spam",
                "fail",
                f"{recent} reports from one sender in 10 minutes: spam.",
                f"{recent} meldingen van één afzender in 10 minuten: spam.",
            )
        )
    elif recent >= flood_warn:
        results.append(
            check(
                "flooding",
                "warn",
                f"{recent} reports from one sender in 10 minutes.",
                f"{recent} meldingen van één afzender in 10 minuten.",
            )
        )
    return results


def remember(session: AsyncSession, report: ReportSubmitted) -> None:
    session.add(
        ReportText(
            report_id=report.report_id,
            submitter_tag=report.submitter_tag,
            submitter_kind=report.submitter_kind,
            independent_source=report.independent_source,
            text_hash=text_hash(report.description),
            content_hash=content_hash(report),
            received_at=report.received_at,
        )
    )
