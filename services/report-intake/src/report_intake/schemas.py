"""The citizen API's request and response bodies."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from burgermelding_shared.contracts import CitizenTimelineEvent, ContactDetails, Location
from report_intake.reports.status import ReportStatus


class ReportSubmission(BaseModel):
    """The JSON in the `report` part of `POST /v1/reports`."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "category": "burglary",
                    "description": "Twee mannen breken een achterdeur open / Two men are forcing a back door",
                    "location": {"lat": 52.0907, "lon": 5.1214, "accuracy_m": 15, "description": "achter de bakkerij"},
                    "observed_at": "2026-11-22T21:10:00+01:00",
                    "in_progress": True,
                    "danger_to_life": False,
                }
            ]
        },
    )

    category: str = Field(max_length=40, description="A code from `GET /v1/categories`.")
    description: str = Field(min_length=1, max_length=2000, description="What the citizen saw.")
    location: Location
    observed_at: datetime = Field(description="When it was seen (ISO 8601 with offset).")
    in_progress: bool = Field(description="Happening now.")
    danger_to_life: bool = Field(False, description="Someone's life is in danger.")
    contact: ContactDetails | None = Field(
        None,
        description="Optional. Kept apart from the report; shown to the police only with "
        "`share_with_police`. Leave it out to stay anonymous.",
    )


class SafetyAdvice(BaseModel):
    call_112: bool
    message: str


REPORT_ID = "3f8e2b0c-7a51-4c3e-9d0a-1b2c3d4e5f60"
PHOTO_ID = "9a1b2c3d-4e5f-4a6b-8c7d-0e1f2a3b4c5d"


def examples(*values: dict) -> ConfigDict:
    return ConfigDict(json_schema_extra={"examples": list(values)})


class ReportCreated(BaseModel):
    model_config = examples(
        {
            "id": REPORT_ID,
            "reference": "BM-2026-000123",
            "access_token": "q3T0pX1vR8mJ2cYb6LwN4sZ9hKe5uAoDfGiHjClMnPr",
            "status": "received",
            "status_url": f"/v1/reports/{REPORT_ID}",
            "safety_advice": {
                "call_112": True,
                "message": "Is het nu aan de gang of is er levensgevaar? Bel direct 112. Deze app vervangt 112 niet.",
            },
        }
    )

    id: str
    reference: str
    access_token: str = Field(description="Shown once. Keep it: it is the only way to follow this report.")
    status: ReportStatus
    status_url: str
    safety_advice: SafetyAdvice | None = None


class TimelineItem(BaseModel):
    id: int
    event: CitizenTimelineEvent
    occurred_at: datetime
    text: str


class PhotoSummary(BaseModel):
    id: str
    content_type: str
    width: int
    height: int
    display: Literal["ready", "pending", "unreadable"] = Field(
        "ready",
        description="the display copy: `pending` while it is made (a HEIC photo, seconds after the 202); "
        "`unreadable` when the photo's pixels proved damaged (the file is kept as it arrived)",
    )
    kind: Literal["photo", "video"] = Field("photo", description="a video's display copy is its poster frame")
    duration_seconds: float | None = Field(None, description="a video's length")


class ReportView(BaseModel):
    model_config = examples(
        {
            "id": REPORT_ID,
            "reference": "BM-2026-000123",
            "status": "accepted",
            "category": "burglary",
            "in_progress": True,
            "received_at": "2026-11-22T20:10:04Z",
            "photos": [{"id": PHOTO_ID, "content_type": "image/jpeg", "width": 4032, "height": 3024}],
            "timeline": [
                {
                    "id": 1,
                    "event": "received",
                    "occurred_at": "2026-11-22T20:10:04Z",
                    "text": "Your report has been received.",
                },
                {
                    "id": 2,
                    "event": "forwarded",
                    "occurred_at": "2026-11-22T20:10:05Z",
                    "text": "Your report has been sent to the control room.",
                },
                {
                    "id": 3,
                    "event": "accepted",
                    "occurred_at": "2026-11-22T20:10:06Z",
                    "text": "The control room has taken up your report.",
                },
            ],
        }
    )

    id: str
    reference: str
    status: ReportStatus
    category: str
    in_progress: bool
    received_at: datetime
    photos: list[PhotoSummary]
    timeline: list[TimelineItem]


class CategoryView(BaseModel):
    model_config = examples(
        {
            "code": "burglary",
            "name": "Inbraak",
            "hint": "Iemand breekt in of is ingebroken",
            "lmc": "Bezitsaantasting / Inbraak",
            "apco": "BURGLARY",
        }
    )

    code: str
    name: str
    hint: str
    lmc: str
    apco: str


Language = Literal["nl", "en"]


class PhotosAdded(BaseModel):
    model_config = examples(
        {"photos": [{"id": PHOTO_ID, "content_type": "image/heic", "width": 4032, "height": 3024}], "revision": 1}
    )

    photos: list[PhotoSummary]
    revision: int


class MessageIn(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [{"text": "Hij droeg een rode jas / He wore a red coat", "in_reply_to": "q-MK-2026-000001-2"}]
        },
    )

    text: str = Field(min_length=1, max_length=2000)
    in_reply_to: str | None = Field(None, max_length=64, description="The id of the question being answered.")


