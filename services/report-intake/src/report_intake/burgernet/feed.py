"""The public feed of open and recently ended actions: one cacheable document, and CAP."""

from __future__ import annotations

import gzip
import hashlib
import json
import time
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import or_
from sqlmodel import col, select
from starlette.types import ASGIApp, Receive, Scope, Send

from burgermelding_shared.app import Runtime
from burgermelding_shared.burgernet import PublishedAction, cap_alert, cap_identifier, cap_time
from burgermelding_shared.timeutil import utcnow
from report_intake.burgernet.errors import unknown_action
from report_intake.config import IntakeSettings
from report_intake.models import PublishedAppeal


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
            rows = (
                (
                    await session.execute(
                        select(PublishedAppeal.document)
                        .where(or_(col(PublishedAppeal.status) == "open", col(PublishedAppeal.closed_at) >= since))
                        .order_by(col(PublishedAppeal.action_id))
                    )
                )
                .scalars()
                .all()
            )
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
    return [
        (b"etag", etag.encode()),
        (b"vary", b"Accept-Encoding"),
        (b"cache-control", f"public, max-age={max_age}, stale-while-revalidate={max_age}".encode()),
    ]


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
        runtime.metrics.counter(
            "bm_burgernet_feed_requests",
            "Requests for the Burgernet feed, by status (304: the app had the current feed)",
            ["status"],
        ).labels(str(status)).inc()
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": b"" if scope["method"] == "HEAD" else body})


async def published(runtime: Runtime, action_id: str) -> PublishedAction:
    """An action as the public may see it: open, or ended within the feed's window. What it said of the person
    sought is not published longer than needed (the bridge keeps the police's own record)."""
    async with runtime.db.sessions() as session:
        stored = await session.get(PublishedAppeal, action_id[:36])
    visible_after = utcnow() - timedelta(hours=runtime.settings.burgernet_closed_visible_hours)
    if stored is None or (stored.closed_at is not None and stored.closed_at < visible_after):
        raise unknown_action()
    return PublishedAction.model_validate_json(stored.document)


def cap_document(settings: IntakeSettings, action: PublishedAction) -> bytes:
    """The action's current version as CAP; an update or cancel references the first alert, as CAP asks."""
    first = action.model_copy(update={"version": 1})
    references = [f"{settings.burgernet_sender},{cap_identifier(first)},{cap_time(action.started_at)}"]
    return cap_alert(action, settings.burgernet_sender, settings.public_url, references)
