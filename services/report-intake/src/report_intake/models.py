"""report-intake's tables. Contact details are deliberately absent: a report is anonymous."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Literal

from sqlalchemy import Boolean, Column, ForeignKey, Index, Integer, String, Text, false
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import Field, SQLModel, col, select

from burgermelding_shared.auditchain import audit_tables
from burgermelding_shared.db import new_registry
from burgermelding_shared.idempotency import idempotency_table
from burgermelding_shared.messaging import messaging_tables
from burgermelding_shared.retention import deletion_log_table
from burgermelding_shared.timeutil import UTCDateTime
from burgermelding_shared.urgency import is_urgent
from report_intake.reports.status import ReportStatus

intake_registry = new_registry()


class IntakeTable(SQLModel, registry=intake_registry):
    pass


metadata = intake_registry.metadata
messaging = messaging_tables(metadata)
idempotency_keys = idempotency_table(metadata)
audit = audit_tables(metadata, "report-intake")
deletions = deletion_log_table(metadata)


class Report(IntakeTable, table=True):
    __tablename__ = "reports"

    # `number` makes the human reference (BM-2026-000123); `id` is the unguessable public identifier.
    number: int | None = Field(default=None, sa_column=Column(Integer, primary_key=True, autoincrement=True))
    id: str = Field(sa_column=Column(String(36), unique=True, nullable=False))
    reference: str = Field(sa_column=Column(String(32), unique=True, nullable=False))
    token_salt: str = Field(max_length=32)
    token_hash: str = Field(max_length=64)
    category: str = Field(max_length=40)
    description: str
    lat: float
    lon: float
    accuracy_m: float | None = None
    place_description: str | None = None
    observed_at: datetime = Field(sa_type=UTCDateTime)
    received_at: datetime = Field(sa_type=UTCDateTime)
    in_progress: bool
    danger_to_life: bool = False
    status: ReportStatus = Field(sa_column=Column(String(32), nullable=False))  # status.STATUSES
    status_rank: int = 0  # status.RANK of the status
    revision: int = 0  # +1 for every batch of photos added later
    incident_number: str | None = Field(default=None, max_length=64)
    # HMAC of (report, installation) under the token secret when an installation made the report: follow-ups
    # can check the credential that comes with them, and the database alone links no two reports.
    installation_binding: str | None = Field(default=None, max_length=64)
    # When the case ended (closed, rejected, declined, withdrawn): retention counts some rules from here.
    finished_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    # When retention (or a withdrawal) removed its personal data: what is left tells nothing of anyone.
    anonymised_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    # Set when it answers a Burgernet action or witness call (a PublishedAppeal): a sighting.
    appeal_id: str | None = Field(default=None, sa_column=Column(String(36), index=True))
    caller_link_id: str | None = Field(default=None, sa_column=Column(String(36)))  # a caller's images
    # It answers a live Burgernet search (an action, not a witness call): urgent by the one rule (`urgent`).
    answers_live_search: bool = Field(default=False, sa_column=Column(Boolean, nullable=False, server_default=false()))
    # The independent source it was made with (installations.independent_source: the pseudonym of the address a
    # new installation registered from), kept for good: every later message about the report carries this one,
    # not what its sender would count as now, so the event's witnesses never change with a report's revisions.
    independent_source: str | None = Field(default=None, max_length=64)
    # The Open311 integrator whose `api_key` came with it (open311/integrators.py): their report, by their limits.
    integrator_id: str | None = Field(default=None, sa_column=Column(String(16), index=True))

    @property
    def urgent(self) -> bool:
        return is_urgent(
            in_progress=self.in_progress,
            danger_to_life=self.danger_to_life,
            answers_live_search=self.answers_live_search,
        )


class Photo(IntakeTable, table=True):
    __tablename__ = "photos"

    id: str = Field(primary_key=True, max_length=36)
    report_id: str = Field(sa_column=Column(String(36), ForeignKey("reports.id"), nullable=False, index=True))
    sha256: str = Field(max_length=64)
    # The display copy; None while it is being made (a HEIC, after the 202) or when the pixels proved unreadable.
    sanitised_sha256: str | None = Field(default=None, max_length=64)
    display_state: str = Field(default="ready", max_length=16)  # a DisplayState
    content_type: str = Field(max_length=32)
    size_bytes: int
    width: int
    height: int
    received_at: datetime = Field(sa_type=UTCDateTime)
    # A video: its display copy (sanitised_sha256) is its poster frame; the playable copy is remuxed without
    # metadata (videos.py). For a photo: kind "photo" and the rest None.
    kind: str = Field(default="photo", max_length=8)
    playable_sha256: str | None = Field(default=None, max_length=64)
    playable_type: str | None = Field(default=None, max_length=32)
    playable_codecs: str | None = Field(default=None, max_length=64)  # RFC 6381: "hvc1.1.6.L120.90"
    duration_ms: int | None = None
    # A video whose codec not every browser plays (HEVC) also gets an H.264 copy, made after the 202
    # (videos.make_compatible_copy): a DisplayState while it is wanted, None for every other photo and video.
    compatible_sha256: str | None = Field(default=None, max_length=64)
    compatible_state: str | None = Field(default=None, max_length=16)


def kind_of(photo: Photo) -> Literal["photo", "video"]:
    return "video" if photo.kind == "video" else "photo"


def blob_digests(photo: Photo) -> set[str]:
    """Every blob a photo's row points at: the original, the display copy, a video's playable and compatible
    copies."""
    copies = (photo.sanitised_sha256, photo.playable_sha256, photo.compatible_sha256)
    return {photo.sha256} | {d for d in copies if d}


async def digests_in_use(session: AsyncSession, digests: set[str]) -> set[str]:
    """Of these blobs, those some photo row still points at: content-addressed, the same picture may belong to
    another report, and its blob stays while it does."""
    used: set[str] = set()
    columns = (Photo.sha256, Photo.sanitised_sha256, Photo.playable_sha256, Photo.compatible_sha256)
    for column in map(col, columns):
        if digests:
            used |= {d for d in (await session.execute(select(column).where(column.in_(digests)))).scalars() if d}
    return used


class DisplayState(StrEnum):
    READY = "ready"
    PENDING = "pending"  # made after the 202 by display.DisplayCopies
    UNREADABLE = "unreadable"  # the original is kept as evidence; its pixels do not decode


def display_of(photo: Photo) -> Literal["ready", "pending", "unreadable"]:
    """A photo's display state as the contracts spell it (`display_state` holds a DisplayState's value)."""
    return copy_state(photo, photo.display_state)


def compatible_of(photo: Photo) -> Literal["ready", "pending", "unreadable"] | None:
    """A video's compatible copy's state as the contracts spell it; None where none is wanted."""
    return copy_state(photo, photo.compatible_state) if photo.compatible_state is not None else None


def copy_state(photo: Photo, state: str) -> Literal["ready", "pending", "unreadable"]:
    match state:
        case "ready" | "pending" | "unreadable":
            return state
    raise ValueError(f"photo {photo.id} has a copy state the contracts do not know: {state!r}")


class DisplayJob(IntakeTable, table=True):
    """A report whose display copies are still to be made: its messages to verification and the bridge wait
    until they are (display_copies.py). A video's compatible copy is made by the same job once the display
    copies are done, but nothing waits for it: the bridge gets it as the next revision. Deleted when done; a
    crash mid-job leaves it due again when the lease ends."""

    __tablename__ = "display_jobs"

    report_id: str = Field(sa_column=Column(String(36), ForeignKey("reports.id"), primary_key=True))
    urgent: bool = False
    # The sender's daily pseudonym, which the report's messages carry (see reports.queue_report); gone with the job.
    submitter_tag: str | None = Field(default=None, max_length=64)
    submitter_kind: str | None = Field(default=None, max_length=16)
    # An urgent report goes to the bridge at once, without the copies: the revision it went with. When the copies
    # are done, the report goes on as the next revision (the bridge then shows them).
    bridge_revision: int | None = None
    attempts: int = 0
    due_at: datetime = Field(sa_type=UTCDateTime, index=True)
    last_error: str | None = Field(default=None, max_length=300)


class TimelineEntry(IntakeTable, table=True):
    __tablename__ = "timeline_entries"
    __table_args__ = (Index("ix_timeline_entries_report", "report_id", "occurred_at"),)

    id: int | None = Field(default=None, primary_key=True)
    report_id: str = Field(sa_column=Column(String(36), ForeignKey("reports.id"), nullable=False))
    event: str = Field(max_length=32)
    occurred_at: datetime = Field(sa_type=UTCDateTime)
    text_en: str
    text_nl: str


class Contact(IntakeTable, table=True):
    """Contact details, only when the citizen gives them: apart from the report, so the report stays anonymous
    to everything that does not need them. Released to the dispatcher only with `share_with_police`."""

    __tablename__ = "contacts"

    report_id: str = Field(sa_column=Column(String(36), ForeignKey("reports.id"), primary_key=True))
    name: str | None = Field(default=None, max_length=100)
    phone: str | None = Field(default=None, max_length=32)
    email: str | None = Field(default=None, max_length=254)
    share_with_police: bool = False
    created_at: datetime = Field(sa_type=UTCDateTime)


class Message(IntakeTable, table=True):
    """A message between dispatcher and citizen about one report."""

    __tablename__ = "messages"
    __table_args__ = (Index("ix_messages_report", "report_id", "sent_at"),)

    id: str = Field(primary_key=True, max_length=64)
    report_id: str = Field(sa_column=Column(String(36), ForeignKey("reports.id"), nullable=False))
    direction: str = Field(max_length=16)  # to_citizen | from_citizen
    text: str
    in_reply_to: str | None = Field(default=None, max_length=64)
    sent_at: datetime = Field(sa_type=UTCDateTime)


class Installation(IntakeTable, table=True):
    """An app installation that registered (installations.py): nothing about the person or the phone."""

    __tablename__ = "installations"

    id: str = Field(primary_key=True, max_length=32)
    secret_hash: str = Field(max_length=64)
    created_on: str = Field(max_length=10)  # the day only (YYYY-MM-DD): no time to match against network logs
    revoked_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    # For its first hour only (installations.independent_source), then erased: the pseudonym of the address it
    # registered from (an HMAC under the day's salt, which lives only in memory), and when that hour ends.
    registered_from: str | None = Field(default=None, max_length=32)
    new_until: datetime | None = Field(default=None, sa_type=UTCDateTime, index=True)


class CallerLink(IntakeTable, table=True):
    """A one-time link a dispatcher sent a caller (the bridge made it and sent the SMS): known here only by its
    token's SHA-256, never by the caller's number, which intake never has."""

    __tablename__ = "caller_links"

    link_id: str = Field(primary_key=True, max_length=36)
    token_sha256: str = Field(sa_column=Column(String(64), nullable=False, unique=True))
    incident_id: str = Field(max_length=36)
    language: str = Field(max_length=2)
    ask: str = Field(sa_column=Column(Text, nullable=False))
    expires_at: datetime = Field(sa_type=UTCDateTime)
    revoked_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    opened_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    consent: str | None = Field(default=None, max_length=8)  # "given" or "refused", the caller's last answer
    consent_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    files: int = 0  # photos and videos the caller sent through it, of which
    videos: int = 0
    category: str = Field(max_length=32)  # the incident's, which the caller's report takes
    lat: float  # the incident's centre: the report's place unless the caller shares theirs
    lon: float


class Integrator(IntakeTable, table=True):
    """An Open311 integrator (a municipal system, a neighbourhood app): an `api_key` of its own, with a report
    limit of its own. Only the key's hash is kept; the key is shown once, when it is issued."""

    __tablename__ = "integrators"

    id: str = Field(primary_key=True, max_length=16)
    name: str = Field(max_length=100)
    key_hash: str = Field(max_length=64)
    reports_per_hour: int
    issued_at: datetime = Field(sa_type=UTCDateTime)
    revoked_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class SpentChallenge(IntakeTable, table=True):
    """A proof-of-work challenge that was redeemed: kept until it expires, so it cannot be redeemed twice."""

    __tablename__ = "spent_challenges"

    digest: str = Field(primary_key=True, max_length=64)
    expires_at: datetime = Field(sa_type=UTCDateTime)


