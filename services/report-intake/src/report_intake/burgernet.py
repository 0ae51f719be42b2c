"""Burgernet for the apps: the feed of active actions, each as a CAP 1.2 alert, receipts (how many installations
got an action) and answers (sightings, witnesses' accounts), which become reports linked to their action.

The feed must hold when a million installed apps ask for it every minute: it is one small document, the same
for every phone (the phone decides whether it is inside an area: no location is ever sent for it), built at
most once a `burgernet_feed_refresh_seconds` per replica, served from memory with a strong ETag and a
Cache-Control that lets proxies and CDNs carry the load; an unchanged feed costs a 304 without a body.
"""

from __future__ import annotations

import gzip
import hashlib
import hmac
import json
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from pydantic import BaseModel, Field
from sqlalchemy import delete, func, or_
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select
from starlette.types import ASGIApp, Receive, Scope, Send

from burgermelding_shared.app import Runtime
from burgermelding_shared.burgernet import AppealLink, PublishedAction, cap_alert, cap_identifier, cap_time, link_of
from burgermelding_shared.catalogue import BURGERNET_ACTION
from burgermelding_shared.contracts import ContactDetails, Location
from burgermelding_shared.errors import ServiceError
from burgermelding_shared.messaging import first_delivery
from burgermelding_shared.timeutil import utcnow
from report_intake.config import IntakeSettings
from report_intake.models import AppealReceipt, PublishedAppeal, messaging
from report_intake.schemas import ReportSubmission

# What a sighting's report is filed under, by what the action looks for.
CATEGORY_OF = {"person": "suspicious_situation", "vehicle": "suspicious_situation",
               "missing_child": "missing_person", "witnesses": "other"}
MAX_RECEIPTS = 50


class Sighting(BaseModel):
    """The JSON in the `sighting` part: what the citizen saw, where and when. Contact details only if they
    choose to (and reach the police only with `share_with_police`)."""

    description: str = Field(min_length=1, max_length=2000, description="What you saw.")
    location: Location = Field(description="Where you saw it (not necessarily where you are now).")
    seen_at: datetime = Field(description="When you saw it (ISO 8601 with offset).")
    seeing_now: bool = Field(False, description="You see the person or vehicle right now.")
    contact: ContactDetails | None = None

    def as_report(self, action: PublishedAction) -> ReportSubmission:
        return ReportSubmission(category=CATEGORY_OF[action.looking_for], description=self.description,
                                location=self.location, observed_at=self.seen_at,
                                in_progress=self.seeing_now and action.kind == "action", contact=self.contact)


class Receipts(BaseModel):
    action_ids: list[str] = Field(min_length=1, max_length=MAX_RECEIPTS,
                                  description="every action id in the feed the app has not confirmed yet, wherever "
                                  "the phone is")


def action_closed(action: PublishedAction | None = None) -> ServiceError:
    what = f"is {action.status}" if action is not None and action.status != "open" else "has ended"
    return ServiceError(409, "burgernet_action_closed", f"this Burgernet action {what}: it takes no more answers "
                        "or photos", detail_nl="deze Burgernet-actie is beëindigd: er kunnen geen reacties of "
                        "foto's meer bij")


def unknown_action() -> ServiceError:
    return ServiceError(404, "burgernet_action_not_found", "no such Burgernet action",
                        detail_nl="deze Burgernet-actie bestaat niet")


# ---- the bridge publishes ----

async def receive_action(runtime: Runtime, action: PublishedAction, message_id: str, source: str) -> str:
    """A new version of an action; an older one than what is here changes nothing. When it ends, the receipts
    are counted once and deleted: only the figure stays."""
    async with runtime.db.transaction() as session:
        if not await first_delivery(session, messaging, message=BURGERNET_ACTION, message_id=message_id,
                                    source=source):
            return "duplicate"
        stored = await session.get(PublishedAppeal, action.action_id, with_for_update=True)
        if stored is not None and stored.version >= action.version:
            return "stale"
        if stored is None:
            stored = PublishedAppeal(action_id=action.action_id, version=0, status="open", kind=action.kind,
                                     document="{}", closes_at=action.closes_at)
        # What the public may see, whatever the sender put in (an ended action no longer says whom it sought).
        stored.version, stored.status = action.version, action.status
        stored.document = action.public().model_dump_json()
        stored.closes_at, stored.closed_at = action.closes_at, action.closed_at
        if action.status != "open" and stored.fetched_count is None:
            stored.fetched_count = await _count_receipts(session, action.action_id)
            await session.execute(delete(AppealReceipt).where(col(AppealReceipt.action_id) == action.action_id))
        session.add(stored)
    feed_of(runtime).invalidate()
    return "applied"


