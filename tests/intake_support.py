"""Helpers for report-intake's tests: post a report the way the app does, and count what is stored."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import func, select

from report_intake.models import Photo, Report, TimelineEntry, idempotency_keys, messaging
from tests.helpers import redeeming, report_parts


async def post_report(
    intake: Any,
    body: Any,
    photos: list[tuple[str, bytes, str]] | None = None,
    key: str | None = "key-0000001",
    headers: dict[str, str] | None = None,
) -> Any:
    files = report_parts(body, photos or []) or [("other", (None, "x", "text/plain"))]
    all_headers = {**({"Idempotency-Key": key} if key else {}), **(headers or {})}
    return await intake.client.post("/v1/reports", files=files, headers=all_headers)


async def stored_counts(intake: Any) -> dict[str, int]:
    async with intake.runtime.db.sessions() as session:
        counts = {}
        for name, table in [("reports", Report), ("photos", Photo), ("timeline", TimelineEntry)]:
            counts[name] = (await session.execute(select(func.count()).select_from(table))).scalar_one()
        counts["outbox"] = (await session.execute(select(func.count()).select_from(messaging.outbox))).scalar_one()
        counts["keys"] = (await session.execute(select(func.count()).select_from(idempotency_keys))).scalar_one()
    blob_dir: Path = intake.settings.blob_dir
    counts["blobs"] = sum(1 for p in blob_dir.rglob("*") if p.is_file())
    counts["uploads"] = sum(1 for p in (blob_dir.parent / "uploads").rglob("*") if p.is_file())
    return counts


async def register_installation(intake: Any, address: str | None = None) -> str:
    """Register an app installation the way the app does (challenge, proof of work, redeem): its credential."""
    headers = {"X-Forwarded-For": address} if address else {}
    challenge = (await intake.client.post("/v1/installations/challenges", headers=headers)).json()
    response = await intake.client.post("/v1/installations", headers=headers, json=redeeming(challenge))
    assert response.status_code == 201, response.text
    return str(response.json()["credential"])
