"""Retention: how long personal data is kept (AVG, Wpg, Archiefwet), and the deletion log.

The rules are data: each names the reports it applies to (their outcome and category), what it does
(`remove_contact` < `anonymise` < `purge`) and after how many days, counted from receipt or from the end of the
case. report-intake owns a report's life, so its job (`report_intake.retention`) applies them and tells
verification and the bridge (`RetentionApplied`) to do the same to their copies; none of them acts on a report
under legal hold. Every service logs each deletion in its `deletion_log` (what went, when, under which rule,
nothing personal) and in its audit chain.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import Column, Index, Integer, MetaData, String, Table, Text, delete, insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from burgermelding_shared import auditchain
from burgermelding_shared.auditchain import AuditTables
from burgermelding_shared.background import BackgroundLoop
from burgermelding_shared.contracts import RetentionAction
from burgermelding_shared.db import Database, before_commit, rowcount
from burgermelding_shared.messaging import DELIVERED, MessagingTables
from burgermelding_shared.timeutil import UTCDateTime, utcnow

SEVERITY: dict[str, int] = {"remove_contact": 1, "anonymise": 2, "purge": 3}
Outcome = Literal["any", "open", "finished", "closed", "rejected", "withdrawn"]


class RetentionRule(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(max_length=64, pattern=r"^[a-z0-9_\-]+$")
    outcome: Outcome = Field(description="`finished`: closed, rejected, declined or withdrawn; `open`: not yet")
    category: str = Field("*", description="a report category, or `*` for every one")
    action: RetentionAction
    after_days: float = Field(ge=0)
    counted_from: Literal["received", "finished"] = "received"


# The defaults, documented in the README (Retention). Order does not matter: the most severe rule that is due
# wins. Reports under legal hold are left alone by all of them.
DEFAULT_RULES: list[RetentionRule] = [
    RetentionRule(name="rejected-purged", outcome="rejected", action="purge", after_days=30),
    RetentionRule(
        name="contact-after-closing", outcome="finished", action="remove_contact", after_days=0, counted_from="finished"
    ),
    RetentionRule(
        name="withdrawn-anonymised", outcome="withdrawn", action="anonymise", after_days=0, counted_from="finished"
    ),
    RetentionRule(name="anonymised-after-a-year", outcome="any", action="anonymise", after_days=365),
    RetentionRule(name="purged-after-five-years", outcome="any", action="purge", after_days=5 * 365),
]


def due_at(rule: RetentionRule, received_at: datetime, finished_at: datetime | None) -> datetime | None:
    """When a rule falls due for a report, or None while it cannot (counted from an end that has not come)."""
    start = received_at if rule.counted_from == "received" else finished_at
    return None if start is None else start + timedelta(days=rule.after_days)


def rule_applies(rule: RetentionRule, category: str, outcome: str | None) -> bool:
    """`outcome`: the report's final status (closed, rejected, declined, withdrawn), None while it is open."""
    if rule.category not in ("*", category):
        return False
    return (
        rule.outcome == "any"
        or (rule.outcome == "open" and outcome is None)
        or (rule.outcome == "finished" and outcome is not None)
        or rule.outcome == outcome
    )


def deletion_log_table(metadata: MetaData) -> Table:
    return Table(
        "deletion_log",
        metadata,
        Column("id", Integer, primary_key=True, autoincrement=True),
        Column("at", UTCDateTime, nullable=False),
        Column("report_id", String(36), nullable=False),
        Column("reference", String(32)),  # BM-2026-000123: what the citizen and the police call it
        Column("rule", String(64), nullable=False),
        Column("action", String(16), nullable=False),
        Column("removed", Text, nullable=False),  # JSON: which parts, how many, the photos' digests
        Index("ix_deletion_log_report", "report_id"),
    )


def log_deletion(
    session: AsyncSession,
    deletions: Table,
    audit: AuditTables,
    *,
    report_id: str,
    reference: str | None,
    rule: str,
    action: str,
    removed: dict[str, Any],
) -> None:
    """One deletion, in the deletion log and the audit chain, in the transaction that deletes."""
    now = utcnow()
    session.info.setdefault("deletion-log", []).append(
        {
            "at": now,
            "report_id": report_id,
            "reference": reference,
            "rule": rule,
            "action": action,
            "removed": json.dumps(removed, sort_keys=True),
        }
    )
    auditchain.record(
        session,
        audit,
        actor="retention" if rule != "citizen-request" else "citizen",
        role="system" if rule != "citizen-request" else "citizen",
        action=f"retention.{action}",
        target_type="report",
        target_id=report_id,
        report_id=report_id,
        detail={"rule": rule, "removed": removed},
    )

    async def flush(session: AsyncSession) -> None:
        rows = session.info.pop("deletion-log", [])
        if rows:
            await session.execute(insert(deletions), rows)

    before_commit(session, "deletion-log", flush)


async def personal_data_removed(session: AsyncSession, deletions: Table, report_id: str) -> bool:
    """Whether this service's deletion log says the report's personal data went (anonymised or purged). A copy
    of the report that arrives after that (a revision sent before the withdrawal and delivered after it: report
    messages travel without an ordering key, so the first urgent one is not held back) must not bring it back."""
    found = await session.execute(
        select(deletions.c.id)
        .where(deletions.c.report_id == report_id, deletions.c.action.in_(["anonymise", "purge"]))
        .limit(1)
    )
    return found.first() is not None


async def purge_settled_messages(session: AsyncSession, messaging: MessagingTables, older_than_days: float) -> int:
    """Delivered outbox messages (their payloads are copies of reports) and inbox records older than this go:
    a message delivered long ago is not needed to deliver it, nor its inbox row to spot a repeat of it."""
    cutoff = utcnow() - timedelta(days=older_than_days)
    outbox, inbox = messaging.outbox, messaging.inbox
    sent = await session.execute(delete(outbox).where(outbox.c.status == DELIVERED, outbox.c.delivered_at < cutoff))
    await session.execute(delete(inbox).where(inbox.c.received_at < cutoff))
    return rowcount(sent)


class SettledMessagesPurger(BackgroundLoop):
    """For a service without a retention job of its own: its settled messages go after `days`."""

    name = "settled-messages-purger"
    poll_seconds = 3600.0

    def __init__(self, db: Database, messaging: MessagingTables, days: float) -> None:
        super().__init__()
        self._db, self._messaging, self._days = db, messaging, days

    async def run_once(self) -> int:
        async with self._db.transaction() as session:
            await purge_settled_messages(session, self._messaging, self._days)
        return 0
