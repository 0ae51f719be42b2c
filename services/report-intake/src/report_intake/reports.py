"""Creating reports and reading them with the citizen's token."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import logging
import secrets
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta

from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from burgermelding_shared import idempotency
from burgermelding_shared.app import Runtime
from burgermelding_shared.blobstore import BlobStore, BlobStoreUnavailable
from burgermelding_shared.catalogue import REPORT_FOR_BRIDGE, REPORT_FOR_VERIFICATION, Service
from burgermelding_shared.categories import CATEGORIES
from burgermelding_shared.contracts import ContactDetails, Location, PhotoRef, ReportSubmitted
from burgermelding_shared.errors import ServiceError
from burgermelding_shared.images import CheckedPhoto, check_photo
from burgermelding_shared.messaging import Precedence, enqueue
from burgermelding_shared.ratelimit import Reservation
from burgermelding_shared.slots import PriorityExecutor
from burgermelding_shared.timeutil import utcnow
from burgermelding_shared.urgency import is_urgent
from report_intake import burgernet, installations, records, texts
from report_intake.config import IntakeSettings
from report_intake.limits import IntakeLimits, Sender, Submitter
from report_intake.models import (
    Contact,
    DisplayJob,
    DisplayState,
    Photo,
    Report,
    TimelineEntry,
    display_of,
    idempotency_keys,
    messaging,
)
from report_intake.schemas import (
    PhotoSummary,
    ReportCreated,
    ReportSubmission,
    ReportView,
    SafetyAdvice,
    TimelineItem,
)
from report_intake.status import RANK, ReportStatus
from report_intake.uploads import UploadedForm

log = logging.getLogger(__name__)


def not_found() -> ServiceError:
    # The same answer for an unknown report, a wrong token and another report's token: nothing to probe.
    return ServiceError(404, "report_not_found", "no report with this id for this access token",
                        detail_nl="Geen melding met dit nummer voor deze toegangscode")


def validate_submission(submission: ReportSubmission, settings: IntakeSettings) -> None:
    if submission.category not in CATEGORIES:
        raise ServiceError(422, "unknown_category", f"unknown category '{submission.category[:40]}'; see "
                           "GET /v1/categories", detail_nl="Onbekende categorie; zie GET /v1/categories")
    south, west, north, east = settings.service_area
    loc = submission.location
    if not (south <= loc.lat <= north and west <= loc.lon <= east):
        raise ServiceError(422, "location_outside_service_area", "the location lies outside the service area",
                           detail_nl="De locatie ligt buiten het werkgebied")
    observed = submission.observed_at
    if observed.tzinfo is None:
        raise ServiceError(422, "observed_at_without_offset", "observed_at needs a UTC offset, e.g. +01:00 or Z",
                           detail_nl="observed_at heeft een tijdzone nodig, bijvoorbeeld +01:00 of Z")
    now = utcnow()
    if observed > now + timedelta(seconds=settings.clock_skew_seconds):
        raise ServiceError(422, "observed_at_in_future", "the observation time lies in the future",
                           detail_nl="Het tijdstip van waarneming ligt in de toekomst")
    if observed < now - timedelta(days=settings.max_report_age_days):
        raise ServiceError(422, "observed_at_too_old",
                           f"the observation is older than {settings.max_report_age_days} days",
                           detail_nl=f"De waarneming is ouder dan {settings.max_report_age_days} dagen")


def parse_json_object(raw: str | None, part: str) -> dict:
    if raw is None:
        raise ServiceError(422, "report_part_missing", f"the multipart part '{part}' (JSON) is missing",
                           detail_nl=f"Het deel '{part}' (JSON) ontbreekt")
    try:
        data = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise ServiceError(400, "malformed_json", f"the '{part}' part is not valid JSON: {exc.msg}",
                           detail_nl=f"Het deel '{part}' is geen geldige JSON") from exc
    if not isinstance(data, dict):
        raise ServiceError(400, "malformed_json", f"the '{part}' part must be a JSON object",
                           detail_nl=f"Het deel '{part}' moet een JSON-object zijn")
    return data


def parse_submission(form: UploadedForm) -> ReportSubmission:
    data = parse_json_object(form.fields.get("report"), "report")
    try:
        return ReportSubmission.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors())
        raise ServiceError(422, "invalid_report", problems, detail_nl=f"De melding is niet geldig: {problems}") from exc


def fingerprint(content: dict, photos: list[CheckedPhoto]) -> str:
    """What makes two requests 'the same' for idempotency: their content and the photos' digests."""
    canonical = json.dumps({"content": content, "photos": [p.sha256 for p in photos]}, sort_keys=True, default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


def new_access_token() -> str:
    """256 random bits, URL-safe."""
    return base64.urlsafe_b64encode(secrets.token_bytes(32)).rstrip(b"=").decode()


def _token_pad(secret: str, report_id: str, idempotency_key: str) -> bytes:
    return hmac.new(secret.encode(), f"token-seal:{report_id}:{idempotency_key}".encode(), hashlib.sha256).digest()


def seal_token(secret: str, report_id: str, idempotency_key: str, token: str) -> str:
    """The token sealed for one purpose: replaying its creation answer to a client that retries (its first
    answer may have been lost on the way, and without the token the citizen can never follow the report up).

    It is XORed with a one-time pad that needs both the server secret (not in the database) and the client's
    Idempotency-Key (stored only as a hash), and is purged with the idempotency record after a day. For
    reading a report the database holds nothing but the token's salted hash."""
    raw = base64.urlsafe_b64decode(token + "=")
    return bytes(a ^ b for a, b in zip(raw, _token_pad(secret, report_id, idempotency_key), strict=True)).hex()


def unseal_token(secret: str, report_id: str, idempotency_key: str, sealed: str) -> str:
    pad = _token_pad(secret, report_id, idempotency_key)
    raw = bytes(a ^ b for a, b in zip(bytes.fromhex(sealed), pad, strict=True))
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def hash_token(salt: str, token: str) -> str:
    return hashlib.sha256(f"{salt}:{token}".encode()).hexdigest()


def safety_advice(urgent: bool, language: str) -> SafetyAdvice | None:
    if urgent:
        return SafetyAdvice(call_112=True, message=texts.CALL_112[language])
    return None


async def check_photos(runtime: Runtime, form: UploadedForm, urgent: bool = False) -> list[CheckedPhoto]:
    """Decode and sanitise every photo off the event loop, one per core at a time, urgent reports' first."""
    settings: IntakeSettings = runtime.settings
    work: PriorityExecutor = runtime.extras["photo_work"]
    return [await work.run(urgent, check_photo, f.path, max_pixels=settings.max_image_pixels,
                           display_max_side=settings.display_max_side, index=i) for i, f in enumerate(form.files)]


async def store_photo_blobs(runtime: Runtime, photos: list[CheckedPhoto]) -> list[str]:
    """Put originals and display copies in the blob store; returns the digests this call added. An original
    is moved there from its upload file (hashed and checked in `check_photo`), not read and copied again."""
    added: list[str] = []
    for photo in photos:
        blobs = [(photo.sha256, lambda p=photo: runtime.blobs.adopt_file(p.path, p.sha256))]
        if photo.display_jpeg is not None and photo.display_sha256 is not None:  # else made after the 202
            blobs.append((photo.display_sha256, lambda p=photo: runtime.blobs.put_bytes(p.display_jpeg)))
        for digest, put in blobs:
            try:
                if await asyncio.to_thread(put_if_new, runtime.blobs, digest, put):
                    added.append(digest)
            except BaseException:
                await remove_blobs(runtime, added)  # the photos before this one: nothing half-stored remains
                raise
    return added


def put_if_new(store: BlobStore, digest: str, put: Callable[[], object]) -> bool:
    """Store a blob unless the store has it (another report's photo); True if this call added it. Blocking
    (the store may be across the network): run it in a worker thread."""
    if store.exists(digest):
        return False
    put()
    return True


def wake_display_copies(runtime: Runtime, photos: list[CheckedPhoto]) -> None:
    """After a commit that left display copies to make: start on them now, not at the next poll."""
    loop = runtime.extras.get("display_copies")
    if loop is not None and any(p.display_jpeg is None for p in photos):
        loop.wake()


async def remove_blobs(runtime: Runtime, digests: list[str]) -> None:
    """Undo `store_photo_blobs` for a request that failed: nothing half-stored remains. A photo is content-
    addressed, so another request (on any replica) may have stored the same one for a report it committed:
    a digest a stored photo points at is kept. (Left open: that other request committing after this check.)"""
    if not digests:
        return
    async with runtime.db.sessions() as session:
        kept = set((await session.execute(select(Photo.sha256).where(col(Photo.sha256).in_(digests)))).scalars())
        kept |= {digest for digest in (await session.execute(select(col(Photo.sanitised_sha256)).where(
            col(Photo.sanitised_sha256).in_(digests)))).scalars() if digest is not None}
    for digest in (d for d in digests if d not in kept):
        try:
            await asyncio.to_thread(runtime.blobs.delete, digest)
        except BlobStoreUnavailable:  # the store is down: an unreferenced photo stays, no report points at it
            log.warning("could not remove photo %s of a failed request", digest)


def add_photo_rows(session: AsyncSession, report_id: str, photos: list[CheckedPhoto]) -> None:
    """The photos' rows, and the first entry of each one's custody (hash, size, time) in the audit chain."""
    now = utcnow()
    for checked in photos:
        photo = Photo(id=str(uuid.uuid4()), report_id=report_id, sha256=checked.sha256,
                      sanitised_sha256=checked.display_sha256,
                      display_state=DisplayState.READY if checked.display_jpeg is not None
                      else DisplayState.PENDING, content_type=checked.content_type,
                      size_bytes=checked.size_bytes, width=checked.width, height=checked.height, received_at=now)
        session.add(photo)
        records.record_photo_received(session, report_id, photo)


async def release_report(session: AsyncSession, report: Report, submitter: Submitter | None = None) -> bool:
    """Send the report on as it now stands (`queue_report`), or, while a display copy of one of its photos is
    still to be made, leave that to the display job, which sends it when the copies are done: verification
    hashes a photo's display copy, and the bridge shows it. An urgent report does not wait for the bridge: it
    goes there at once with its photos `pending` (the meldkamer fetches originals), and again as the next
    revision when the copies are ready. Returns whether a display job waits."""
    await session.flush()
    pending = (await session.execute(select(Photo.id).where(Photo.report_id == report.id,
                                                            Photo.display_state == DisplayState.PENDING)
                                     .limit(1))).first()
    if pending is None:
        await queue_report(session, report, submitter)
        return False
    urgent = report.urgent
    job = await session.get(DisplayJob, report.id)
    if job is None:
        job = DisplayJob(report_id=report.id, urgent=urgent, due_at=utcnow(),
                         submitter_tag=submitter.tag if submitter else None,
                         submitter_kind=submitter.kind if submitter else None)
        session.add(job)
    else:  # photos added while earlier ones wait: the one job covers them all, due now
        job.due_at = utcnow()
    if urgent:
        await queue_report(session, report, submitter, to=(Service.DISPATCH_BRIDGE,))
        job.bridge_revision = report.revision
    return True


async def queue_report(session: AsyncSession, report: Report, submitter: Submitter | None = None,
                       to: tuple[Service, ...] = (Service.VERIFICATION, Service.DISPATCH_BRIDGE)) -> None:
    """Send the report as it now stands to verification and to the bridge (one outbox row each, so one
    reaching its destination never marks the other as sent). Verification never sees contact details; the
    bridge sees them only with the citizen's consent. Every message carries the independent source the report
    was made with (`Report.independent_source`), whoever sends the request behind it and whenever."""
    await session.flush()
    photos = (await session.execute(select(Photo).where(Photo.report_id == report.id)
                                    .order_by(col(Photo.received_at), col(Photo.id)))).scalars().all()
    contact = await session.get(Contact, report.id)
    message = ReportSubmitted(
        report_id=report.id, revision=report.revision, reference=report.reference, category=report.category,
        description=report.description,
        location=Location(lat=report.lat, lon=report.lon, accuracy_m=report.accuracy_m,
                          description=report.place_description),
        observed_at=report.observed_at, received_at=report.received_at, in_progress=report.in_progress,
        danger_to_life=report.danger_to_life,
        photos=[PhotoRef(photo_id=p.id, sha256=p.sha256, sanitised_sha256=p.sanitised_sha256,
                         display=display_of(p), content_type=p.content_type, size_bytes=p.size_bytes,
                         width=p.width, height=p.height)
                for p in photos],
        appeal=await burgernet.link_of_report(session, report.appeal_id) if report.appeal_id else None,
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
            message.contact = ContactDetails(name=contact.name, phone=contact.phone, email=contact.email,
                                             share_with_police=True)
        await enqueue(session, messaging, REPORT_FOR_BRIDGE, message, precedence=precedence)


@dataclass
class NewReport:
    submission: ReportSubmission
    photos: list[CheckedPhoto]
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
    # What the request took of the report limits (IntakeLimits.new_report): given back if it replays a report
    # already made, kept once it made this one.
    reservation: Reservation | None = None

    @property
    def urgent(self) -> bool:
        return is_urgent(in_progress=self.submission.in_progress, danger_to_life=self.submission.danger_to_life,
                         answers_live_search=self.answers_live_search)


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
        response = await idempotency.run_once(runtime.db, idempotency_keys, CREATE_REPORT, new.idempotency_key,
                                              fp, work)
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
        runtime.metrics.counter("bm_reports_accepted", "Reports accepted (202), by urgency; those refused are "
                                "bm_http_problems_total on POST /v1/reports, by reason", ["urgent"]
                                ).labels(str(urgent).lower()).inc()
    wake_display_copies(runtime, new.photos)
    # The first answer and a replay alike: open the sealed token for this client, who sent the key.
    body = dict(response.body)
    token = unseal_token(settings.token_secret, body["id"], new.idempotency_key, body.pop("sealed_access_token"))
    return response.status_code, {**body, "access_token": token}


async def _store(session: AsyncSession, new: NewReport, settings: IntakeSettings,
                 submitter: Submitter | None) -> idempotency.StoredResponse:
    sub = new.submission
    now = utcnow()
    report_id = str(uuid.uuid4())
    token = new_access_token()
    salt = secrets.token_hex(16)
    report = Report(
        id=report_id, reference="pending", token_salt=salt, token_hash=hash_token(salt, token),
        category=sub.category, description=sub.description, lat=sub.location.lat, lon=sub.location.lon,
        accuracy_m=sub.location.accuracy_m, place_description=sub.location.description,
        observed_at=sub.observed_at, received_at=now, in_progress=sub.in_progress,
        danger_to_life=sub.danger_to_life, status=ReportStatus.RECEIVED, status_rank=RANK[ReportStatus.RECEIVED],
        revision=0,
        installation_binding=installations.binding(settings.token_secret, report_id, new.sender.installation_id)
        if new.sender is not None and new.sender.installation_id else None,
        appeal_id=new.appeal_id, answers_live_search=new.answers_live_search,
        # Decided once, now; every later message about the report carries this one (queue_report).
        independent_source=new.sender.independent_source if new.sender is not None else None,
    )
    if new.appeal_id is not None:  # again here, locked: the action may have closed while the photos were checked
        await burgernet.answer_link(session, new.appeal_id, lock=True)
    session.add(report)
    await session.flush()  # assigns the number the reference is made of
    report.reference = f"BM-{now.year}-{report.number:06d}"
    if sub.contact is not None and (sub.contact.name or sub.contact.phone or sub.contact.email):
        session.add(Contact(report_id=report_id, name=sub.contact.name, phone=sub.contact.phone,
                            email=sub.contact.email, share_with_police=sub.contact.share_with_police, created_at=now))
    records.record(session, "report.received", report_id, detail={
        "reference": report.reference, "category": report.category, "photos": len(new.photos),
        "urgent": new.urgent, "contact_given": sub.contact is not None,
        "burgernet_action": new.appeal_id})
    add_photo_rows(session, report_id, new.photos)
    session.add(TimelineEntry(report_id=report_id, event="received", occurred_at=now,
                              text_en=texts.RECEIVED["en"], text_nl=texts.RECEIVED["nl"]))
    if new.urgent:
        session.add(TimelineEntry(report_id=report_id, event="call_112", occurred_at=now,
                                  text_en=texts.CALL_112["en"], text_nl=texts.CALL_112["nl"]))
    await release_report(session, report, submitter)
    body = ReportCreated(
        id=report_id, reference=report.reference, access_token="", status=ReportStatus.RECEIVED,
        status_url=f"/v1/reports/{report_id}", safety_advice=safety_advice(new.urgent, new.language),
    ).model_dump(mode="json")
    del body["access_token"]
    body["sealed_access_token"] = seal_token(settings.token_secret, report_id, new.idempotency_key, token)
    return idempotency.StoredResponse(202, body)


@dataclass(frozen=True)
class Access:
    """What a follow-up request brings: the report's access token, and who sends it."""

    token: str | None
    sender: Sender


def check_installation(report: Report, sender: Sender, secret: str, changing: bool) -> None:
    """A report made by an installation is changed only with that installation's credential, and never opened
    with another's (a credential copied elsewhere, or a token given to someone else's app)."""
    if report.installation_binding is None:
        return
    if sender.installation_id is None:
        if changing:
            raise credential_required()
        return
    if not hmac.compare_digest(report.installation_binding,
                               installations.binding(secret, report.id, sender.installation_id)):
        raise installation_mismatch()


def credential_required() -> ServiceError:
    return ServiceError(401, "installation_credential_required", "this report was made by an app installation: "
                        "send its Installation-Credential to change it",
                        detail_nl="Deze melding is met een app gedaan: stuur de Installation-Credential van die app "
                        "mee om haar te wijzigen")


def installation_mismatch() -> ServiceError:
    return ServiceError(403, "installation_mismatch", "this report was made by another installation",
                        detail_nl="Deze melding is met een andere installatie gedaan")


async def authorised_report(runtime: Runtime, session: AsyncSession, report_id: str, access: Access,
                            changing: bool = False, lock: bool = False) -> Report:
    """The report this token opens, or the one 404. Repeated wrong tokens for a report are slowed down. With
    `lock`, the report is locked for the rest of the caller's transaction (PostgreSQL), so that a change made at
    the same time (a status event from the bridge, say) is not overwritten by one made from what was read before."""
    limits: IntakeLimits | None = runtime.extras.get("limits")
    # Counted before the token is checked, so that guesses sent in parallel cannot all pass; given back if it is
    # right (only wrong ones count) or the lookup fails.
    attempt = await limits.token_attempt(report_id) if limits is not None else Reservation()
    report = None
    token = access.token
    async with attempt:
        if token and len(report_id) <= 36 and len(token) <= 128:
            query = select(Report).where(Report.id == report_id)
            report = (await session.execute(query.with_for_update() if lock else query)).scalars().first()
    if report is None or not hmac.compare_digest(report.token_hash, hash_token(report.token_salt, token or "")):
        raise not_found()
    await attempt.give_back()
    check_installation(report, access.sender, runtime.settings.token_secret, changing)
    return report


def photo_summary(photo: Photo) -> PhotoSummary:
    return PhotoSummary(id=photo.id, content_type=photo.content_type, width=photo.width, height=photo.height,
                        display=display_of(photo))


async def view_report(runtime: Runtime, report_id: str, access: Access, language: str) -> ReportView:
    async with runtime.db.sessions() as session:
        report = await authorised_report(runtime, session, report_id, access)
        photos = (await session.execute(select(Photo).where(Photo.report_id == report_id)
                                        .order_by(col(Photo.received_at), col(Photo.id)))).scalars().all()
        entries = (await session.execute(
            select(TimelineEntry).where(TimelineEntry.report_id == report_id)
            .order_by(col(TimelineEntry.occurred_at), col(TimelineEntry.id))
        )).scalars().all()
    return ReportView(
        id=report.id, reference=report.reference, status=report.status, category=report.category,
        in_progress=report.in_progress, received_at=report.received_at,
        photos=[photo_summary(p) for p in photos],
        timeline=[TimelineItem(id=e.id or 0, event=e.event, occurred_at=e.occurred_at,
                               text=e.text_nl if language == "nl" else e.text_en) for e in entries],
    )
