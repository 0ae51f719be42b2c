"""Releasing a report as it now stands to verification and the bridge (or leaving that to its display copies)."""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from burgermelding_shared.catalogue import REPORT_FOR_BRIDGE, REPORT_FOR_VERIFICATION, Service
from burgermelding_shared.contracts import ContactDetails, Location, PhotoRef, ReportSubmitted
from burgermelding_shared.messaging import Precedence, enqueue
from burgermelding_shared.timeutil import utcnow
from report_intake.burgernet import actions
from report_intake.callers import links as caller_links
from report_intake.installations.senders import Submitter
from report_intake.models import (
    Contact,
    DisplayJob,
    DisplayState,
    Photo,
    Report,
    compatible_of,
    display_of,
    kind_of,
    messaging,
)


async def release_report(session: AsyncSession, report: Report, submitter: Submitter | None = None) -> bool:
    """Send the report on as it now stands (`queue_report`), or, while a display copy of one of its photos is
    still to be made, leave that to the display job, which sends it when the copies are done: verification
    hashes a photo's display copy, and the bridge shows it. An urgent report does not wait for the bridge: it
    goes there at once with its photos `pending` (the meldkamer fetches originals), and again as the next
    revision when the copies are ready. A video's compatible copy is waited for by nobody: the report goes now,
    and the job that makes the copy sends the bridge the next revision. Returns whether a display job waits."""
    await session.flush()
    if not await copies_pending(session, report.id, col(Photo.display_state)):
        await queue_report(session, report, submitter)
        if await copies_pending(session, report.id, col(Photo.compatible_state)):
            display_job(session, report, submitter, await session.get(DisplayJob, report.id))
        return False
    job = display_job(session, report, submitter, await session.get(DisplayJob, report.id))
    if report.urgent:
        await queue_report(session, report, submitter, to=(Service.DISPATCH_BRIDGE,))
        job.bridge_revision = report.revision
    return True


async def release_compatible(session: AsyncSession, report: Report, submitter: Submitter | None) -> None:
    """Send the bridge the report with its videos' compatible copies (verification reads the originals and
    needs no new revision for them), and leave a job for videos added while these were made."""
    await queue_report(session, report, submitter, to=(Service.DISPATCH_BRIDGE,))
    if await copies_pending(session, report.id, col(Photo.compatible_state)):
        display_job(session, report, submitter, await session.get(DisplayJob, report.id))


async def copies_pending(session: AsyncSession, report_id: str, state: Any) -> bool:
    """Whether a copy of one of the report's photos (the display copy, or a video's compatible copy, by the
    column `state`) is still to be made."""
    query = select(Photo.id).where(Photo.report_id == report_id, state == DisplayState.PENDING).limit(1)
    return (await session.execute(query)).first() is not None


def display_job(
    session: AsyncSession, report: Report, submitter: Submitter | None, job: DisplayJob | None
) -> DisplayJob:
    """The report's job, due now: a new one, or the one it has (photos added while earlier ones wait: the one
    job covers them all)."""
    if job is None:
        job = DisplayJob(
            report_id=report.id,
            urgent=report.urgent,
            due_at=utcnow(),
            submitter_tag=submitter.tag if submitter else None,
            submitter_kind=submitter.kind if submitter else None,
        )
        session.add(job)
    else:
        job.due_at = utcnow()
    return job


async def queue_report(
    session: AsyncSession,
    report: Report,
    submitter: Submitter | None = None,
    to: tuple[Service, ...] = (Service.VERIFICATION, Service.DISPATCH_BRIDGE),
) -> None:
    """Send the report as it now stands to verification and to the bridge (one outbox row each, so one
    reaching its destination never marks the other as sent). Verification never sees contact details; the
    bridge sees them only with the citizen's consent. Every message carries the independent source the report
    was made with (`Report.independent_source`), whoever sends the request behind it and whenever."""
    await session.flush()
    photos = (
        (
            await session.execute(
                select(Photo).where(Photo.report_id == report.id).order_by(col(Photo.received_at), col(Photo.id))
            )
        )
        .scalars()
        .all()
    )
    contact = await session.get(Contact, report.id)
    message = ReportSubmitted(
        report_id=report.id,
        revision=report.revision,
        reference=report.reference,
        category=report.category,
        description=report.description,
        location=Location(
            lat=report.lat, lon=report.lon, accuracy_m=report.accuracy_m, description=report.place_description
        ),
        observed_at=report.observed_at,
        received_at=report.received_at,
        in_progress=report.in_progress,
        danger_to_life=report.danger_to_life,
        photos=[
            PhotoRef(
                photo_id=p.id,
                sha256=p.sha256,
                sanitised_sha256=p.sanitised_sha256,
                display=display_of(p),
                content_type=p.content_type,
                size_bytes=p.size_bytes,
                width=p.width,
                height=p.height,
                kind=kind_of(p),
                playable_sha256=p.playable_sha256,
                playable_type=p.playable_type,
                playable_codecs=p.playable_codecs,
                duration_seconds=p.duration_ms / 1000 if p.duration_ms is not None else None,
                compatible_sha256=p.compatible_sha256,
                compatible=compatible_of(p),
            )
            for p in photos
        ],
        appeal=await actions.link_of_report(session, report.appeal_id) if report.appeal_id else None,
        caller_link=await caller_links.ref_of(session, report.caller_link_id) if report.caller_link_id else None,
    )
    precedence = Precedence.urgent_if(message.urgent)
    # Both get the sender's daily pseudonym (verification for its flood checks) and the report's independent
    # source (both count the event's witnesses by it). The source is the one the report was made with, never
    # recomputed: photos added after the installation's first hour would otherwise make one witness of ten.
    if submitter is not None:
        message.submitter_tag, message.submitter_kind = submitter.tag, submitter.kind
    message.independent_source = report.independent_source
    if Service.VERIFICATION in to:
        await enqueue(session, messaging, REPORT_FOR_VERIFICATION, message, precedence=precedence)
    if Service.DISPATCH_BRIDGE in to:
        if contact is not None and contact.share_with_police:
            message.contact = ContactDetails(
                name=contact.name, phone=contact.phone, email=contact.email, share_with_police=True
            )
        await enqueue(session, messaging, REPORT_FOR_BRIDGE, message, precedence=precedence)
