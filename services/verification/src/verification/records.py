"""verification's records: its audit chain (what it received, which originals it read, every verdict) and
what it does when intake's retention removes a report's personal data (`RetentionApplied`): verification holds
no contact details, so it anonymises (the words, the place, the photos' fingerprints and capture places go; the
verdict and its reason codes stay) or purges (nothing of the report stays)."""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import delete
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from burgermelding_shared import auditchain
from burgermelding_shared.app import Runtime
from burgermelding_shared.catalogue import RETENTION_FOR_VERIFICATION
from burgermelding_shared.contracts import ReportSubmitted, RetentionApplied, coarse
from burgermelding_shared.db import rowcount
from burgermelding_shared.messaging import first_delivery
from burgermelding_shared.retention import log_deletion
from verification.models import (
    PhotoFingerprint,
    ReportGroup,
    ReportText,
    VerificationJob,
    audit,
    deletions,
    messaging,
)

SERVICE = "verification"


def record(
    session: AsyncSession,
    action: str,
    report_id: str,
    *,
    target_type: str = "report",
    target_id: str | None = None,
    detail: Any = None,
) -> None:
    auditchain.record(
        session,
        audit,
        actor=SERVICE,
        role="service",
        action=action,
        target_type=target_type,
        target_id=target_id or report_id,
        report_id=report_id,
        detail=detail,
    )


async def apply_retention(runtime: Runtime, order: RetentionApplied, message_id: str, source: str) -> str:
    async with runtime.db.transaction() as session:
        if not await first_delivery(
            session, messaging, message=RETENTION_FOR_VERIFICATION, message_id=message_id, source=source
        ):
            return "duplicate"
        jobs = list(
            (
                await session.execute(select(VerificationJob).where(VerificationJob.report_id == order.report_id))
            ).scalars()
        )
        fingerprints = rowcount(
            await session.execute(delete(PhotoFingerprint).where(col(PhotoFingerprint.report_id) == order.report_id))
        )
        await session.execute(delete(ReportText).where(col(ReportText.report_id) == order.report_id))
        removed: dict[str, Any] = {"photo_fingerprints": fingerprints}
        if order.action == "purge":
            await session.execute(delete(ReportGroup).where(col(ReportGroup.report_id) == order.report_id))
            await session.execute(delete(VerificationJob).where(col(VerificationJob.report_id) == order.report_id))
            removed["jobs"] = len(jobs)
        else:
            for group in (
                await session.execute(select(ReportGroup).where(ReportGroup.report_id == order.report_id))
            ).scalars():
                group.lat, group.lon = coarse(group.lat), coarse(group.lon)
            for job in jobs:
                job.request = ReportSubmitted.model_validate_json(job.request).anonymised().model_dump_json()
                if job.result:  # the photos' capture places and times go; the verdict and reasons stay
                    result = json.loads(job.result)
                    result["photos"] = []
                    job.result = json.dumps(result)
                session.add(job)
            removed["jobs_anonymised"] = len(jobs)
        log_deletion(
            session,
            deletions,
            audit,
            report_id=order.report_id,
            reference=None,
            rule=order.rule,
            action=order.action,
            removed=removed,
        )
    # The near-duplicate index in memory may still hold the deleted fingerprints' ids; a match is looked up in
    # the database before it counts (jobs._near_duplicate_checks), so they no longer match anything.
    return "applied"
