"""Intake's audit chain: what happened to a report and its photos, by whom."""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from burgermelding_shared import auditchain
from burgermelding_shared.timeutil import utcnow
from report_intake.models import (
    Photo,
    Report,
    audit,
)
from report_intake.reports.status import FINAL_STATUSES

SERVICE = "report-intake"


def record(
    session: AsyncSession,
    action: str,
    report_id: str | None,
    *,
    target_type: str = "report",
    target_id: str | None = None,
    detail: Any = None,
    actor: str = SERVICE,
    role: str = "service",
) -> None:
    """An entry in intake's audit chain about one report (or one of its photos), or with no report about
    something else (`target_type` and `target_id`: a caller's link)."""
    auditchain.record(
        session,
        audit,
        actor=actor,
        role=role,
        action=action,
        target_type=target_type,
        target_id=target_id or report_id or "",
        report_id=report_id,
        detail=detail,
    )


def record_photo_received(session: AsyncSession, report_id: str, photo: Photo) -> None:
    """The start of a photo's custody: its hash, size and type as it arrived, and its display copy's hash."""
    record(
        session,
        "photo.received",
        report_id,
        target_type="photo",
        target_id=photo.id,
        detail={
            "sha256": photo.sha256,
            "size_bytes": photo.size_bytes,
            "content_type": photo.content_type,
            "received_at": photo.received_at.isoformat(),
            "received_by": SERVICE,
            "sanitised_sha256": photo.sanitised_sha256,
            **({"kind": "video", "playable_sha256": photo.playable_sha256} if photo.kind == "video" else {}),
        },
    )


def mark_finished(session: AsyncSession, report: Report) -> None:
    if report.finished_at is None and report.status in FINAL_STATUSES:
        report.finished_at = utcnow()
        session.add(report)