class MessageView(BaseModel):
    model_config = examples(
        {
            "id": "q-MK-2026-000001-2",
            "direction": "to_citizen",
            "text": "Welke kant liep hij op? / Which way did he go?",
            "in_reply_to": None,
            "sent_at": "2026-11-22T20:14:30Z",
        }
    )

    id: str
    direction: Literal["to_citizen", "from_citizen"]
    text: str
    in_reply_to: str | None
    sent_at: datetime


class Withdrawn(BaseModel):
    model_config = examples({"status": "withdrawn", "personal_data": "removed"})

    status: Literal["withdrawn"] = Field(description="The report's status after the withdrawal.")
    personal_data: Literal["removed", "kept_under_legal_hold"] = Field(
        description="`removed`: your description, photos, messages and contact details are deleted here and in "
        "every copy we hold (the control room's own record is kept under its own rules); "
        "`kept_under_legal_hold`: the police keep this report as evidence until the hold is lifted."
    )


class StoredPhoto(BaseModel):
    id: str
    sha256: str = Field(description="SHA-256 of the original as it arrived (kept unaltered as evidence)")
    size_bytes: int
    content_type: str
    received_at: datetime
    display: str
    sanitised_sha256: str | None = Field(description="the copy without metadata that is ever shown")
    kind: Literal["photo", "video"] = "photo"
    playable_sha256: str | None = Field(None, description="a video's playable copy without metadata")
    compatible_sha256: str | None = Field(
        None, description="a video's H.264 copy without metadata, for browsers that do not play its codec"
    )


class StoredContact(BaseModel):
    name: str | None
    phone: str | None
    email: str | None
    share_with_police: bool


class PlannedRemoval(BaseModel):
    rule: str
    action: Literal["remove_contact", "anonymise", "purge"]
    due_at: datetime | None = Field(description="when it falls due; null while it counts from an end not yet come")
    counted_from: Literal["received", "finished"]
    after_days: float
    applies_when: str = Field(description="the outcome it is for (`any`, `finished`, `rejected`, ...)")
    suspended_by_legal_hold: bool


class StoredData(BaseModel):
    """Everything stored about one report, for the citizen who made it (AVG art. 15)."""

    model_config = examples(
        {"report": {"id": REPORT_ID, "reference": "BM-2026-000123", "category": "burglary"}, "legal_hold": False}
    )

    report: dict = Field(description="the report as stored: category, description, place, times, status")
    photos: list[StoredPhoto]
    contact: StoredContact | None = Field(description="your contact details, if you gave them")
    messages: list[MessageView]
    timeline_entries: int
    made_with_installation: bool = Field(
        description="whether the report is bound to your app installation "
        "(only a keyed hash of the pair is stored, never the installation's id)"
    )
    legal_hold: bool = Field(description="the police keep it as evidence: retention waits until the hold is lifted")
    anonymised_at: datetime | None
    retention: list[PlannedRemoval] = Field(description="what will be removed, and when")
    copies: list[str] = Field(description="where else copies of it are kept")
    not_stored: list[str] = Field(description="what we never keep")


class ContactRemoved(BaseModel):
    model_config = examples({"removed": True})

    removed: bool = Field(
        description="true when there were contact details; they are gone here and at the "
        "bridge (the control room's record of consented details is its own)"
    )


CHALLENGE = "c1.20.1796216400.m3yQxg2uV7pR0aZkL1sT9wEb.Xb3kP0qv8Rm1sT2uV3wY4zA5"
# A real test vector for a solver: the first decimal counter whose SHA-256("<CHALLENGE>:<solution>") starts with
# 20 zero bits (the digest is 00000bf67d74261e...; services/report-intake/tests/test_openapi.py checks it).
CHALLENGE_SOLUTION = "373769"
CHALLENGE_DIGEST = "00000bf67d74261e0b8b0f751635126e60067f8921b0025d3c2e7b99994045ba"
CREDENTIAL = "bmi1.5f0c2a9e7b1d4c3a8e6f0b2d9c7a1e3f.N2q8rT0vX4yZ6aB8cD0eF2gH4iJ6kL8mN0oP2qR4sT6"


class InstallationChallenge(BaseModel):
    model_config = examples(
        {
            "challenge": CHALLENGE,
            "difficulty_bits": 20,
            "algorithm": "sha256-leading-zero-bits",
            "expires_at": "2026-12-01T10:20:00Z",
        }
    )

    challenge: str = Field(description="Opaque; send it back unchanged with your solution.")
    difficulty_bits: int = Field(description="How many leading zero bits SHA-256('<challenge>:<solution>') must have.")
    algorithm: Literal["sha256-leading-zero-bits"] = "sha256-leading-zero-bits"
    expires_at: datetime = Field(description="Redeem it before this time.")


class InstallationRegistration(BaseModel):
    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"challenge": CHALLENGE, "solution": CHALLENGE_SOLUTION}]}
    )

    challenge: str = Field(max_length=200)
    solution: str = Field(max_length=64, description="1-64 characters of A-Z a-z 0-9 _ -, typically a decimal counter.")


class InstallationCreated(BaseModel):
    model_config = examples(
        {
            "installation_id": "5f0c2a9e7b1d4c3a8e6f0b2d9c7a1e3f",
            "credential": CREDENTIAL,
            "header": "Installation-Credential",
        }
    )

    installation_id: str
    credential: str = Field(
        description="Shown once. Keep it in the app's secure storage and send it as the "
        "`Installation-Credential` header with every request."
    )
    header: Literal["Installation-Credential"] = "Installation-Credential"
