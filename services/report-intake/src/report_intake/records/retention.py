"""Retention: personal data removed by rule (or by the citizen), never from a report under legal hold, and the same
done to verification's and the bridge's copies."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol

from sqlalchemy import delete, exists, or_, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from burgermelding_shared.app import Runtime
from burgermelding_shared.background import BackgroundLoop
from burgermelding_shared.blobstore import BlobStore
from burgermelding_shared.catalogue import Service, retention_for
from burgermelding_shared.contracts import RetentionAction, RetentionApplied, coarse
from burgermelding_shared.db import Database, rowcount
from burgermelding_shared.messaging import Precedence, enqueue
from burgermelding_shared.retention import SEVERITY, RetentionRule, due_at, log_deletion, rule_applies
from burgermelding_shared.timeutil import utcnow
from report_intake import texts
from report_intake.models import (
    Contact,
    DisplayJob,
    Message,
    Photo,
    Report,
    ReportHold,
    TimelineEntry,
    audit,
    blob_digests,
    deletions,
    digests_in_use,
    messaging,
)
from report_intake.records.audit import record
from report_intake.records.holds import is_held
from report_intake.reports.status import FINAL_STATUSES

log = logging.getLogger(__name__)


CITIZEN_REQUEST = "citizen-request"  # the rule name of what the citizen asked for


WITHDRAWN_RULE = "withdrawn-by-citizen"


class Stores(Protocol):
    """What removing data needs of a running service (its `Runtime`); the `retention` command has just these."""

    @property
    def db(self) -> Database: ...

    @property
    def blobs(self) -> BlobStore: ...

    @property
    def settings(self) -> Any: ...


@dataclass
class Removal:
    """What one action removed from one report: logged (nothing personal), and what the other services hear."""

    report_id: str
    reference: str
    action: RetentionAction
    rule: str
    removed: dict[str, Any] = field(default_factory=dict)


async def remove(
    runtime: Stores,
    session: AsyncSession,
    report: Report,
    action: RetentionAction,
    rule: str,
    *,
    tell_others: bool = True,
) -> Removal:
    """Remove what `action` says from one report, in the caller's transaction: rows, photos in the store (those
    no other report still points at), the deletion log and audit entry, and the message to verification and the
    bridge. The photos go last, just before the commit: if the store fails, the transaction rolls back and the
    next run tries again; if the commit fails after them, only rows that were being deleted point at nothing."""
    done = Removal(report.id, report.reference, action, rule)
    contact = await session.get(Contact, report.id)
    if contact is not None:
        await session.delete(contact)
        done.removed["contact"] = True
    # The citizen asking for their contact details to go keeps the binding that protects the report from others.
    if report.installation_binding is not None and rule != CITIZEN_REQUEST:
        report.installation_binding = None
        done.removed["installation_binding"] = True
    if SEVERITY[action] >= SEVERITY["anonymise"] and report.anonymised_at is None:
        report.description, report.place_description, report.accuracy_m = "", None, None
        report.lat, report.lon = coarse(report.lat), coarse(report.lon)
        report.independent_source = None  # an address pseudonym: it goes with the rest
        report.anonymised_at = utcnow()
        done.removed["description"] = True
        done.removed["messages"] = rowcount(
            await session.execute(delete(Message).where(col(Message.report_id) == report.id))
        )
        # The dispatcher's questions are on the timeline too: their words go, the fact that one came stays.
        await session.execute(
            update(TimelineEntry)
            .where(col(TimelineEntry.report_id) == report.id, col(TimelineEntry.event) == "message")
            .values(text_en=texts.QUESTION[0].rstrip(": "), text_nl=texts.QUESTION[1].rstrip(": "))
        )
        await session.execute(delete(DisplayJob).where(col(DisplayJob.report_id) == report.id))
        done.removed["photos"] = await _remove_photos(runtime, session, report.id)
    if action == "purge":
        await session.execute(delete(TimelineEntry).where(col(TimelineEntry.report_id) == report.id))
        await session.execute(delete(ReportHold).where(col(ReportHold.report_id) == report.id))
        await session.delete(report)
        done.removed["report"] = True
    else:
        session.add(report)
    log_deletion(
        session,
        deletions,
        audit,
        report_id=report.id,
        reference=report.reference,
        rule=rule,
        action=action,
        removed=done.removed,
    )
    if tell_others:
        await tell_copies(session, done, urgent=report.urgent)
    return done


async def _remove_photos(runtime: Stores, session: AsyncSession, report_id: str) -> list[dict[str, str]]:
    photos = list((await session.execute(select(Photo).where(Photo.report_id == report_id))).scalars())
    if not photos:
        return []
    await session.execute(delete(Photo).where(col(Photo.report_id) == report_id))
    await session.flush()
    digests = set().union(*(blob_digests(p) for p in photos))
    still_used = await digests_in_use(session, digests)
    for digest in sorted(digests - still_used):
        await asyncio.to_thread(runtime.blobs.delete, digest)
    for photo in photos:
        record(
            session,
            "photo.deleted",
            report_id,
            target_type="photo",
            target_id=photo.id,
            detail={
                "sha256": photo.sha256,
                "sanitised_sha256": photo.sanitised_sha256,
                **({"playable_sha256": photo.playable_sha256} if photo.playable_sha256 else {}),
                **({"compatible_sha256": photo.compatible_sha256} if photo.compatible_sha256 else {}),
                "blob_kept_for_another_report": photo.sha256 in still_used,
            },
        )
    return [{"photo_id": p.id, "sha256": p.sha256} for p in photos]


async def tell_copies(session: AsyncSession, done: Removal, urgent: bool = False) -> None:
    """verification and the bridge do the same to their copies (verification holds no contact details)."""
    message = RetentionApplied(report_id=done.report_id, action=done.action, rule=done.rule, applied_at=utcnow())
    # After the report's other messages (its withdrawal, say): the bridge must still have the report to act on.
    order = f"report:{done.report_id}"
    for destination in (
        (Service.VERIFICATION, Service.DISPATCH_BRIDGE)
        if done.action != "remove_contact"
        else (Service.DISPATCH_BRIDGE,)
    ):
        await enqueue(
            session,
            messaging,
            retention_for(destination),
            message,
            precedence=Precedence.urgent_if(urgent),
            ordering_key=order,
        )


@dataclass
class RetentionRun:
    applied: list[Removal] = field(default_factory=list)
    held_skipped: int = 0
    messages_purged: int = 0

    def summary(self) -> dict[str, Any]:
        by_rule: dict[str, int] = {}
        for done in self.applied:
            by_rule[f"{done.rule}:{done.action}"] = by_rule.get(f"{done.rule}:{done.action}", 0) + 1
        return {
            "applied": len(self.applied),
            "by_rule": by_rule,
            "held_skipped": self.held_skipped,
            "messages_purged": self.messages_purged,
        }


def needed_action(
    report: Report, rules: list[RetentionRule], now: datetime, has_contact: bool
) -> tuple[RetentionAction, str] | None:
    """The most severe rule that is due for this report and not yet done, with its name."""
    outcome = report.status if report.status in FINAL_STATUSES else None
    best: tuple[int, RetentionAction, str] | None = None
    for rule in rules:
        when = due_at(rule, report.received_at, report.finished_at)
        if when is None or when > now or not rule_applies(rule, report.category, outcome):
            continue
        done = (rule.action == "remove_contact" and not has_contact and report.installation_binding is None) or (
            rule.action == "anonymise" and report.anonymised_at is not None
        )
        if not done and (best is None or SEVERITY[rule.action] > best[0]):
            best = (SEVERITY[rule.action], rule.action, rule.name)
    return None if best is None else (best[1], best[2])


def planned(report: Report, rules: list[RetentionRule], held: bool) -> list[dict[str, Any]]:
    """What the rules will do to this report, and when (for the citizen's view of their data)."""
    outcome = report.status if report.status in FINAL_STATUSES else None
    steps = []
    for rule in rules:
        # An open case may still end in any way: every rule for its category may come to apply.
        may_apply = outcome is None and rule.category in ("*", report.category)
        if rule_applies(rule, report.category, outcome) or may_apply:
            when = due_at(rule, report.received_at, report.finished_at)
            steps.append(
                {
                    "rule": rule.name,
                    "action": rule.action,
                    "due_at": when,
                    "counted_from": rule.counted_from,
                    "after_days": rule.after_days,
                    "applies_when": rule.outcome,
                    "suspended_by_legal_hold": held,
                }
            )
    return sorted(steps, key=lambda s: (s["due_at"] is None, s["due_at"] or utcnow()))


async def run_retention(
    runtime: Stores, rules: list[RetentionRule], *, dry_run: bool = False, batch: int = 200, now: datetime | None = None
) -> RetentionRun:
    """Apply every rule that is due, report by report (each in its own transaction, so one failure stops
    nothing else), skipping reports under legal hold; then purge settled messages."""
    from burgermelding_shared.retention import purge_settled_messages

    now = now or utcnow()
    run = RetentionRun()
    candidates = await _candidates(runtime, rules, now, batch)
    for report_id in candidates:
        async with runtime.db.transaction() as session:
            report = (
                (await session.execute(select(Report).where(Report.id == report_id).with_for_update()))
                .scalars()
                .first()
            )
            if report is None:
                continue
            if await is_held(session, report.id):
                run.held_skipped += 1
                continue
            has_contact = await session.get(Contact, report.id) is not None
            needed = needed_action(report, rules, now, has_contact)
            if needed is None:
                continue
            if dry_run:
                run.applied.append(Removal(report.id, report.reference, needed[0], needed[1]))
                await session.rollback()
                continue
            run.applied.append(await remove(runtime, session, report, needed[0], needed[1]))
    if not dry_run:
        async with runtime.db.transaction() as session:
            run.messages_purged = await purge_settled_messages(
                session, messaging, runtime.settings.settled_messages_days
            )
    if run.applied or run.held_skipped:
        log.info("retention run", extra={"retention": run.summary(), "dry_run": dry_run})
    return run


async def _candidates(runtime: Stores, rules: list[RetentionRule], now: datetime, batch: int) -> list[str]:
    """Reports some rule may be due for, found by one indexed query per rule rather than a walk of them all."""
    found: list[str] = []
    async with runtime.db.sessions() as session:
        for rule in rules:
            query = select(Report.id)
            after = now - timedelta(days=rule.after_days)
            query = (
                query.where(Report.received_at <= after)
                if rule.counted_from == "received"
                else query.where(col(Report.finished_at).is_not(None), col(Report.finished_at) <= after)
            )
            if rule.category != "*":
                query = query.where(Report.category == rule.category)
            if rule.outcome == "finished":
                query = query.where(col(Report.status).in_(FINAL_STATUSES))
            elif rule.outcome == "open":
                query = query.where(col(Report.status).not_in(FINAL_STATUSES))
            elif rule.outcome != "any":
                query = query.where(Report.status == rule.outcome)
            if rule.action == "remove_contact":
                query = query.where(
                    col(Report.anonymised_at).is_(None),
                    or_(
                        col(Report.installation_binding).is_not(None),
                        exists().where(col(Contact.report_id) == col(Report.id)),
                    ),
                )
            elif rule.action == "anonymise":
                query = query.where(col(Report.anonymised_at).is_(None))
            query = query.where(~exists().where(col(ReportHold.report_id) == col(Report.id)))
            found += (await session.execute(query.order_by(col(Report.number)).limit(batch))).scalars().all()
    return list(dict.fromkeys(found))


class RetentionJob(BackgroundLoop):
    """The scheduled retention run (every `retention_interval_seconds`); `report-intake retention` runs it once."""

    name = "retention"

    def __init__(self, runtime: Runtime) -> None:
        super().__init__()
        self.runtime = runtime
        self.poll_seconds = runtime.settings.retention_interval_seconds

    async def run_once(self) -> int:
        run = await run_retention(self.runtime, self.runtime.settings.retention_rules)
        return 0 if len(run.applied) < 200 else len(run.applied)  # a full batch: go on at once
