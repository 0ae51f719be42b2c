"""A new report: stored with its photos in one transaction, once per Idempotency-Key, and released."""

from __future__ import annotations

import secrets
import uuid
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession

from burgermelding_shared import idempotency
from burgermelding_shared.app import Runtime
from burgermelding_shared.ratelimit import Reservation
from burgermelding_shared.timeutil import utcnow
from burgermelding_shared.urgency import is_urgent
from burgermelding_shared.videos import CheckedMedia
from report_intake import retries, texts
from report_intake.burgernet import actions
from report_intake.config import IntakeSettings
from report_intake.installations import credentials
from report_intake.installations.senders import Sender, Submitter
from report_intake.limits import IntakeLimits
from report_intake.models import (
    Contact,
    Report,
    TimelineEntry,
)
from report_intake.records import audit
from report_intake.reports.access import hash_token, new_access_token, seal_token, unseal_token
from report_intake.reports.photos import add_photo_rows, remove_blobs, store_photo_blobs, wake_display_copies
from report_intake.reports.release import release_report
from report_intake.reports.status import RANK, ReportStatus
from report_intake.reports.submission import fingerprint, safety_advice
from report_intake.schemas import (
    ReportCreated,
    ReportSubmission,
)


@dataclass
class NewReport:
    submission: ReportSubmission
    photos: list[CheckedMedia]
    idempotency_key: str
    language: str
    # What makes a retry "the same request"; by default the submission itself. Open311 requests set their
    # observation time on arrival, so there the form is the basis instead.
    fingerprint_basis: dict | None = None
    # For the daily pseudonym verification counts by (never stored here), and the independent source, which
    # the report keeps (`Report.independent_source`).
    sender: Sender | None = None
    appeal_id: str | None = None  # the Burgernet action or witness call this report answers
    answers_live_search: bool = False  # that appeal is a live search (an action): the report is urgent
    caller_link_id: str | None = None  # a caller's images, sent through a dispatcher's one-time link
    # What the request took of the report limits (IntakeLimits.new_report): given back if it replays a report
    # already made, kept once it made this one.
    reservation: Reservation | None = None

    @property
    def urgent(self) -> bool:
        return is_urgent(
            in_progress=self.submission.in_progress,
            danger_to_life=self.submission.danger_to_life,
            answers_live_search=self.answers_live_search,
        )


CREATE_REPORT = "create-report"  # the scope of a new report's Idempotency-Key


async def create_report(runtime: Runtime, new: NewReport) -> tuple[int, dict]:
    """Store a report with its photos and queue it for verification and the bridge; returns (status, body).

    A replayed request returns the first response. On any failure nothing of this request remains: the
    database transaction rolls back, photos this request added to the blob store are removed, and the
    idempotency claim is released.
    """
    settings: IntakeSettings = runtime.settings
    fp = fingerprint(new.fingerprint_basis or new.submission.model_dump(mode="json"), new.photos)
    added = await store_photo_blobs(runtime, new.photos)
    limits: IntakeLimits | None = runtime.extras.get("limits")
    submitter = await limits.submitter(new.sender) if limits is not None and new.sender is not None else None

    stored: list[bool] = []  # set when this request stored the report (not when it replays the first answer)

    async def work(session: AsyncSession) -> idempotency.StoredResponse:
        stored.append(True)
        return await _store(session, new, settings, submitter)

    try:
        response = await retries.run_once(runtime, CREATE_REPORT, new.idempotency_key, fp, work)
    except BaseException:
        await remove_blobs(runtime, added)
        raise
    if new.reservation is not None:
        if stored:
            new.reservation.keep()
        else:  # the first answer replayed: an honest retry costs nothing
            await new.reservation.give_back()
    if stored:
        urgent = new.urgent
        runtime.metrics.counter(
            "bm_reports_accepted",
            "Reports accepted (202), by urgency; those refused are "
            "bm_http_problems_total on POST /v1/reports, by reason",
            ["urgent"],
        ).labels(str(urgent).lower()).inc()
    wake_display_copies(runtime, new.photos)
    # The first answer and a replay alike: open the sealed token for this client, who sent the key.
    body = dict(response.body)
    token = unseal_token(settings.token_secret, body["id"], new.idempotency_key, body.pop("sealed_access_token"))
    return response.status_code, {**body, "access_token": token}


