"""What the dispatchers' API answers, as documented models: incidents and reports as the desk shows them, delivery
and dead letters, custody, deletions and the audit log.

The desk's functions build plain dicts (the console's templates read those); each route names its model here as
its `response_model`, so FastAPI checks the dict against it and the OpenAPI document says what is answered. A
model declares every key its dict has (an undeclared one would be dropped from the answer), with the same names,
values and nesting as before. Times keep the text they were sent with (see `Timestamp`).
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, TypeAdapter, WithJsonSchema

from burgermelding_shared.contracts import (
    AppealMatch,
    ContactDetails,
    EventSummary,
    IncidentStatus,
    Location,
    PhotoVerification,
    RefusalSaid,
    RetentionAction,
    Verdict,
    VerificationCompleted,
)
from burgermelding_shared.sharedstate import CircuitStateName
from burgermelding_shared.urgency import MeldkamerPriority
from dispatch_bridge.accounts.users import Role
from dispatch_bridge.states import DeliveryState, ReportState

_MOMENT = TypeAdapter(datetime)


def _as_text(value: object) -> object:
    """A time as these answers have always carried it: a datetime as pydantic writes it in JSON (UTC as `Z`), a
    time that was text already (an audit entry's, another service's) unchanged, to the digit."""
    return _MOMENT.dump_python(value, mode="json") if isinstance(value, datetime) else value


# A moment in time (UTC), in ISO 8601 with its offset.
Timestamp = Annotated[str, BeforeValidator(_as_text), WithJsonSchema({"type": "string", "format": "date-time"})]

# The time on a camera's own clock, as the photo says it: a date and time without an offset (ISO 8601, e.g.
# `2026-12-07T16:40:36`). Not an RFC 3339 date-time, so text in the documents (our ruleset keeps local-time formats
# out of them).
CameraTime = Annotated[
    str,
    BeforeValidator(_as_text),
    WithJsonSchema({"type": "string", "examples": ["2026-12-07T16:40:36"]}),
]

# An outbox message's status (burgermelding_shared.messaging).
OutboxStatus = Literal["pending", "delivered", "dead", "cancelled"]


# ---- accounts ------------------------------------------------------------------------------------------------


class Token(BaseModel):
    """A bearer token for the dispatchers' API (OAuth2 password flow)."""

    access_token: str
    token_type: Literal["bearer"] = "bearer"  # noqa: S105  (the OAuth2 token type, not a secret)


class AccountState(BaseModel):
    """A dispatcher's account after a change."""

    username: str
    role: Role
    disabled: bool
    locked: bool


# ---- reports -------------------------------------------------------------------------------------------------


class VerificationSummary(BaseModel):
    """Verification's verdict on a report, in brief: the codes of its reasons, and the reports it relates to."""

    verdict: Verdict
    score: float = Field(description="confidence that the report is genuine and useful, 0 to 1")
    reasons: list[str] = Field(description="the codes of the checks verification reports on, sorted, each once")
    duplicate_of_reports: list[str]
    near_duplicate_of_reports: list[str]
    group_id: str | None = Field(description="the group of reports about the same event")
    group_reports: list[str] = Field(description="other reports about the same event")
    appeal_match: AppealMatch | None = Field(
        description="for an answer to a Burgernet action or witness call: whether its time and place (the "
        "photos' own first) fit the asked ones"
    )


class PhotoExamination(PhotoVerification):
    """What verification found in one photo of a report: its perceptual hashes, metadata, sharpness and checks."""

    model_config = ConfigDict(extra="ignore")  # an answer: the message's own strictness is not needed here

    # A datetime in the message (naive: the camera's clock), text here: see CameraTime.
    captured_local: CameraTime | None = Field(None, description="capture time on the camera's clock, no offset")  # type: ignore[assignment]


class VerificationDetail(VerificationCompleted):
    """Verification's result on a report in full: verdict, score, every check (`reasons`) with what it found, and
    each photo's examination."""

    model_config = ConfigDict(extra="ignore")  # an answer: the message's own strictness is not needed here

    photos: list[PhotoExamination] = Field([], description="each photo's examination")  # type: ignore[assignment]


class ReportSummary(BaseModel):
    """A report in brief: its state, its links and its verification."""

    report_id: str
    reference: str = Field(description="e.g. BM-2026-000123: what the citizen and the police call it")
    category: str
    in_progress: bool
    danger_to_life: bool
    state: ReportState
    received_at: Timestamp
    incident_id: str | None
    burgernet_action_id: str | None = Field(description="the Burgernet action or witness call it answers")
    verification: VerificationSummary | None = Field(description="null until verification judged it")