async def _count_receipts(session: AsyncSession, action_id: str) -> int:
    return int((await session.execute(select(func.count()).select_from(AppealReceipt)
                                      .where(AppealReceipt.action_id == action_id))).scalar_one())


async def reach(runtime: Runtime, action_id: str) -> dict[str, Any]:
    async with runtime.db.sessions() as session:
        stored = await session.get(PublishedAppeal, action_id[:36])
        if stored is None:
            raise unknown_action()
        count = stored.fetched_count if stored.fetched_count is not None else \
            await _count_receipts(session, stored.action_id)
    return {"action_id": stored.action_id, "installations": count}


# ---- the feed ----

@dataclass
class FeedDocument:
    body: bytes
    etag: str
    built: float
    gzipped: bytes = b""  # the same, compressed once: what nearly every phone takes

    @property
    def gzip_etag(self) -> str:
        return self.etag[:-1] + '-gz"'  # another representation, so another strong ETag (RFC 9110)


class ActionFeed:
    """The feed, built from the database at most once a refresh interval (and at once after this replica
    received a change), kept in memory as bytes with its ETag."""

    def __init__(self, settings: IntakeSettings) -> None:
        self.settings = settings
        self.document: FeedDocument | None = None

    def invalidate(self) -> None:
        self.document = None

    async def current(self, runtime: Runtime) -> FeedDocument:
        document = self.document
        if document is not None and time.monotonic() - document.built < self.settings.burgernet_feed_refresh_seconds:
            return document
        since = utcnow() - timedelta(hours=self.settings.burgernet_closed_visible_hours)
        async with runtime.db.sessions() as session:
            rows = (await session.execute(select(PublishedAppeal.document).where(
                or_(col(PublishedAppeal.status) == "open", col(PublishedAppeal.closed_at) >= since))
                .order_by(col(PublishedAppeal.action_id)))).scalars().all()
        base = self.settings.public_url.rstrip("/")
        actions = []
        for raw in rows:
            action = json.loads(raw)
            path = f"{base}/v1/burgernet/actions/{action['action_id']}"
            links = {"cap": f"{path}/cap", "answer": f"{path}/sightings"}
            if action.get("photo"):
                links["photo"] = f"{path}/photo"
            actions.append({**action, "links": links})
        # No time of building in it: the same actions make the same bytes and so the same ETag, on every replica.
        body = json.dumps({"actions": actions}, separators=(",", ":"), sort_keys=True).encode()
        etag = '"' + hashlib.sha256(body).hexdigest()[:32] + '"'
        # mtime 0: the same actions compress to the same bytes on every replica
        self.document = FeedDocument(body, etag, time.monotonic(), gzip.compress(body, 6, mtime=0))
        return self.document


def feed_of(runtime: Runtime) -> ActionFeed:
    feed: ActionFeed | None = runtime.extras.get("burgernet_feed")
    if feed is None:
        feed = runtime.extras["burgernet_feed"] = ActionFeed(runtime.settings)
    return feed


def etag_matches(if_none_match: str | None, *etags: str) -> bool:
    """RFC 9110 weak comparison for If-None-Match: a list of tags, `*`, W/ prefixes ignored."""
    if not if_none_match:
        return False
    tags = {t.strip().removeprefix("W/") for t in if_none_match.split(",")}
    return "*" in tags or any(etag in tags for etag in etags)


def feed_headers(settings: IntakeSettings, etag: str) -> list[tuple[bytes, bytes]]:
    max_age = settings.burgernet_feed_max_age_seconds
    return [(b"etag", etag.encode()), (b"vary", b"Accept-Encoding"),
            (b"cache-control", f"public, max-age={max_age}, stale-while-revalidate={max_age}".encode())]


