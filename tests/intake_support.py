"""Helpers for report-intake's tests: post a report the way the app does, and count what is stored."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from sqlalchemy import func, select

from report_intake.models import Photo, Report, TimelineEntry, idempotency_keys, messaging


async def post_report(intake: Any, body: Any, photos: list[tuple[str, bytes, str]] | None = None,
                      key: str | None = "key-0000001", headers: dict[str, str] | None = None) -> Any:
    report_part = body if isinstance(body, (str, bytes)) else json.dumps(body)
    files: list[Any] = [("report", (None, report_part, "application/json"))] if body is not None else []
    files += [("photos", p) for p in photos or []]
    if not files:
        files = [("other", (None, "x", "text/plain"))]
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
    from report_intake.installations import solve

    headers = {"X-Forwarded-For": address} if address else {}
    challenge = (await intake.client.post("/v1/installations/challenges", headers=headers)).json()
    solution = solve(challenge["challenge"], challenge["difficulty_bits"])
    response = await intake.client.post("/v1/installations", headers=headers,
                                        json={"challenge": challenge["challenge"], "solution": solution})
    assert response.status_code == 201, response.text
    return str(response.json()["credential"])