class ReportHold(IntakeTable, table=True):
    """A legal hold on a report: its incident is evidence, so no retention rule touches it until the hold
    (set and lifted by a supervisor through the dispatchers' API) is lifted."""

    __tablename__ = "report_holds"

    hold_id: str = Field(primary_key=True, max_length=36)
    report_id: str = Field(sa_column=Column(String(36), primary_key=True, index=True))
    incident_id: str = Field(max_length=36)
    held_since: datetime = Field(sa_type=UTCDateTime)


class HoldState(IntakeTable, table=True):
    """The newest version of each legal hold intake has heard of, lifted ones too: a message about an older
    version (an extension queued before the lift and delivered after it) changes nothing, so a lifted hold
    stays lifted."""

    __tablename__ = "legal_hold_states"

    hold_id: str = Field(primary_key=True, max_length=36)
    incident_id: str = Field(max_length=36)
    version: int
    active: bool
    changed_at: datetime = Field(sa_type=UTCDateTime)


class PublishedAppeal(IntakeTable, table=True):
    """A Burgernet action or witness call as the bridge published it (`document`, a PublishedAction): served to
    every app, wherever it is, in the feed and as CAP. Nothing here is about a phone."""

    __tablename__ = "burgernet_actions"

    action_id: str = Field(primary_key=True, max_length=36)
    version: int
    status: str = Field(max_length=16)
    kind: str = Field(max_length=16)
    document: str = Field(sa_column=Column(Text, nullable=False))
    closes_at: datetime = Field(sa_type=UTCDateTime)
    closed_at: datetime | None = Field(default=None, sa_type=UTCDateTime, index=True)
    # Installations that confirmed receiving it, counted once the action ends (their receipts are then deleted).
    fetched_count: int | None = None


class AppealReceipt(IntakeTable, table=True):
    """An installation received this action. The app confirms every action in the feed, inside its area or not,
    so a receipt says nothing of where a phone is. `tag` is an HMAC of (action, installation) under the server
    secret: one installation counts once, and receipts of two actions cannot be linked to each other."""

    __tablename__ = "burgernet_receipts"

    action_id: str = Field(sa_column=Column(String(36), primary_key=True))
    tag: str = Field(sa_column=Column(String(64), primary_key=True))