FEED_PATH = "/v1/burgernet/actions"


class FeedFastPath:
    """`GET /v1/burgernet/actions` answered before the rest of the stack: the feed is one document for every
    phone, so it is served like a static file, from memory, gzipped for clients that take it, 304 for those
    that have it. A million apps a minute must not each cost routing, dependencies, a thread hop and an access
    log line (which would also be a line per phone); requests are counted by status instead. Everything else
    goes on to the app; the route in burgernet_api documents the same answers."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] != FEED_PATH or scope["method"] not in ("GET", "HEAD"):
            await self.app(scope, receive, send)
            return
        runtime: Runtime = scope["app"].state.runtime
        document = await feed_of(runtime).current(runtime)
        if_none_match = accepts_gzip = None
        for name, value in scope["headers"]:
            if name == b"if-none-match":
                if_none_match = value.decode("latin-1")
            elif name == b"accept-encoding":
                accepts_gzip = b"gzip" in value
        etag, body = (document.gzip_etag, document.gzipped) if accepts_gzip else (document.etag, document.body)
        headers = feed_headers(runtime.settings, etag)
        if etag_matches(if_none_match, document.etag, document.gzip_etag):
            status, body = 304, b""
        else:
            status = 200
            headers += [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
            if accepts_gzip:
                headers.append((b"content-encoding", b"gzip"))
        runtime.metrics.counter("bm_burgernet_feed_requests", "Requests for the Burgernet feed, by status (304: "
                                "the app had the current feed)", ["status"]).labels(str(status)).inc()
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": b"" if scope["method"] == "HEAD" else body})


# ---- one action ----

async def published(runtime: Runtime, action_id: str) -> PublishedAction:
    """An action as the public may see it: open, or ended within the feed's window. What it said of the person
    sought is not published longer than needed (the bridge keeps the police's own record)."""
    async with runtime.db.sessions() as session:
        stored = await session.get(PublishedAppeal, action_id[:36])
    visible_after = utcnow() - timedelta(hours=runtime.settings.burgernet_closed_visible_hours)
    if stored is None or (stored.closed_at is not None and stored.closed_at < visible_after):
        raise unknown_action()
    return PublishedAction.model_validate_json(stored.document)


async def open_action(runtime: Runtime, action_id: str) -> PublishedAction:
    """The action a new answer is for; 404 for none, 409 once it has ended."""
    action = await published(runtime, action_id)
    if not action.is_open_at(utcnow()):
        raise action_closed(action)
    return action


def cap_document(settings: IntakeSettings, action: PublishedAction) -> bytes:
    """The action's current version as CAP; an update or cancel references the first alert, as CAP asks."""
    first = action.model_copy(update={"version": 1})
    references = [f"{settings.burgernet_sender},{cap_identifier(first)},{cap_time(action.started_at)}"]
    return cap_alert(action, settings.burgernet_sender, settings.public_url, references)


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


# ---- receipts ----

def receipt_tag(secret: str, action_id: str, installation_id: str) -> str:
    return hmac.new(secret.encode(), f"burgernet-receipt:{action_id}:{installation_id}".encode(),
                    hashlib.sha256).hexdigest()


async def record_receipts(runtime: Runtime, installation_id: str, action_ids: list[str]) -> dict[str, int]:
    """Count this installation once per open action it confirms; unknown or ended actions are skipped (the
    feed a phone has may be a minute old)."""
    secret = runtime.settings.token_secret
    async with runtime.db.transaction() as session:
        open_ids = set((await session.execute(select(PublishedAppeal.action_id).where(
            col(PublishedAppeal.action_id).in_([a[:36] for a in action_ids]),
            PublishedAppeal.status == "open"))).scalars())
        rows = [{"action_id": a, "tag": receipt_tag(secret, a, installation_id)} for a in sorted(open_ids)]
        if rows:
            dialect = postgresql if not runtime.db.is_sqlite else sqlite
            await session.execute(dialect.insert(AppealReceipt).values(rows).on_conflict_do_nothing())
    return {"counted": len(rows)}
