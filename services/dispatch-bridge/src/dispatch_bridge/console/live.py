"""The console's live feed: what changed, which urgent incidents are open, and which missed the 112 deadline.

One watcher per bridge process reads a small summary of the desk every `POLL_SECONDS` while at least one
console is connected, and wakes every connected console when it changed. It reads the shared database, so a
report that reached another replica of the bridge shows here as fast. Each console then fetches the part of
its page that shows the change (the incident list, or the incident it has open), as the dispatcher it is, so
that what it is shown is audited as every other view.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

# SQLAlchemy's select: SQLModel's takes at most four columns.
from sqlalchemy import func, select
from sqlmodel import col

from burgermelding_shared.app import Runtime
from burgermelding_shared.categories import CATEGORIES
from burgermelding_shared.urgency import MeldkamerPriority
from dispatch_bridge.console.texts import Texts
from dispatch_bridge.models import BridgeMessage, BridgeReport, CallerLink, Incident
from dispatch_bridge.states import CLOSED_STATUSES, NOT_ACCEPTED

POLL_SECONDS = 0.5
FEEDS_PER_SESSION = 4  # tabs of one dispatcher; more is a runaway page (or someone holding connections open)


@dataclass
class Snapshot:
    version: str
    urgent: list[dict[str, Any]]
    overdue: list[dict[str, Any]]

    def event(self) -> str:
        return json.dumps({"version": self.version, "urgent": self.urgent, "overdue": self.overdue})


def labels(code: str) -> dict[str, str]:
    category = CATEGORIES.get(code)
    return {"nl": category.name_nl, "en": category.name_en} if category else {"nl": code, "en": code}


def names(category: str, meldkamer_incident_id: str | None) -> dict[str, str]:
    """The incident's name in each language, for the banner and the alarm (`Texts.incident_name`)."""
    return {language: Texts(language).incident_name(category, meldkamer_incident_id) for language in ("nl", "en")}


async def read_snapshot(runtime: Runtime) -> Snapshot:
    async with runtime.db.sessions() as session:
        open_incidents = (
            await session.execute(
                select(
                    col(Incident.id),
                    col(Incident.priority),
                    col(Incident.category),
                    col(Incident.delivery_state),
                    col(Incident.created_at),
                    col(Incident.call_112_sent_at),
                    col(Incident.summary_version),
                    col(Incident.operational_status),
                    col(Incident.updated_at),
                    col(Incident.meldkamer_incident_id),
                    col(Incident.address),  # found in the background: the rows shown change when it is
                )
                .where(col(Incident.merged_into).is_(None))
                .order_by(col(Incident.created_at).desc())
                .limit(500)
            )
        ).all()
        # The revisions' sum: a report's next revision (a HEIC's display copy, a video's compatible copy) changes
        # the page that shows it, though its state and verdict stay.
        reports = (
            await session.execute(
                select(
                    col(BridgeReport.state), col(BridgeReport.verdict), func.count(), func.sum(BridgeReport.revision)
                ).group_by(col(BridgeReport.state), col(BridgeReport.verdict))
            )
        ).all()
        messages = (
            await session.execute(select(func.count(), func.max(BridgeMessage.sent_at)).select_from(BridgeMessage))
        ).one()
        merged = (
            await session.execute(
                select(func.count()).select_from(Incident).where(col(Incident.merged_into).is_not(None))
            )
        ).scalar_one()
        # A caller's link moving on (opened, consent, uploads) changes the incident page that shows it.
        callers = (
            await session.execute(select(func.count(), func.max(CallerLink.state_at)).select_from(CallerLink))
        ).one()
    digest = hashlib.sha256(
        repr((open_incidents, sorted(reports, key=repr), tuple(messages), merged, tuple(callers))).encode()
    ).hexdigest()[:16]
    live = [i for i in open_incidents if i.operational_status not in CLOSED_STATUSES]
    urgent_ones = [i for i in live if i.priority == MeldkamerPriority.URGENT]
    urgent = [
        {"id": i.id, "category": labels(i.category), "name": names(i.category, i.meldkamer_incident_id)}
        for i in urgent_ones
    ]
    overdue = [
        {
            "id": i.id,
            "category": labels(i.category),
            "name": names(i.category, i.meldkamer_incident_id),
            "created_at": i.created_at.isoformat(),
        }
        for i in urgent_ones
        if i.call_112_sent_at is not None and i.delivery_state in NOT_ACCEPTED
    ]
    return Snapshot(digest, urgent, overdue)


@dataclass
class LiveFeed:
    """Wakes every waiting console when the desk changed; polls only while someone listens."""

    runtime: Runtime
    latest: Snapshot | None = None
    listeners: int = 0
    _changed: asyncio.Condition = field(default_factory=asyncio.Condition)
    _open: dict[str, int] = field(default_factory=dict)  # live feeds by session (this process)
    _task: asyncio.Task[None] | None = None

    def admit(self, session_digest: str) -> bool:
        if self._open.get(session_digest, 0) >= FEEDS_PER_SESSION:
            return False
        self._open[session_digest] = self._open.get(session_digest, 0) + 1
        return True

    def release(self, session_digest: str) -> None:
        left = self._open.get(session_digest, 1) - 1
        if left > 0:
            self._open[session_digest] = left
        else:
            self._open.pop(session_digest, None)

    async def wait(self, seen: str | None, limit: float) -> Snapshot | None:
        """The next snapshot other than `seen` (the first one at once), or None after `limit` seconds."""
        self.listeners += 1
        try:
            if self._task is None or self._task.done():
                self._task = asyncio.create_task(self._watch())
            async with self._changed:
                try:
                    await asyncio.wait_for(
                        self._changed.wait_for(lambda: self.latest is not None and self.latest.version != seen), limit
                    )
                except TimeoutError:
                    return None
                return self.latest
        finally:
            self.listeners -= 1

    async def _watch(self) -> None:
        idle_rounds = 0
        while idle_rounds < 20:  # ten seconds with nobody listening: stop reading the database
            snapshot: Snapshot | None
            try:
                snapshot = await read_snapshot(self.runtime)
            except Exception:  # a database hiccup: keep the last snapshot, try again at the next round
                snapshot = self.latest
            if snapshot is not None and (self.latest is None or snapshot.version != self.latest.version):
                async with self._changed:
                    self.latest = snapshot
                    self._changed.notify_all()
            idle_rounds = 0 if self.listeners else idle_rounds + 1
            await asyncio.sleep(POLL_SECONDS)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task


def feed_of(runtime: Runtime) -> LiveFeed:
    feed: LiveFeed = runtime.extras.setdefault("console_feed", LiveFeed(runtime))
    return feed


@contextlib.asynccontextmanager
async def feed_hook(runtime: Runtime) -> AsyncIterator[None]:
    """The bridge's lifespan: the watcher stops with the process."""
    yield
    feed = runtime.extras.get("console_feed")
    if feed is not None:
        await feed.stop()
