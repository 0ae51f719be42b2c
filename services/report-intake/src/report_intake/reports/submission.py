"""A report as the citizen sent it: parsed, checked, and what makes a retry the same request."""

from __future__ import annotations

import hashlib
import json
from datetime import timedelta

from pydantic import ValidationError

from burgermelding_shared.categories import CATEGORIES
from burgermelding_shared.errors import ServiceError
from burgermelding_shared.timeutil import utcnow
from burgermelding_shared.videos import CheckedMedia
from report_intake import texts
from report_intake.config import IntakeSettings
from report_intake.schemas import (
    ReportSubmission,
    SafetyAdvice,
)
from report_intake.uploads import UploadedForm


def validate_submission(submission: ReportSubmission, settings: IntakeSettings) -> None:
    if submission.category not in CATEGORIES:
        raise ServiceError(
            422,
            "unknown_category",
            f"unknown category '{submission.category[:40]}'; see GET /v1/categories",
            detail_nl="Onbekende categorie; zie GET /v1/categories",
        )
    south, west, north, east = settings.service_area
    loc = submission.location
    if not (south <= loc.lat <= north and west <= loc.lon <= east):
        raise ServiceError(
            422,
            "location_outside_service_area",
            "the location lies outside the service area",
            detail_nl="De locatie ligt buiten het werkgebied",
        )
    observed = submission.observed_at
    if observed.tzinfo is None:
        raise ServiceError(
            422,
            "observed_at_without_offset",
            "observed_at needs a UTC offset, e.g. +01:00 or Z",
            detail_nl="observed_at heeft een tijdzone nodig, bijvoorbeeld +01:00 of Z",
        )
    now = utcnow()
    if observed > now + timedelta(seconds=settings.clock_skew_seconds):
        raise ServiceError(
            422,
            "observed_at_in_future",
            "the observation time lies in the future",
            detail_nl="Het tijdstip van waarneming ligt in de toekomst",
        )
    if observed < now - timedelta(days=settings.max_report_age_days):
        raise ServiceError(
            422,
            "observed_at_too_old",
            f"the observation is older than {settings.max_report_age_days} days",
            detail_nl=f"De waarneming is ouder dan {settings.max_report_age_days} dagen",
        )


def parse_json_object(raw: str | None, part: str) -> dict:
    if raw is None:
        raise ServiceError(
            422,
            "report_part_missing",
            f"the multipart part '{part}' (JSON) is missing",
            detail_nl=f"Het deel '{part}' (JSON) ontbreekt",
        )
    try:
        data = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise ServiceError(
            400,
            "malformed_json",
            f"the '{part}' part is not valid JSON: {exc.msg}",
            detail_nl=f"Het deel '{part}' is geen geldige JSON",
        ) from exc
    if not isinstance(data, dict):
        raise ServiceError(
            400,
            "malformed_json",
            f"the '{part}' part must be a JSON object",
            detail_nl=f"Het deel '{part}' moet een JSON-object zijn",
        )
    return data


def parse_submission(form: UploadedForm) -> ReportSubmission:
    data = parse_json_object(form.fields.get("report"), "report")
    try:
        return ReportSubmission.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors())
        raise ServiceError(422, "invalid_report", problems, detail_nl=f"De melding is niet geldig: {problems}") from exc


def fingerprint(content: dict, photos: list[CheckedMedia]) -> str:
    """What makes two requests 'the same' for idempotency: their content and the photos' digests."""
    canonical = json.dumps({"content": content, "photos": [p.sha256 for p in photos]}, sort_keys=True, default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


def safety_advice(urgent: bool, language: str) -> SafetyAdvice | None:
    if urgent:
        return SafetyAdvice(call_112=True, message=texts.CALL_112[language])
    return None
