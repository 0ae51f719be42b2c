"""Caller links as intake knows them: by their token's SHA-256 (the token is in the caller's SMS only), made and
ended by the bridge, and what the caller does with them, told back to the bridge (its outbox, in order)."""

from __future__ import annotations

import hashlib
from datetime import datetime
from enum import StrEnum

from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import select

from burgermelding_shared.app import Runtime
from burgermelding_shared.catalogue import CALLER_LINK_EVENT, CALLER_LINK_ISSUED, CALLER_LINK_REVOKED
from burgermelding_shared.contracts import (
    CallerLinkEvent,
    CallerLinkEventKind,
    CallerLinkIssued,
    CallerLinkRef,
    CallerLinkRevoked,
    RefusalSaid,
)
from burgermelding_shared.messaging import Precedence, enqueue, first_delivery
from burgermelding_shared.timeutil import utcnow
from report_intake.models import CallerLink, messaging
from report_intake.records import audit


class Standing(StrEnum):
    """What a token opens: a live link, or why not (each has a page of its own)."""

    LIVE = "live"
    UNKNOWN = "unknown"  # never made, mistyped, or not yet arrived from the bridge
    REVOKED = "revoked"
    EXPIRED = "expired"


def token_sha256(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def standing(link: CallerLink | None, now: datetime | None = None) -> Standing:
    if link is None:
        return Standing.UNKNOWN
    if link.revoked_at is not None:
        return Standing.REVOKED
    if (now or utcnow()) >= link.expires_at:
        return Standing.EXPIRED
    return Standing.LIVE


async def find(session: AsyncSession, token: str) -> CallerLink | None:
    """The link a token opens. A token is looked up by its hash only; a malformed one finds nothing."""
    if not (16 <= len(token) <= 64) or not token.replace("-", "").replace("_", "").isalnum():
        return None
    return (
        await session.execute(select(CallerLink).where(CallerLink.token_sha256 == token_sha256(token)))
    ).scalar_one_or_none()


async def receive_issued(runtime: Runtime, issued: CallerLinkIssued, message_id: str, source: str) -> str:
    async with runtime.db.transaction() as session:
        if not await first_delivery(
            session, messaging, message=CALLER_LINK_ISSUED, message_id=message_id, source=source
        ):
            return "duplicate"
        if await session.get(CallerLink, issued.link_id) is None:
            session.add(
                CallerLink(
                    link_id=issued.link_id,
                    token_sha256=issued.token_sha256,
                    incident_id=issued.incident_id,
                    language=issued.language,
                    ask=issued.ask,
                    expires_at=issued.expires_at,
                    category=issued.category,
                    lat=issued.incident_location.lat,
                    lon=issued.incident_location.lon,
                )
            )
            audit.record(
                session,
                "caller_link.received",
                None,
                target_type="caller_link",
                target_id=issued.link_id,
                detail={"incident_id": issued.incident_id, "expires_at": issued.expires_at.isoformat()},
            )
    return "applied"


async def receive_revoked(runtime: Runtime, revoked: CallerLinkRevoked, message_id: str, source: str) -> str:
    async with runtime.db.transaction() as session:
        if not await first_delivery(
            session, messaging, message=CALLER_LINK_REVOKED, message_id=message_id, source=source
        ):
            return "duplicate"
        link = await session.get(CallerLink, revoked.link_id)
        if link is not None and link.revoked_at is None:
            link.revoked_at = revoked.revoked_at
            audit.record(session, "caller_link.revoked", None, target_type="caller_link", target_id=link.link_id)
    return "applied"


async def tell_bridge(
    session: AsyncSession,
    link: CallerLink,
    event: CallerLinkEventKind,
    files: int = 0,
    problem: RefusalSaid | None = None,
) -> None:
    """The caller's step, to the bridge (the dispatcher's screen) and into intake's own chain."""
    at = utcnow()
    news = CallerLinkEvent(link_id=link.link_id, event=event, at=at, files=files, problem=problem)
    await enqueue(
        session,
        messaging,
        CALLER_LINK_EVENT,
        news,
        precedence=Precedence.URGENT,
        ordering_key=f"caller-link:{link.link_id}",
    )
    audit.record(
        session,
        f"caller_link.{event}",
        None,
        target_type="caller_link",
        target_id=link.link_id,
        detail={"files": files, **({"problem": problem.error} if problem else {})},
    )


async def ref_of(session: AsyncSession, link_id: str) -> CallerLinkRef | None:
    """What a report made from a caller's link tells the others of it: the link and the incident it was for."""
    link = await session.get(CallerLink, link_id)
    return CallerLinkRef(link_id=link.link_id, incident_id=link.incident_id) if link is not None else None
