"""Receipts: which installations received an action (counted once, linking nothing), and an action's reach."""

from __future__ import annotations

import hashlib
import hmac
from typing import Any

from pydantic import BaseModel, Field
from sqlalchemy import func
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from burgermelding_shared.app import Runtime
from report_intake.burgernet.errors import unknown_action
from report_intake.models import AppealReceipt, PublishedAppeal

MAX_RECEIPTS = 50


class Receipts(BaseModel):
    action_ids: list[str] = Field(
        min_length=1,
        max_length=MAX_RECEIPTS,
        description="every action id in the feed the app has not confirmed yet, wherever the phone is",
    )


async def count_receipts(session: AsyncSession, action_id: str) -> int:
    return int(
        (
            await session.execute(
                select(func.count()).select_from(AppealReceipt).where(AppealReceipt.action_id == action_id)
            )
        ).scalar_one()
    )


async def reach(runtime: Runtime, action_id: str) -> dict[str, Any]:
    async with runtime.db.sessions() as session:
        stored = await session.get(PublishedAppeal, action_id[:36])
        if stored is None:
            raise unknown_action()
        count = (
            stored.fetched_count
            if stored.fetched_count is not None
            else await count_receipts(session, stored.action_id)
        )
    return {"action_id": stored.action_id, "installations": count}


def receipt_tag(secret: str, action_id: str, installation_id: str) -> str:
    return hmac.new(
        secret.encode(), f"burgernet-receipt:{action_id}:{installation_id}".encode(), hashlib.sha256
    ).hexdigest()


async def record_receipts(runtime: Runtime, installation_id: str, action_ids: list[str]) -> dict[str, int]:
    """Count this installation once per open action it confirms; unknown or ended actions are skipped (the
    feed a phone has may be a minute old)."""
    secret = runtime.settings.token_secret
    async with runtime.db.transaction() as session:
        open_ids = set(
            (
                await session.execute(
                    select(PublishedAppeal.action_id).where(
                        col(PublishedAppeal.action_id).in_([a[:36] for a in action_ids]),
                        PublishedAppeal.status == "open",
                    )
                )
            ).scalars()
        )
        rows = [{"action_id": a, "tag": receipt_tag(secret, a, installation_id)} for a in sorted(open_ids)]
        if rows:
            dialect = postgresql if not runtime.db.is_sqlite else sqlite
            await session.execute(dialect.insert(AppealReceipt).values(rows).on_conflict_do_nothing())
    return {"counted": len(rows)}
