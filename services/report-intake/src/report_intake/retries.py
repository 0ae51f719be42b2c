"""A citizen's request with an Idempotency-Key is done once: a retry gets the first answer again."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from burgermelding_shared import idempotency
from burgermelding_shared.app import Runtime
from report_intake.models import idempotency_keys


async def run_once(
    runtime: Runtime,
    scope: str,
    key: str,
    fingerprint: str,
    work: Callable[[AsyncSession], Awaitable[idempotency.StoredResponse]],
) -> idempotency.StoredResponse:
    """`work` once per (scope, key), in one transaction with its recorded answer (see idempotency.run_once)."""
    stale_after = timedelta(seconds=runtime.settings.idempotency_claim_seconds)
    return await idempotency.run_once(runtime.db, idempotency_keys, scope, key, fingerprint, work, stale_after)
