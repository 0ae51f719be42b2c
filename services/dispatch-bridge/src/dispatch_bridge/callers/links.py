"""One-time links for a caller's camera (issue #33): a dispatcher on a 112 call asks a caller to show what they see.

The bridge makes the link (an unguessable token in a short URL on intake's public host), sends it by SMS and tells
intake the token's SHA-256 (intake serves the caller's page and knows the link by nothing else). What the caller
does there (opens it, gives or refuses consent, uploads) comes back as events, shown to the dispatcher live and
kept in the audit chain with every step of the bridge's own.

The caller's number is used to send the SMS and is never stored: while the link lives the bridge keeps a keyed
hash of it (a second request to the same phone within a minute is the same link: a double click sends one SMS)
and its last two digits (the dispatcher's screen); both go when the link ends (revoked, or expired).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import secrets
import uuid
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from burgermelding_shared.app import Runtime
from burgermelding_shared.background import BackgroundLoop
from burgermelding_shared.catalogue import CALLER_LINK_EVENT, CALLER_LINK_ISSUED, CALLER_LINK_REVOKED
from burgermelding_shared.contracts import CallerLinkEvent, CallerLinkIssued, CallerLinkRevoked, Location
from burgermelding_shared.errors import ServiceError
from burgermelding_shared.messaging import Precedence, enqueue, first_delivery
from burgermelding_shared.timeutil import utcnow
from dispatch_bridge.audit import BRIDGE, Who, audit
from dispatch_bridge.callers.sms import CmSmsGateway, SmsUnavailable, sms_unavailable
from dispatch_bridge.models import CallerLink, Incident, messaging

DOUBLE_SUBMIT = timedelta(minutes=1)
AMSTERDAM = ZoneInfo("Europe/Amsterdam")  # the time in the SMS is the caller's clock


class LinkState(StrEnum):
    SENT = "sent"
    OPENED = "opened"
    CONSENT_GIVEN = "consent_given"
    CONSENT_REFUSED = "consent_refused"
    UPLOADING = "uploading"
    RECEIVED = "received"
    REVOKED = "revoked"
    EXPIRED = "expired"
    FAILED = "failed"  # the SMS gateway did not take it: the caller never got the link


# How far along each state is: an event never takes a link back (a caller who opens the page again after consent
# is still past consent). Consent given and refused are level: a caller may change their mind.
PROGRESS = {
    LinkState.SENT: 0,
    LinkState.OPENED: 1,
    LinkState.CONSENT_REFUSED: 2,
    LinkState.CONSENT_GIVEN: 2,
    LinkState.UPLOADING: 3,
    LinkState.RECEIVED: 4,
}
ENDED = {LinkState.REVOKED, LinkState.EXPIRED, LinkState.FAILED}

SMS_TEXTS = {
    "nl": "Politie: de meldkamer vraagt u te laten zien wat u ziet. Open {url} (geldig tot {until}). "
    "Alleen als het veilig is.",
    "en": "Police: the control room asks you to show what you see. Open {url} (valid until {until}). "
    "Only if it is safe.",
}


def e164(phone: str) -> str:
    """A phone number as typed by a dispatcher ("06 1234 5678", "+31 6 12345678", "0031612345678") in E.164."""
    digits = re.sub(r"[\s().-]", "", phone or "")
    if re.fullmatch(r"06\d{8}", digits):
        digits = "+31" + digits[1:]
    elif digits.startswith("00"):
        digits = "+" + digits[2:]
    if not re.fullmatch(r"\+[1-9]\d{7,14}", digits):
        raise ServiceError(
            422,
            "invalid_phone_number",
            "give the caller's mobile number, as 06 12345678 or +31 6 12345678",
            detail_nl="Geef het mobiele nummer van de beller, als 06 12345678 of +31 6 12345678",
        )
    return digits


def phone_hash(key: str, number: str) -> str:
    return hmac.new(key.encode(), number.encode(), hashlib.sha256).hexdigest()


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def state_of(link: CallerLink, now: datetime | None = None) -> LinkState:
    """The state as the dispatcher should see it: one that ran out is expired even before the sweep has ended it
    (unless the caller's images arrived: those stay what the link brought)."""
    state = LinkState(link.state)
    if link.ended_at is None and (now or utcnow()) >= link.expires_at and state != LinkState.RECEIVED:
        return LinkState.EXPIRED
    return state


def view(link: CallerLink, now: datetime | None = None) -> dict[str, Any]:
    return {
        "id": link.id,
        "incident_id": link.incident_id,
        "phone_ending": link.phone_last2,
        "language": link.language,
        "ask": link.ask,
        "state": state_of(link, now).value,
        "files": link.files,
        "created_by": link.created_by,
        "created_at": link.created_at,
        "expires_at": link.expires_at,
        "refused": json.loads(link.refused) if link.refused else None,
        "state_at": link.state_at,
        "ended_at": link.ended_at,
    }


async def send_link(
    runtime: Runtime, actor: Who, incident_id: str, phone: str, language: str, ask: str
) -> dict[str, Any]:
    """Make a link for the caller at `phone`, tell intake, and send it by SMS. If the gateway does not take the
    SMS, the link ends at once as `failed` (no number kept) and the answer is 503: try again."""
    settings = runtime.settings
    number = e164(phone)
    hashed = phone_hash(settings.caller_phone_key, number)
    now = utcnow()
    async with runtime.db.sessions() as session:
        incident = await session.get(Incident, incident_id)
        if incident is None:
            raise ServiceError(404, "incident_not_found", "no such incident", detail_nl="dit incident bestaat niet")
        if incident.lat is None or incident.lon is None:  # every incident has its reports' centre; an old one may not
            raise ServiceError(
                409,
                "incident_without_place",
                "this incident has no place for a caller's images to belong to",
                detail_nl="dit incident heeft geen plaats waar de beelden van een beller bij kunnen horen",
            )
        centre = Location(lat=incident.lat, lon=incident.lon)
        recent = (
            await session.execute(
                select(CallerLink).where(
                    CallerLink.incident_id == incident_id,
                    CallerLink.phone_hash == hashed,
                    col(CallerLink.ended_at).is_(None),
                    col(CallerLink.created_at) >= now - DOUBLE_SUBMIT,
                )
            )
        ).scalar_one_or_none()
    if recent is not None:  # the same request again (a double click, a retry): one SMS
        return view(recent, now)
    token = secrets.token_urlsafe(16)  # 128 bits: unguessable, and short enough for an SMS
    link_id = str(uuid.uuid4())
    expires_at = now + timedelta(minutes=settings.caller_link_minutes)
    url = f"{settings.caller_link_base_url.rstrip('/')}/c/{token}"
    until = expires_at.astimezone(AMSTERDAM).strftime("%H:%M")
    link = CallerLink(
        id=link_id,
        incident_id=incident_id,
        phone_hash=hashed,
        phone_last2=number[-2:],
        language=language,
        ask=ask,
        state=LinkState.SENT,
        created_by=actor.username,
        created_at=now,
        expires_at=expires_at,
        state_at=now,
    )
    # Intake is told before the SMS goes, so that the link works by the time the phone shows it (even while the
    # outbox is busy with a flood: the message is urgent and ordered by nothing else).
    async with runtime.db.transaction() as session:
        session.add(link)
        issued = CallerLinkIssued(
            link_id=link_id,
            token_sha256=token_hash(token),
            incident_id=incident_id,
            language="en" if language == "en" else "nl",
            ask=ask,
            expires_at=expires_at,
            category=incident.category,
            incident_location=centre,
        )
        await enqueue(
            session, messaging, CALLER_LINK_ISSUED, issued, precedence=Precedence.URGENT, ordering_key=order(link_id)
        )
    gateway = CmSmsGateway(settings.sms_url, settings.sms_product_token, settings.sms_sender)
    try:
        await gateway.send(number, SMS_TEXTS[language].format(url=url, until=until), reference=link_id.replace("-", ""))
    except SmsUnavailable as exc:
        # No SMS, so no link: it ends at once (intake is told, the number goes) and the dispatcher may try again.
        async with runtime.db.transaction() as session:
            failed = await session.get(CallerLink, link_id)
            if failed is not None:
                await end_for_intake(session, failed, LinkState.FAILED, utcnow())
                audit(session, actor, "caller_link.sms_failed", "incident", incident_id, {"link_id": link_id})
        raise sms_unavailable() from exc
    async with runtime.db.transaction() as session:
        audit(
            session,
            actor,
            "caller_link.sent",
            "incident",
            incident_id,
            {"link_id": link_id, "phone_ending": link.phone_last2, "language": language, "expires_at": expires_at},
        )
    return view(link, now)


def order(link_id: str) -> str:
    """The ordering key of a link's messages: intake applies its revocation after its issue."""
    return f"caller-link:{link_id}"


async def links_of(runtime: Runtime, incident_id: str) -> list[dict[str, Any]]:
    async with runtime.db.sessions() as session:
        links = (
            await session.execute(
                select(CallerLink)
                .where(CallerLink.incident_id == incident_id)
                .order_by(col(CallerLink.created_at).desc())
            )
        ).scalars()
        now = utcnow()
        return [view(link, now) for link in links]


async def revoke(runtime: Runtime, actor: Who, link_id: str) -> dict[str, Any]:
    now = utcnow()
    async with runtime.db.transaction() as session:
        link = await session.get(CallerLink, link_id)
        if link is None:
            raise ServiceError(
                404, "caller_link_not_found", "no such caller link", detail_nl="deze link voor een beller bestaat niet"
            )
        if link.ended_at is None:
            await end_for_intake(session, link, LinkState.REVOKED, now)
            audit(session, actor, "caller_link.revoked", "incident", link.incident_id, {"link_id": link_id})
        return view(link, now)


async def end_for_intake(session: AsyncSession, link: CallerLink, state: LinkState, now: datetime) -> None:
    """End a link before its time (revoked, or its SMS failed) and tell intake, whose page then refuses it."""
    end(link, state, now)
    revoked = CallerLinkRevoked(link_id=link.id, revoked_at=now)
    await enqueue(
        session, messaging, CALLER_LINK_REVOKED, revoked, precedence=Precedence.URGENT, ordering_key=order(link.id)
    )


def end(link: CallerLink, state: LinkState, now: datetime) -> None:
    """The link ends: what it brought stays, the caller's number (its hash and last digits) goes."""
    if link.state != LinkState.RECEIVED or state != LinkState.EXPIRED:
        link.state = state
    link.ended_at = link.state_at = now
    link.phone_hash = link.phone_last2 = None


async def apply_event(runtime: Runtime, event: CallerLinkEvent, message_id: str, source: str) -> str:
    """What the caller did, from intake: the link's state moves on (never back), and the step is in the chain."""
    async with runtime.db.transaction() as session:
        if not await first_delivery(
            session, messaging, message=CALLER_LINK_EVENT, message_id=message_id, source=source
        ):
            return "duplicate"
        link = await session.get(CallerLink, event.link_id)
        if link is None:
            return "unknown"
        current = LinkState(link.state)
        if event.event == "upload_refused":
            # Not uploading any more: back to where the link stood before the refused files.
            new = LinkState.RECEIVED if max(link.files, event.files) else LinkState.CONSENT_GIVEN
            if link.ended_at is None and current == LinkState.UPLOADING:
                link.state, link.state_at = new, event.at
            link.refused = event.problem.model_dump_json() if event.problem else None
        else:
            new = LinkState(event.event)
            if link.ended_at is None and PROGRESS[new] >= PROGRESS.get(current, 0):
                link.state, link.state_at = new, event.at
            if new == LinkState.RECEIVED:
                link.refused = None
        link.files = max(link.files, event.files)
        detail = {"link_id": link.id, "files": event.files, "at": event.at}
        if event.problem:
            detail["problem"] = event.problem.error
        audit(session, BRIDGE, f"caller_link.{event.event}", "incident", link.incident_id, detail)
    return "applied"


class CallerLinkExpiry(BackgroundLoop):
    """Ends links whose time is up: the caller's number (hash and last digits) goes as soon as the link does."""

    name = "caller-link-expiry"
    poll_seconds = 15.0

    def __init__(self, runtime: Runtime) -> None:
        super().__init__()
        self.runtime = runtime

    async def run_once(self) -> int:
        now = utcnow()
        async with self.runtime.db.transaction() as session:
            due = list(
                (
                    await session.execute(
                        select(CallerLink).where(col(CallerLink.ended_at).is_(None), col(CallerLink.expires_at) <= now)
                    )
                ).scalars()
            )
            for link in due:
                end(link, LinkState.EXPIRED, now)
                audit(session, BRIDGE, "caller_link.expired", "incident", link.incident_id, {"link_id": link.id})
        return len(due)
