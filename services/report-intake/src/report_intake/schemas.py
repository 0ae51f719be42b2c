"""The citizen API's request and response bodies."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from burgermelding_shared.contracts import ContactDetails, Location


class ReportSubmission(BaseModel):
    """The JSON in the `report` part of `POST /v1/reports`."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [{
                "category": "burglary",
                "description": "Twee mannen breken een achterdeur open / Two men are forcing a back door",
                "location": {"lat": 52.0907, "lon": 5.1214, "accuracy_m": 15, "description": "achter de bakkerij"},
                "observed_at": "2026-11-22T21:10:00+01:00",
                "in_progress": True,
                "danger_to_life": False,
            }]
        },
    )

    category: str = Field(max_length=40, description="A code from `GET /v1/categories`.")
    description: str = Field(min_length=1, max_length=2000, description="What the citizen saw.")
    location: Location
    observed_at: datetime = Field(description="When it was seen (ISO 8601 with offset).")
    in_progress: bool = Field(description="Happening now.")
    danger_to_life: bool = Field(False, description="Someone's life is in danger.")
    contact: ContactDetails | None = Field(
        None, description="Optional. Kept apart from the report; shown to the police only with "
        "`share_with_police`. Leave it out to stay anonymous.")


class SafetyAdvice(BaseModel):
    call_112: bool
    message: str


class ReportCreated(BaseModel):
    id: str
    reference: str
    access_token: str = Field(description="Shown once. Keep it: it is the only way to follow this report.")
    status: str
    status_url: str
    safety_advice: SafetyAdvice | None = None


class TimelineItem(BaseModel):
    id: int
    event: str
    occurred_at: datetime
    text: str


class PhotoSummary(BaseModel):
    id: str
    content_type: str
    width: int
    height: int


class ReportView(BaseModel):
    id: str
    reference: str
    status: str
    category: str
    in_progress: bool
    received_at: datetime
    photos: list[PhotoSummary]
    timeline: list[TimelineItem]


class CategoryView(BaseModel):
    code: str
    name: str
    hint: str
    lmc: str
    apco: str


Language = Literal["nl", "en"]


class PhotosAdded(BaseModel):
    photos: list[PhotoSummary]
    revision: int


class MessageIn(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={
        "examples": [{"text": "Hij droeg een rode jas / He wore a red coat", "in_reply_to": "q-MK-2026-000001-2"}]})

    text: str = Field(min_length=1, max_length=2000)
    in_reply_to: str | None = Field(None, max_length=64, description="The id of the question being answered.")


class MessageView(BaseModel):
    id: str
    direction: Literal["to_citizen", "from_citizen"]
    text: str
    in_reply_to: str | None
    sent_at: datetime
