"""verification's internal API: jobs from intake, results for whoever may read them."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from burgermelding_shared import auditchain
from burgermelding_shared.app import InternalMessage, RuntimeDep, internal_message, require_service
from burgermelding_shared.catalogue import REPORT_FOR_VERIFICATION, RETENTION_FOR_VERIFICATION
from burgermelding_shared.contracts import ReportSubmitted, RetentionApplied
from burgermelding_shared.errors import error_responses
from verification import queue, records
from verification.models import audit

router = APIRouter(prefix="/internal/v1", tags=["internal"])


@router.post(
    REPORT_FOR_VERIFICATION.under(router.prefix),
    status_code=202,
    summary="Verify a report (idempotent per report)",
    responses=error_responses(400, 401, 403, 422),
)
async def submit_job(
    report: ReportSubmitted,
    runtime: RuntimeDep,
    sender: InternalMessage = internal_message("report-intake"),
) -> dict[str, str]:
    return {"status": await queue.submit(runtime, report, sender.message_id, sender.source)}


@router.get(
    "/verifications/{report_id}",
    summary="The verification of a report: verdict, score, every check",
    responses=error_responses(401, 403, 404),
)
async def get_verification(
    report_id: str,
    runtime: RuntimeDep,
    _caller: str = require_service("dispatch-bridge", "report-intake"),
) -> dict:
    return await queue.result_of(runtime, report_id)


@router.get(
    "/dead-jobs",
    summary="Verification jobs given up on, with the reason (for the dispatchers' API)",
    responses=error_responses(401, 403),
)
async def list_dead_jobs(
    runtime: RuntimeDep,
    _caller: str = require_service("dispatch-bridge"),
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> list[dict]:
    return await queue.dead_jobs(runtime, limit)


@router.post(
    "/dead-jobs/{job_id}/replay",
    summary="Try a dead verification job again (for a supervisor)",
    responses=error_responses(401, 403, 404),
)
async def replay_dead_job(
    job_id: str, runtime: RuntimeDep, _caller: str = require_service("dispatch-bridge")
) -> dict[str, str]:
    return await queue.replay_dead_job(runtime, job_id)


@router.post(
    RETENTION_FOR_VERIFICATION.under(router.prefix),
    summary="A report's personal data was removed at intake: do the same to this copy",
    responses=error_responses(400, 401, 403, 422),
)
async def apply_retention(
    order: RetentionApplied, runtime: RuntimeDep, sender: InternalMessage = internal_message("report-intake")
) -> dict[str, str]:
    return {"status": await records.apply_retention(runtime, order, sender.message_id, sender.source)}


@router.get(
    "/audit",
    summary="verification's audit entries about one report (for its custody record)",
    responses=error_responses(401, 403),
)
async def audit_entries(
    runtime: RuntimeDep,
    report_id: Annotated[str, Query(max_length=36)],
    _caller: str = require_service("dispatch-bridge"),
) -> list[dict]:
    async with runtime.db.sessions() as session:
        return await auditchain.entries_about(session, audit, report_id=report_id)
