"""Verification's queue: jobs taken in once per report revision, urgent first, retried, dead ones replayed, results
sent to the bridge."""

from __future__ import annotations

import json

from sqlalchemy import func, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from burgermelding_shared.app import Runtime
from burgermelding_shared.catalogue import REPORT_FOR_VERIFICATION, VERIFICATION_COMPLETED
from burgermelding_shared.contracts import ReportSubmitted, VerificationCompleted
from burgermelding_shared.db import rowcount
from burgermelding_shared.errors import ServiceError
from burgermelding_shared.messaging import Precedence, enqueue, first_delivery
from burgermelding_shared.metrics import Metrics, age_seconds
from burgermelding_shared.retention import personal_data_removed
from burgermelding_shared.timeutil import utcnow
from burgermelding_shared.tracing import current_traceparent
from verification import records
from verification.models import VerificationJob, deletions, messaging


def job_id(report: ReportSubmitted) -> str:
    return f"{report.report_id}:{report.revision}"


async def submit(runtime: Runtime, report: ReportSubmitted, message_id: str, source: str) -> str:
    """Store a job for the report revision; a second submission of the same revision changes nothing."""
    async with runtime.db.transaction() as session:
        if not await first_delivery(
            session, messaging, message=REPORT_FOR_VERIFICATION, message_id=message_id, source=source
        ):
            return "duplicate"
        if await session.get(VerificationJob, job_id(report)) is not None:
            return "duplicate"
        if await personal_data_removed(session, deletions, report.report_id):
            # A revision that arrives after retention removed the report's data here brings nothing back.
            records.record(session, "job.late_copy_refused", report.report_id, detail={"revision": report.revision})
            return "removed"
        session.add(
            VerificationJob(
                job_id=job_id(report),
                report_id=report.report_id,
                revision=report.revision,
                request=report.model_dump_json(),
                status="pending",
                priority=Precedence.urgent_if(report.urgent),
                received_at=utcnow(),
                traceparent=current_traceparent(),
            )
        )
        records.record(
            session,
            "job.received",
            report.report_id,
            detail={
                "revision": report.revision,
                "from": source,
                "photos": [{"photo_id": p.photo_id, "sha256": p.sha256} for p in report.photos],
            },
        )
    runtime.extras["worker"].wake()
    return "accepted"


async def result_of(runtime: Runtime, report_id: str) -> dict:
    """The verification of the report's latest revision."""
    async with runtime.db.sessions() as session:
        job = (
            (
                await session.execute(
                    select(VerificationJob)
                    .where(VerificationJob.report_id == report_id[:36])
                    .order_by(col(VerificationJob.revision).desc())
                    .limit(1)
                )
            )
            .scalars()
            .first()
        )
    if job is None:
        raise ServiceError(
            404,
            "verification_not_found",
            f"no verification job for report {report_id[:36]}",
            detail_nl=f"geen verificatie voor melding {report_id[:36]}",
        )
    if job.result is None:
        return {"report_id": report_id, "status": job.status}
    return {"status": job.status, **json.loads(job.result)}


async def dead_jobs(runtime: Runtime, limit: int = 100) -> list[dict]:
    """Jobs given up on, urgent first, newest first: what a supervisor needs to decide on a replay."""
    async with runtime.db.sessions() as session:
        rows = (
            (
                await session.execute(
                    select(VerificationJob)
                    .where(VerificationJob.status == "dead")
                    .order_by(col(VerificationJob.priority).desc(), col(VerificationJob.received_at).desc())
                    .limit(limit)
                )
            )
            .scalars()
            .all()
        )
    return [
        {
            "job_id": job.job_id,
            "report_id": job.report_id,
            "revision": job.revision,
            "urgent": job.priority >= Precedence.URGENT,
            "attempts": job.attempts,
            "reason": job.last_error,
            "received_at": job.received_at,
        }
        for job in rows
    ]


async def replay_dead_job(runtime: Runtime, job_id: str) -> dict[str, str]:
    """Give a dead job a fresh set of tries, at once."""
    async with runtime.db.transaction() as session:
        replayed = await session.execute(
            update(VerificationJob)
            .where(col(VerificationJob.job_id) == job_id[:48], col(VerificationJob.status) == "dead")
            .values(status="pending", attempts=0, lease_until=None)
        )
    if not rowcount(replayed):
        raise ServiceError(
            404,
            "dead_job_not_found",
            "no dead verification job with this id",
            detail_nl="geen opgegeven verificatietaak met deze id",
        )
    runtime.extras["worker"].wake()
    return {"status": "queued"}


async def send_result(session: AsyncSession, result: VerificationCompleted, precedence: Precedence) -> None:
    await enqueue(session, messaging, VERIFICATION_COMPLETED, result, precedence=precedence)


async def backlog_scraper(runtime: Runtime, metrics: Metrics) -> None:
    """How far verification is behind: jobs waiting, and how long the oldest has waited."""
    async with runtime.db.sessions() as session:
        waiting, oldest = (
            await session.execute(
                select(func.count(), func.min(VerificationJob.received_at)).where(VerificationJob.status == "pending")
            )
        ).one()
    metrics.gauge("bm_verification_backlog_jobs", "Verification jobs waiting or running").set(waiting)
    async with runtime.db.sessions() as session:
        by_priority = (
            await session.execute(
                select(VerificationJob.priority, func.count())
                .where(VerificationJob.status == "dead")
                .group_by(col(VerificationJob.priority))
            )
        ).all()
    gauge = metrics.gauge(
        "bm_verification_dead_jobs",
        "Verification jobs given up on (their reports wait for a verdict until a supervisor replays them)",
        ["urgent"],
    )
    for urgent in (True, False):
        gauge.labels(str(urgent).lower()).set(
            sum(n for precedence, n in by_priority if (precedence >= Precedence.URGENT) == urgent)
        )
    metrics.gauge("bm_verification_oldest_job_age_seconds", "How long the oldest waiting job has waited").set(
        age_seconds(oldest, utcnow())
    )