async def _store(
    session: AsyncSession, new: NewReport, settings: IntakeSettings, submitter: Submitter | None
) -> idempotency.StoredResponse:
    sub = new.submission
    now = utcnow()
    report_id = str(uuid.uuid4())
    token = new_access_token()
    salt = secrets.token_hex(16)
    report = Report(
        id=report_id,
        reference="pending",
        token_salt=salt,
        token_hash=hash_token(salt, token),
        category=sub.category,
        description=sub.description,
        lat=sub.location.lat,
        lon=sub.location.lon,
        accuracy_m=sub.location.accuracy_m,
        place_description=sub.location.description,
        observed_at=sub.observed_at,
        received_at=now,
        in_progress=sub.in_progress,
        danger_to_life=sub.danger_to_life,
        status=ReportStatus.RECEIVED,
        status_rank=RANK[ReportStatus.RECEIVED],
        revision=0,
        installation_binding=credentials.binding(settings.token_secret, report_id, new.sender.installation_id)
        if new.sender is not None and new.sender.installation_id
        else None,
        appeal_id=new.appeal_id,
        answers_live_search=new.answers_live_search,
        caller_link_id=new.caller_link_id,
        # Decided once, now; every later message about the report carries this one (queue_report).
        independent_source=new.sender.independent_source if new.sender is not None else None,
        integrator_id=new.sender.integrator_id if new.sender is not None else None,
    )
    if new.appeal_id is not None:  # again here, locked: the action may have closed while the photos were checked
        await actions.answer_link(session, new.appeal_id, lock=True)
    session.add(report)
    await session.flush()  # assigns the number the reference is made of
    report.reference = f"BM-{now.year}-{report.number:06d}"
    if sub.contact is not None and (sub.contact.name or sub.contact.phone or sub.contact.email):
        session.add(
            Contact(
                report_id=report_id,
                name=sub.contact.name,
                phone=sub.contact.phone,
                email=sub.contact.email,
                share_with_police=sub.contact.share_with_police,
                created_at=now,
            )
        )
    audit.record(
        session,
        "report.received",
        report_id,
        detail={
            "reference": report.reference,
            "category": report.category,
            "photos": len(new.photos),
            "urgent": new.urgent,
            "contact_given": sub.contact is not None,
            "burgernet_action": new.appeal_id,
            "caller_link": new.caller_link_id,
            "open311_integrator": new.sender.integrator_id if new.sender is not None else None,
        },
    )
    add_photo_rows(session, report_id, new.photos)
    session.add(
        TimelineEntry(
            report_id=report_id,
            event="received",
            occurred_at=now,
            text_en=texts.RECEIVED["en"],
            text_nl=texts.RECEIVED["nl"],
        )
    )
    if new.urgent:
        session.add(
            TimelineEntry(
                report_id=report_id,
                event="call_112",
                occurred_at=now,
                text_en=texts.CALL_112["en"],
                text_nl=texts.CALL_112["nl"],
            )
        )
    await release_report(session, report, submitter)
    body = ReportCreated(
        id=report_id,
        reference=report.reference,
        access_token="",
        status=ReportStatus.RECEIVED,
        status_url=f"/v1/reports/{report_id}",
        safety_advice=safety_advice(new.urgent, new.language),
    ).model_dump(mode="json")
    del body["access_token"]
    body["sealed_access_token"] = seal_token(settings.token_secret, report_id, new.idempotency_key, token)
    return idempotency.StoredResponse(202, body)
