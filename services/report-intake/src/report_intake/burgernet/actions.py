"""Actions as the bridge published them, and the answers citizens send to them."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field
from sqlalchemy import delete
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from burgermelding_shared.app import Runtime
from burgermelding_shared.burgernet import AppealLink, PublishedAction, link_of
from burgermelding_shared.catalogue import BURGERNET_ACTION
from burgermelding_shared.contracts import ContactDetails, Location
from burgermelding_shared.messaging import first_delivery
from burgermelding_shared.timeutil import utcnow
from report_intake.burgernet.errors import action_closed, unknown_action
from report_intake.burgernet.feed import feed_of, published
from report_intake.burgernet.receipts import count_receipts
from report_intake.models import AppealReceipt, PublishedAppeal, messaging
from report_intake.schemas import ReportSubmission

# What a sighting's report is filed under, by what the action looks for.
CATEGORY_OF = {
    "person": "suspicious_situation",
    "vehicle": "suspicious_situation",
    "missing_child": "missing_person",
    "witnesses": "other",
}


class Sighting(BaseModel):
    """The JSON in the `sighting` part: what the citizen saw, where and when. Contact details only if they
    choose to (and reach the police only with `share_with_police`)."""

    description: str = Field(min_length=1, max_length=2000, description="What you saw.")
    location: Location = Field(description="Where you saw it (not necessarily where you are now).")
    seen_at: datetime = Field(description="When you saw it (ISO 8601 with offset).")
    seeing_now: bool = Field(False, description="You see the person or vehicle right now.")
    contact: ContactDetails | None = None

    def as_report(self, action: PublishedAction) -> ReportSubmission:
        return ReportSubmission(
            category=CATEGORY_OF[action.looking_for],
            description=self.description,
            location=self.location,
            observed_at=self.seen_at,
            in_progress=self.seeing_now and action.kind == "action",
            contact=self.contact,
        )


async def receive_action(runtime: Runtime, action: PublishedAction, message_id: str, source: str) -> str:
    """A new version of an action; an older one than what is here changes nothing. When it ends, the receipts
    are counted once and deleted: only the figure stays."""
    async with runtime.db.transaction() as session:
        if not await first_delivery(session, messaging, message=BURGERNET_ACTION, message_id=message_id, source=source):
            return "duplicate"
        stored = await session.get(PublishedAppeal, action.action_id, with_for_update=True)
        if stored is not None and stored.version >= action.version:
            return "stale"
        if stored is None:
            stored = PublishedAppeal(
                action_id=action.action_id,
                version=0,
                status="open",
                kind=action.kind,
                document="{}",
                closes_at=action.closes_at,
            )
        # What the public may see, whatever the sender put in (an ended action no longer says whom it sought).
        stored.version, stored.status = action.version, action.status
        stored.document = action.public().model_dump_json()
        stored.closes_at, stored.closed_at = action.closes_at, action.closed_at
        if action.status != "open" and stored.fetched_count is None:
            stored.fetched_count = await count_receipts(session, action.action_id)
            await session.execute(delete(AppealReceipt).where(col(AppealReceipt.action_id) == action.action_id))
        session.add(stored)
    feed_of(runtime).invalidate()
    return "applied"


async def open_action(runtime: Runtime, action_id: str) -> PublishedAction:
    """The action a new answer is for; 404 for none, 409 once it has ended."""
    action = await published(runtime, action_id)
    if not action.is_open_at(utcnow()):
        raise action_closed(action)
    return action


async def answer_link(session: AsyncSession, action_id: str, lock: bool = False) -> AppealLink:
    """The open action a new answer (or photo) is for, as the report will carry it; 409 once it has ended.
    Locked with `lock`, so an answer and the action's closing cannot cross (PostgreSQL)."""
    query = select(PublishedAppeal).where(PublishedAppeal.action_id == action_id[:36])
    stored = (await session.execute(query.with_for_update(read=True) if lock else query)).scalars().first()
    if stored is None:
        raise unknown_action()
    action = PublishedAction.model_validate_json(stored.document)
    if not action.is_open_at(utcnow()):
        raise action_closed(action)
    return link_of(action)


async def link_of_report(session: AsyncSession, appeal_id: str) -> AppealLink | None:
    """What a report that answers an action carries with it to verification and the bridge."""
    stored = await session.get(PublishedAppeal, appeal_id)
    return link_of(PublishedAction.model_validate_json(stored.document)) if stored is not None else None