class ReportListItem(ReportSummary):
    """A report in a list: its summary, and how its incident's delivery to the meldkamer stands."""

    delivery_state: DeliveryState | None = Field(description="its incident's; null without an incident")


class ReportPhoto(BaseModel):
    """A photo or video of a report; the sanitised copy (a video's poster frame) is at `.../photos/{photo_id}`,
    a video's playable copy at `.../photos/{photo_id}/video`."""

    photo_id: str
    content_type: str
    width: int
    height: int
    sha256: str = Field(description="the original's digest, as received")
    kind: Literal["photo", "video"] = "photo"
    duration_seconds: float | None = Field(None, description="a video's length")
    playable_type: str | None = Field(None, description="a video's playable copy's type: video/mp4 or video/webm")
    playable_codecs: str | None = Field(
        None,
        description='its picture codec as RFC 6381 names it ("hvc1.1.6.L120.90"): `canPlayType` of the type with '
        "this codec says whether a browser plays it",
    )
    compatible: Literal["ready", "pending", "unreadable"] | None = Field(
        None,
        description="a video whose codec not every browser plays (HEVC): its H.264 copy at `.../video?copy="
        "compatible`, `pending` while intake makes it (seconds to minutes after the report), null where none is "
        "needed",
    )


class ReportMessage(BaseModel):
    """A message between a dispatcher and the citizen, as the bridge carried it."""

    id: str
    direction: Literal["to_citizen", "from_citizen"]
    text: str
    author: str | None = Field(description="the dispatcher who asked; null for the citizen's")
    in_reply_to: str | None
    sent_at: Timestamp


class ReportDetail(ReportSummary):
    """One report in full: its words, place, photos, contact (with the citizen's consent), verification with every
    check, and its messages."""

    description: str
    location: Location
    observed_at: Timestamp
    photos: list[ReportPhoto]
    contact: ContactDetails | None = Field(description="only when the citizen consented to share it")
    verification_detail: VerificationDetail | None = Field(description="verification's result in full")
    messages: list[ReportMessage]


class QuestionAsked(BaseModel):
    """A dispatcher's question, on its way to the citizen."""

    id: str
    text: str
    sent_at: Timestamp


# ---- incidents -----------------------------------------------------------------------------------------------


class IncidentReport(BaseModel):
    """A report of an incident, in brief."""

    report_id: str
    reference: str
    state: ReportState
    verdict: Verdict | None


class IncidentSummary(BaseModel):
    """An incident as the dispatcher sees it: its delivery to the meldkamer, its reports (those of incidents merged
    into it too) and the event they describe together."""

    incident_id: str = Field(description="the STA-024 requestId")
    meldkamer_incident_id: str | None
    category: str
    priority: MeldkamerPriority = Field(description="the meldkamer's priority: 1 is the most urgent")
    urgent: bool
    delivery_state: DeliveryState
    delivery_cause: str | None = Field(description="why it was not delivered (yet)")
    operational_status: IncidentStatus | None = Field(description="the meldkamer's status, once it said one")
    created_at: Timestamp
    updated_at: Timestamp
    merged_into: str | None
    merged_from: list[str]
    split_from: str | None
    event: EventSummary | None = Field(description="what its reports say together (null without reports)")
    reports: list[IncidentReport]


# ---- delivery -------------------------------------------------------------------------------------------------


class CircuitState(BaseModel):
    """A destination's circuit breaker."""

    state: CircuitStateName
    consecutive_failures: int


class RelayFigures(BaseModel):
    """What this replica's relay did since it started."""

    delivered: int
    retried: int
    dead: int


class DeliveryOverview(BaseModel):
    """Delivery at a glance: incidents by delivery state, the outbox by status, and the circuit per destination."""

    incidents_by_delivery_state: dict[DeliveryState, int]
    outbox: dict[OutboxStatus, int]
    circuits: dict[str, CircuitState] = Field(description="by destination")
    relay: RelayFigures


class DeadLetter(BaseModel):
    """A message the bridge gave up on, or a verification job given up on (`message_id` starting
    `verification-job:`, with its report). When verification's could not be read, one entry (`kind`
    `verification.unavailable`, without an id) says so."""

    message_id: str | None
    destination: str
    kind: str
    attempts: int | None
    reason: str | None
    last_status_code: int | None
    created_at: Timestamp | None
    report_id: str | None = Field(None, description="verification jobs only: the report waiting for a verdict")
    urgent: bool | None = Field(None, description="verification jobs only")


