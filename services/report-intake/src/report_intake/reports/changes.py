"""A citizen's changes to an open report: more photos, or withdrawing it."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import select

from burgermelding_shared import idempotency
from burgermelding_shared.app import Runtime
from burgermelding_shared.catalogue import REPORT_WITHDRAWN
from burgermelding_shared.contracts import ReportWithdrawn
from burgermelding_shared.errors import ServiceError
from burgermelding_shared.messaging import Precedence, enqueue
from burgermelding_shared.timeutil import utcnow
from burgermelding_shared.videos import CheckedMedia
from report_intake import retries, texts
from report_intake.burgernet import actions
from report_intake.config import IntakeSettings
from report_intake.models import Photo, Report, messaging
from report_intake.records import audit, holds
from report_intake.records import retention as retention_rules
from report_intake.reports import access as reports_access
from report_intake.reports import photos as report_photos
from report_intake.reports import release, submission
from report_intake.reports.status import FINAL_STATUSES, RANK, STATUSES, ReportStatus
from report_intake.reports.timeline import add_timeline, notify
from report_intake.schemas import (
    PhotosAdded,
    Withdrawn,
)
from report_intake.uploads import too_many_videos


def is_open(report: Report) -> bool:
    return report.status not in FINAL_STATUSES


def refuse_if_closed(report: Report) -> None:
    if not is_open(report):
        raise ServiceError(
            409,
            "report_closed",
            f"this report is {report.status}; it cannot be changed",
            detail_nl="Deze melding is afgesloten en kan niet meer worden aangevuld",
        )


async def add_photos(
    runtime: Runtime, report_id: str, access: reports_access.Access, photos: list[CheckedMedia], key: str
) -> PhotosAdded:
    """Add photos to an open report: a new revision travels to verification and the bridge."""
    settings: IntakeSettings = runtime.settings
    async with runtime.db.sessions() as session:
        report = await reports_access.authorised_report(runtime, session, report_id, access, changing=True)
        kinds = list((await session.execute(select(Photo.kind).where(Photo.report_id == report_id))).scalars())
    refuse_if_closed(report)
    if report.appeal_id is not None:  # photos for a Burgernet action only while it is open
        async with runtime.db.sessions() as session:
            await actions.answer_link(session, report.appeal_id)
    if len(kinds) + len(photos) > settings.max_photos_per_report:
        raise ServiceError(
            413,
            "too_many_photos",
            f"at most {settings.max_photos_per_report} photos per report",
            detail_nl=f"Maximaal {settings.max_photos_per_report} foto's per melding",
        )
    if kinds.count("video") + sum(p.kind == "video" for p in photos) > settings.max_videos_per_report:
        raise too_many_videos(settings.max_videos_per_report)
    if not photos:
        raise ServiceError(
            422, "no_photos", "send at least one part 'photos'", detail_nl="Stuur minstens één deel 'photos'"
        )
    added = await report_photos.store_photo_blobs(runtime, photos)

    async def work(session: AsyncSession) -> idempotency.StoredResponse:
        # Locked in the transaction that writes: two uploads (or an upload and a display copy) at once must not
        # both take revision N + 1, or the bridge would drop one as a duplicate and its photos never travel.
        current = await session.get(Report, report.number, with_for_update=True)
        assert current is not None
        refuse_if_closed(current)
        if current.appeal_id is not None:
            await actions.answer_link(session, current.appeal_id, lock=True)
        current.revision += 1
        before = {p.id for p in (await session.execute(select(Photo).where(Photo.report_id == report_id))).scalars()}
        report_photos.add_photo_rows(session, report_id, photos)
        add_timeline(session, report_id, "photos_added", *texts.PHOTOS_ADDED)
        limits = runtime.extras.get("limits")
        # The sender's pseudonym of today (verification's flood checks); the witness the report counts as is
        # the independent source it was made with, which it keeps (queue_report), however old the app is now.
        await release.release_report(session, current, await limits.submitter(access.sender) if limits else None)
        new_rows = [
            p
            for p in (await session.execute(select(Photo).where(Photo.report_id == report_id))).scalars()
            if p.id not in before
        ]
        body = PhotosAdded(revision=current.revision, photos=[report_photos.photo_summary(p) for p in new_rows])
        return idempotency.StoredResponse(202, body.model_dump(mode="json"))

    try:
        response = await retries.run_once(
            runtime,
            f"add-photos:{report_id}",
            key,
            submission.fingerprint({"report": report_id}, photos),
            work,
        )
    except BaseException:
        await report_photos.remove_blobs(runtime, added)
        raise
    report_photos.wake_display_copies(runtime, photos)
    notify(runtime, report_id)
    return PhotosAdded.model_validate(response.body)


async def withdraw(runtime: Runtime, report_id: str, access: reports_access.Access) -> Withdrawn:
    """Withdraw a report; the withdrawal travels to the bridge (and from there to the meldkamer). Its personal
    data goes at once, here and in every copy, unless the report is held as evidence."""
    async with runtime.db.transaction() as session:
        report = await reports_access.authorised_report(runtime, session, report_id, access, changing=True, lock=True)
        held = await holds.is_held(session, report.id)
        if report.status == ReportStatus.WITHDRAWN:
            return Withdrawn(
                status="withdrawn",
                personal_data="kept_under_legal_hold" if held and report.anonymised_at is None else "removed",
            )
        refuse_if_closed(report)
        report.status = STATUSES.move(report.status, ReportStatus.WITHDRAWN)
        report.status_rank = RANK[report.status]
        session.add(report)
        audit.mark_finished(session, report)
        audit.record(session, "report.withdrawn", report.id, actor="citizen", role="citizen")
        add_timeline(session, report_id, "withdrawn", *texts.WITHDRAWN)
        message = ReportWithdrawn(report_id=report_id, withdrawn_at=utcnow())
        # In the order of the report's retention messages: the bridge hears of the withdrawal first.
        await enqueue(
            session,
            messaging,
            REPORT_WITHDRAWN,
            message,
            precedence=Precedence.urgent_if(report.urgent),
            ordering_key=f"report:{report.id}",
        )
        if not held:
            await retention_rules.remove(runtime, session, report, "anonymise", retention_rules.WITHDRAWN_RULE)
    notify(runtime, report_id)
    return Withdrawn(status="withdrawn", personal_data="kept_under_legal_hold" if held else "removed")
