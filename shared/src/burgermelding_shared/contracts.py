"""Wire contracts: the messages our services send each other. Receivers validate them strictly."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from burgermelding_shared.burgernet import AppealLink, LookingFor
from burgermelding_shared.urgency import is_urgent


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Location(Strict):
    lat: float = Field(ge=-90, le=90)
    lon: float = Field(ge=-180, le=180)
    accuracy_m: float | None = Field(None, ge=0, le=100_000)
    description: str | None = Field(None, max_length=300)


class PhotoRef(Strict):
    """A photo by reference: the blob keys are SHA-256 digests in the shared blob store."""

    photo_id: str
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$", description="digest (and key) of the original, as received")
    sanitised_sha256: str | None = Field(
        pattern=r"^[0-9a-f]{64}$",
        description="the display copy without "
        "metadata; null when the photo's pixels do not decode (the original is "
        "kept as it arrived) or while it is being made",
    )
    display: Literal["ready", "pending", "unreadable"] = Field(
        "ready",
        description="the display copy's state: `pending` while intake makes it (a HEIC, after the 202; "
        "a later revision of the report brings it), `unreadable` when the pixels do not decode",
    )
    content_type: str
    size_bytes: int
    width: int
    height: int
    kind: Literal["photo", "video"] = Field(
        "photo", description="a video's display copy (`sanitised_sha256`) is its poster frame"
    )
    playable_sha256: str | None = Field(
        None, pattern=r"^[0-9a-f]{64}$", description="a video's playable copy: remuxed, without metadata"
    )
    playable_type: str | None = Field(None, description="video/mp4 or video/webm")
    playable_codecs: str | None = Field(
        None, max_length=64, description='the playable copy\'s picture codec as RFC 6381 names it ("hvc1.1.6.L120.90")'
    )
    duration_seconds: float | None = Field(None, ge=0)
    compatible_sha256: str | None = Field(
        None,
        pattern=r"^[0-9a-f]{64}$",
        description="a video whose codec not every browser plays (HEVC): an H.264 copy (MP4, at most 1280 pixels "
        "a side, upright, without metadata) that every browser plays",
    )
    compatible: Literal["ready", "pending", "unreadable"] | None = Field(
        None,
        description="the compatible copy's state: `pending` while intake makes it (after the 202; a later "
        "revision brings it), null where none is needed",
    )


class ContactDetails(Strict):
    """Given only if the citizen chooses to, and passed to the police only with their consent."""

    name: str | None = Field(None, max_length=100)
    phone: str | None = Field(None, max_length=32, pattern=r"^\+?[0-9 ()\-]{6,32}$")
    email: str | None = Field(None, max_length=254, pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
    share_with_police: bool = Field(False, description="The citizen consents to the dispatcher seeing these.")


class ReportSubmitted(Strict):
    """intake -> verification and intake -> bridge: the report, again with every change (`revision` grows).

    Verification never receives contact details; the bridge receives them only with the citizen's consent.
    Both receive the submitter's daily pseudonym: verification for its flood checks, the bridge to count the
    independent witnesses of an event (it never shows it).
    """

    report_id: str
    revision: int = Field(
        0,
        ge=0,
        description="0 on creation, +1 for every batch of photos added "
        "and when display copies that were `pending` are ready",
    )
    reference: str
    category: str
    description: str
    location: Location
    observed_at: datetime
    received_at: datetime
    in_progress: bool
    danger_to_life: bool = False
    photos: list[PhotoRef] = []
    contact: ContactDetails | None = None
    submitter_tag: str | None = Field(
        None,
        max_length=64,
        description="a pseudonym of the sending client "
        "(installation or address) that changes every day: for flood and repeat "
        "checks and for counting independent witnesses",
    )
    submitter_kind: Literal["installation", "address", "integrator"] | None = Field(
        None,
        description="whether the tag stands for one app installation (an independent witness), for a "
        "network address that many phones may share, or for an Open311 integrator (a system that passes on "
        "reports of people it knows and we do not: one source)",
    )
    independent_source: str | None = Field(
        None,
        max_length=64,
        description="set when the sender is not an independent witness of its own: for an "
        "installation registered less than an hour before the report, a pseudonym of the network address it "
        "registered from (changes every day). Reports that share an installation or an independent source are "
        "one witness (burgermelding_shared.witnesses)",
    )
    appeal: AppealLink | None = Field(
        None,
        description="set when the report answers a Burgernet action or a "
        "witness call: a sighting, or a witness's account and photos",
    )
    caller_link: CallerLinkRef | None = Field(
        None, description="set when the report is a caller's images, sent through a dispatcher's one-time link"
    )

    @property
    def urgent(self) -> bool:
        """Urgent by the one rule (`is_urgent`)."""
        return is_urgent(
            in_progress=self.in_progress,
            danger_to_life=self.danger_to_life,
            answers_live_search=self.appeal is not None and self.appeal.is_live_search,
        )

    def anonymised(self) -> ReportSubmitted:
        """What may be kept once the personal data must go (retention): no words, no contact, no photos, no
        pseudonym, the place only to about a kilometre; what is left counts, but tells nothing of anyone."""
        return self.model_copy(
            update={
                "description": "",
                "contact": None,
                "photos": [],
                "submitter_tag": None,
                "submitter_kind": None,
                "independent_source": None,
                "location": Location(lat=coarse(self.location.lat), lon=coarse(self.location.lon)),
            }
        )


def coarse(degrees: float) -> float:
    """A coordinate to two decimals: about a kilometre, enough for figures per area, too little for a door."""
    return round(degrees, 2)


RetentionAction = Literal["remove_contact", "anonymise", "purge"]


class RetentionApplied(Strict):
    """intake -> verification and bridge: a retention rule (or the citizen) removed personal data of a report;
    do the same to your copy. intake owns a report's life, so it alone decides, and it never decides so for a
    report under legal hold (except the citizen's own contact details, which may go at any time)."""

    report_id: str
    action: RetentionAction
    rule: str = Field(max_length=64)
    applied_at: datetime


class LegalHold(Strict):
    """bridge -> intake: reports tied to an incident marked as evidence are kept until the hold is lifted."""

    hold_id: str = Field(max_length=36)
    incident_id: str = Field(max_length=36)
    report_ids: list[str] = Field(max_length=10_000)
    active: bool
    version: int = Field(
        1,
        ge=1,
        description="the hold's version when this was sent (set: 1, lifted: 2): a message "
        "about an older version than the receiver has seen changes nothing",
    )


class ReportWithdrawn(Strict):
    """intake -> bridge: the citizen withdrew the report."""

    report_id: str
    withdrawn_at: datetime


class CitizenMessage(Strict):
    """intake -> bridge: the citizen's message or answer to a dispatcher's question."""

    report_id: str
    message_id: str
    text: str = Field(min_length=1, max_length=2000)
    in_reply_to: str | None = None
    sent_at: datetime


class DispatcherMessage(Strict):
    """bridge -> intake: a dispatcher's question or message for the citizen."""

    report_id: str
    message_id: str
    text: str = Field(min_length=1, max_length=2000)
    sent_at: datetime


CallerLinkEventKind = Literal["opened", "consent_given", "consent_refused", "uploading", "received", "upload_refused"]


class CallerLinkIssued(Strict):
    """bridge -> intake: a one-time link a dispatcher sent a caller (by SMS) to share what they see. Intake knows
    it only by its token's SHA-256: the token itself is in the caller's SMS and nowhere else."""

    link_id: str
    token_sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    incident_id: str
    language: Literal["nl", "en"]
    ask: str = Field(max_length=500, description="what the dispatcher asks the caller to show")
    expires_at: datetime
    category: str = Field(description="the incident's: the caller's images become a report of this category")
    incident_location: Location = Field(
        description="the incident's centre: the report's place unless the caller shares theirs"
    )


class CallerLinkRef(Strict):
    """On a report made from a caller's link: the link, and the incident the dispatcher asked from, which the
    report joins at once (the meldkamer asked for it; verification still judges it)."""

    link_id: str
    incident_id: str


class CallerLinkRevoked(Strict):
    """bridge -> intake: the dispatcher ended the link; the page answers as for an ended link from now on."""

    link_id: str
    revoked_at: datetime


class RefusalSaid(Strict):
    """A refusal as a person was told it: its code and its words in both languages."""

    error: str = Field(max_length=64)
    detail_en: str = Field(max_length=300)
    detail_nl: str = Field(max_length=300)


class CallerLinkEvent(Strict):
    """intake -> bridge: what the caller did with the link, for the dispatcher's screen and the audit chain."""

    link_id: str
    event: CallerLinkEventKind
    at: datetime
    files: int = Field(0, ge=0, description="with `uploading` and `received`: how many files so far")
    problem: RefusalSaid | None = Field(None, description="with `upload_refused`: why, as the caller was told")


class CheckResult(Strict):
    code: str
    outcome: Literal["pass", "warn", "fail", "not_applicable"]
    detail_en: str
    detail_nl: str
    weight: float = 0.0


class PhotoVerification(Strict):
    photo_id: str
    sha256: str
    phash: str | None = None
    pdq: str | None = None
    pdq_quality: int | None = None
    width: int | None = None
    height: int | None = None
    captured_at: datetime | None = Field(None, description="capture time in UTC, when the photo names its offset")
    captured_local: datetime | None = Field(None, description="capture time on the camera's clock, no offset")
    gps: dict[str, float] | None = Field(None, description="lat, lon and, when the photo says, accuracy_m")
    make: str | None = None
    model: str | None = None
    software: str | None = None
    has_thumbnail: bool | None = None
    sharpness: float | None = Field(
        None, ge=0, le=100, description="0 (blurred) to 100 (sharp), measured on the normalised 256-px image"
    )
    content_credentials: Literal["absent", "valid", "invalid", "unchecked"] | None = None
    content_credentials_signer: str | None = None
    checks: list[CheckResult] = []


Verdict = Literal["forward", "review", "reject"]
AppealMatch = Literal["matching", "not_matching", "unknown"]


class VerificationCompleted(Strict):
    """verification -> bridge, once per report."""

    report_id: str
    revision: int = 0
    verdict: Verdict
    score: float = Field(ge=0, le=1, description="confidence that the report is genuine and useful")
    reasons: list[CheckResult] = []
    photos: list[PhotoVerification] = []
    duplicate_of_reports: list[str] = []
    near_duplicate_of_reports: list[str] = []
    group_id: str | None = None
    group_reports: list[str] = Field([], description="other reports about the same event")
    independent_witnesses: int = Field(
        0,
        ge=0,
        description="other independent witnesses (app installations; "
        "new ones from one address count as one) that reported the same event "
        "(corroboration)",
    )
    assessment: int = Field(
        0,
        ge=0,
        description="0 for the first verdict on this revision; +1 each time more "
        "witnesses of the event changed it (the latest assessment counts)",
    )
    appeal_match: AppealMatch | None = Field(
        None,
        description="for an answer to a Burgernet action or witness "
        "call: whether its time and place (the photos' own metadata first) "
        "fall in the asked window and area; the reasons say why",
    )
    verified_at: datetime


class GroupsMerged(Strict):
    """verification -> bridge: the merge pass found that two groups are one event."""

    group_id: str = Field(description="the group that remains")
    merged_group_id: str = Field(description="the group merged into it, which no longer exists")
    report_ids: list[str] = Field(description="the remaining group's reports before the merge")
    merged_report_ids: list[str] = Field(description="the reports that moved into it")
    merged_at: datetime


ReportEventType = Literal[
    "received",
    "verified",
    "rejected",
    "under_review",
    "forwarded",
    "accepted",
    "declined",
    "unit_assigned",
    "closed",
    "call_112",
    "withdrawn",
    "photos_added",
    "message",
    "joined",
    "appeal_closed",
]
# What a citizen's timeline can show: the news the bridge sends, and what intake itself adds (a photo that could
# not be read).
CitizenTimelineEvent = Literal[ReportEventType, "photo_unreadable"]


class TimelineEvent(Strict):
    """Something that happened to a report that the citizen may see on the timeline."""

    event: ReportEventType
    occurred_at: datetime
    text_en: str
    text_nl: str
    incident_number: str | None = None


MAX_EVENTS_A_MESSAGE = 20


class ReportEvents(Strict):
    """bridge -> intake: what one change at the bridge meant for a report, in order (verified and forwarded, say):
    one message however many events, applied together."""

    report_id: str
    events: list[TimelineEvent] = Field(min_length=1, max_length=MAX_EVENTS_A_MESSAGE)


class ReportEvent(TimelineEvent):
    """bridge -> intake, one event a message: what bridges before `ReportEvents` send (still accepted, so an
    outbox written by an older bridge is delivered after an upgrade)."""

    report_id: str

    def as_events(self) -> ReportEvents:
        return ReportEvents(report_id=self.report_id, events=[TimelineEvent(**self.model_dump(exclude={"report_id"}))])


# -- Bridge <-> meldkamer (NENA STA-024 shaped) ------------------------------------------------------------


class EventCentre(BaseModel):
    model_config = ConfigDict(extra="forbid")

    lat: float = Field(ge=-90, le=90)
    lon: float = Field(ge=-180, le=180)


class EventPhoto(BaseModel):
    """One photo of the event, pointing at the media component that brought it."""

    model_config = ConfigDict(extra="forbid")

    mediaId: str = Field(description="the `$id` of the photo's mediaComponent")
    digestSha256: str
    reportReference: str
    verified: bool | None = Field(description="verification passed it without doubts (None: not verified yet)")
    sharpness: float | None = None
    duplicate: bool = Field(description="the same picture as another one, here or in an earlier report")


class EventSummary(BaseModel):
    """bridge -> meldkamer: what all reports of one incident say together, kept current as witnesses come.
    An extension beside the EIDO (which has no place for a witness count or a spread); `version` grows with
    every change, so the meldkamer keeps the newest whatever order updates arrive in."""

    model_config = ConfigDict(extra="forbid")

    version: int = Field(ge=1)
    witnessCount: int = Field(
        ge=0,
        description="independent witnesses: distinct app installations (reports "
        "from one network address without a credential count as one), where installations "
        "registered from one address within the hour before their reports count as one",
    )
    senderCount: int = Field(
        0,
        ge=0,
        description="distinct senders, each installation counted: more than "
        "witnessCount when new installations from one address were counted as one witness",
    )
    reportCount: int = Field(ge=0)
    firstObserved: datetime
    lastObserved: datetime
    centre: EventCentre
    radiusMeters: float = Field(ge=0, description="every report lies within this distance of the centre")
    inProgress: bool
    dangerToLife: bool
    descriptions: list[str] = Field(description="what the witnesses wrote, each text once, oldest first")
    descriptionsOmitted: int = Field(0, ge=0, description="distinct descriptions left out to keep this short")
    photos: list[EventPhoto] = Field(description="best first: verified, not a duplicate, sharp")


class RequestForService(BaseModel):
    """bridge -> meldkamer: a new incident (`requestId` is stable across retries)."""

    requestId: str
    eido: dict
    eventSummary: EventSummary | None = None


class RequestResponse(BaseModel):
    """meldkamer -> bridge, the synchronous answer: transport receipt and the operational decision."""

    requestId: str
    responseCode: int
    responseText: str
    incidentId: str | None = None


# What an IncidentUpdate is about.
IncidentUpdateKind = Literal[
    "media",
    "verification",
    "citizen_note",
    "withdrawn",
    "report_added",
    "merged",
    "sighting",
    "burgernet",
    "report_removed",
]


class IncidentUpdate(BaseModel):
    """bridge -> meldkamer: news on an incident it already has (more photos, a verification result, the
    citizen's answer, a withdrawal, a report a dispatcher split off as another event). `updateId` is stable
    across retries; the meldkamer applies each once."""

    model_config = ConfigDict(extra="forbid")

    updateId: str
    requestId: str
    kind: IncidentUpdateKind
    urgent: bool = Field(
        False, description="news the dispatcher must see at once: a sighting of a live Burgernet search"
    )
    eido: dict = Field(
        description="An EIDO with the incident's root `$id` and what is new: a notesComponent, "
        "mediaComponents, mergeComponents (REPLACING: this incident takes the other in; REPLACED: "
        "this incident was taken into the other)"
    )
    eventSummary: EventSummary | None = None


class IncidentStatus(StrEnum):
    """An incident's operational status as the meldkamer reports it (STA-024's values)."""

    ACTIVE = "Active"
    RESOURCES_ASSIGNED = "ResourcesAssigned"
    RESOURCES_ENROUTE = "ResourcesEnroute"
    RESOURCES_ONSCENE = "ResourcesOnscene"
    CLOSED = "Closed"
    CANCELLED = "Cancelled"
    REOPENED = "ReOpened"


class IncidentEvent(BaseModel):
    """meldkamer -> bridge callback: a status change of an incident, signed as a webhook."""

    model_config = ConfigDict(extra="forbid")

    transactionId: str
    requestId: str
    incidentId: str
    status: IncidentStatus
    sequence: int = Field(ge=0, description="per incident, increasing: later events have larger numbers")
    lastUpdateTimeStamp: datetime
    notesText: str | None = Field(None, max_length=2000)
    questionId: str | None = Field(None, max_length=64, description="set when notesText is a question for the citizen")


class MeldkamerAppeal(BaseModel):
    """meldkamer -> bridge, signed as a webhook: the control room starts a Burgernet action on an incident it
    has from us, around the incident's place."""

    transactionId: str = Field(max_length=64)
    requestId: str = Field(max_length=36, description="the incident (our STA-024 requestId)")
    lookingFor: LookingFor
    description: str = Field(min_length=1, max_length=2000)
    radiusMeters: float = Field(ge=50, le=50_000)
    minutes: int = Field(ge=5, le=24 * 60)