class ReplayQueued(BaseModel):
    """A dead letter (or dead verification job) queued again."""

    status: Literal["queued"]


# ---- records ----------------------------------------------------------------------------------------------------


class ChainEntry(BaseModel):
    """An entry of a service's audit chain, with its place in the chain and its hashes."""

    seq: int
    at: Timestamp
    service: str
    actor: str = Field(description="a dispatcher's name, a service, `citizen`, `retention`")
    role: str
    action: str
    target_type: str
    target_id: str
    report_id: str | None
    detail: Any = Field(description="the detail (JSON: an object or a text), null when none")
    detail_json: str | None = Field(description="the detail as hashed, to check `entry_hash` with")
    prev_hash: str
    entry_hash: str


class AuditEntry(ChainEntry):
    """An entry of the bridge's audit log: who viewed or did what, when."""

    username: str = Field(description="who (the entry's actor)")


class CustodyPhoto(BaseModel):
    """A photo a custody record is about, by its digests."""

    photo_id: str
    sha256: str
    sanitised_sha256: str | None


class CustodyRecord(BaseModel):
    """The chain of custody of a report (or one of its photos): every entry about it in the audit chains of intake,
    verification and the bridge, in time order."""

    report_id: str
    reference: str | None = Field(description="null when retention removed the report")
    photo_id: str | None = Field(description="the photo it is about; null for the whole report")
    report_deleted: bool
    photos: list[CustodyPhoto]
    entries: list[ChainEntry]
    unavailable: list[Literal["report-intake", "verification"]] = Field(
        description="services that did not answer: their entries are missing"
    )


class HoldState(BaseModel):
    """An incident's legal hold after a change."""

    hold_id: str
    incident_id: str
    reason: str
    active: bool
    reports_held: list[str] = Field(description="the reports now kept until the hold is lifted")
    reports_already_gone: list[str] = Field(description="reports retention had removed before the hold")
    reports_without_personal_data: list[str] = Field(
        [],
        description="reports kept from now on whose words and photos retention (or the citizen's withdrawal) "
        "had already removed before the hold reached them",
    )


class RemovedParts(BaseModel):
    """What a deletion removed of the bridge's copy of a report: which parts and how many, nothing personal. Only
    the parts the deletion concerned are named."""

    incident_id: str | None = Field(None, description="the incident the report was in")
    contact: bool | None = Field(None, description="contact details were removed")
    messages: int | None = Field(None, description="messages removed")
    description: bool | None = Field(None, description="the citizen's words were removed")
    photos: int | None = Field(None, description="photos removed")
    report: bool | None = Field(None, description="the report itself was removed")


class DeletionRecord(BaseModel):
    """An entry of the deletion log: what retention (or the citizen) removed, when and under which rule."""

    id: int
    at: Timestamp
    report_id: str
    reference: str | None
    rule: str
    action: RetentionAction
    removed: RemovedParts


class CallerLinkRequest(BaseModel):
    """Ask a caller for images: a one-time link to their phone by SMS."""

    phone: str = Field(min_length=6, max_length=32, description="the caller's mobile number, 06 12345678 or +31...")
    language: Literal["nl", "en"] = Field("nl", description="of the SMS and the caller's page")
    ask: str = Field(min_length=1, max_length=500, description="what to show, in the dispatcher's words")


class CallerLinkView(BaseModel):
    """A link sent to a caller, as the dispatcher follows it. The number is never shown or kept: its last two
    digits while the link lives."""

    id: str
    incident_id: str
    phone_ending: str | None = Field(description="the number's last two digits; null once the link ended")
    language: Literal["nl", "en"]
    ask: str
    state: Literal[
        "sent", "opened", "consent_given", "consent_refused", "uploading", "received", "revoked", "expired", "failed"
    ] = Field(description="`failed`: the SMS gateway did not take the SMS (the caller never got the link)")
    files: int = Field(description="photos and videos the caller sent")
    refused: RefusalSaid | None = Field(
        None,
        description="the caller's last files that were not taken (too long, too large, not a photo or video...), "
        "with the words the caller was shown; null again once files arrive",
    )
    created_by: str
    created_at: datetime
    expires_at: datetime
    state_at: datetime
    ended_at: datetime | None
