"""Open311 service requests: a form made into a report (placed by coordinates or by address, with a photo fetched
from `media_url`), and the public view of reports that GeoReport v2 clients read.

The public view shows what the police would publish about any report and nothing of its citizen: the service,
whether it is open or closed, a status note of ours, its times, and its place rounded to about a kilometre
(`PUBLIC_PLACE_DECIMALS`). Never its description, contact, photos or exact place: Open311 reads are public,
and our reports are not.
"""

from __future__ import annotations

import os
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Literal
from urllib.parse import parse_qs

from fastapi import Request
from pydantic import BaseModel, ConfigDict
from sqlalchemy import func, select
from sqlmodel import col

from burgermelding_shared.app import Runtime
from burgermelding_shared.categories import CATEGORIES
from burgermelding_shared.errors import ServiceError
from burgermelding_shared.geocoding import Geocoder, GeocoderUnavailable, Place
from burgermelding_shared.guarded_fetch import FetchLimits, FetchRefused, fetch_to_file
from burgermelding_shared.videos import CheckedMedia
from report_intake.config import IntakeSettings
from report_intake.models import Report, TimelineEntry
from report_intake.reports import photos as report_photos
from report_intake.reports.status import FINAL_RANK, FINAL_STATUSES, ReportStatus
from report_intake.schemas import ReportSubmission
from report_intake.uploads import UploadedFile, UploadedForm, UploadLimits, judge_whole_file

MAX_FORM_BYTES = 16 * 1024
PUBLIC_PLACE_DECIMALS = 2  # 0.01 degree: about 1.1 km north-south, 0.7 km east-west here
LIST_DEFAULT_DAYS = 90  # GeoReport v2: without dates, the last 90 days; a range may not span more
LIST_MOST = 1000  # GeoReport v2: at most 1000 requests in one answer
MOST_IDS = 100
REQUEST_ID = "3f8e2b0c-7a51-4c3e-9d0a-1b2c3d4e5f60"

# The status notes anyone may read: how far the police are, never what they decided about the citizen's report.
PUBLIC_NOTES = {
    "received": {"en": "Received", "nl": "Ontvangen"},
    "forwarded": {"en": "Passed on to the control room", "nl": "Doorgegeven aan de meldkamer"},
    "closed": {"en": "Dealt with", "nl": "Afgehandeld"},
}
PUBLIC_STAGE = {
    ReportStatus.RECEIVED: "received",
    ReportStatus.VERIFIED: "received",
    ReportStatus.UNDER_REVIEW: "received",
    ReportStatus.FORWARDED: "forwarded",
    ReportStatus.ACCEPTED: "forwarded",
    ReportStatus.UNIT_ASSIGNED: "forwarded",
}


class Open311Created(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "service_request_id": REQUEST_ID,
                    "token": "BM-2026-000124",
                    "service_notice": "BM-2026-000124",
                    "account_id": None,
                    "access_token": "q3T0pX1vR8mJ2cYb6LwN4sZ9hKe5uAoDfGiHjClMnPr",
                }
            ]
        }
    )

    service_request_id: str
    token: str  # the report's reference: GET tokens/{token} gives the request id
    service_notice: str  # the 112 advice for an urgent report, else the reference
    account_id: str | None
    access_token: str  # ours: opens the citizen API for this report (GET /v1/reports/{id}, photos, messages)


class Open311Request(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "service_request_id": REQUEST_ID,
                    "status": "open",
                    "status_notes": "Passed on to the control room",
                    "service_code": "burglary",
                    "service_name": "Burglary",
                    "agency_responsible": "Politie",
                    "requested_datetime": "2026-11-22T20:10:04+00:00",
                    "updated_datetime": "2026-11-22T20:10:06+00:00",
                    "lat": 52.09,
                    "long": 5.12,
                }
            ]
        }
    )

    service_request_id: str
    status: Literal["open", "closed"]
    status_notes: str
    service_code: str
    service_name: str
    agency_responsible: str
    requested_datetime: str
    updated_datetime: str
    lat: float  # rounded to PUBLIC_PLACE_DECIMALS: never the exact place
    long: float


class Open311Token(BaseModel):
    service_request_id: str
    token: str


# -- the form ---------------------------------------------------------------------------------------------------


async def read_form(request: Request) -> dict[str, str]:
    """The url-encoded form of a POST, at most MAX_FORM_BYTES, first value of each field."""
    if not request.headers.get("content-type", "").startswith("application/x-www-form-urlencoded"):
        raise ServiceError(
            415,
            "form_required",
            "send application/x-www-form-urlencoded (Open311)",
            detail_nl="Verstuur application/x-www-form-urlencoded (Open311)",
        )
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_FORM_BYTES:
            raise ServiceError(
                413, "upload_too_large", "the form is larger than 16 KB", detail_nl="Het formulier is groter dan 16 KB"
            )
    try:
        parsed = parse_qs(body.decode("utf-8"), keep_blank_values=False, strict_parsing=False, max_num_fields=40)
    except (UnicodeDecodeError, ValueError) as exc:
        raise ServiceError(
            400, "malformed_form", "the form could not be read", detail_nl="Het formulier kon niet worden gelezen"
        ) from exc
    return {key: values[0] for key, values in parsed.items()}


def _flag(form: dict[str, str], name: str) -> bool:
    return form.get(f"attribute[{name}]", "").strip().lower() in ("true", "1", "yes")


def _coordinates(form: dict[str, str]) -> tuple[float, float] | None:
    if "lat" not in form and "long" not in form:
        return None
    try:
        return float(form["lat"]), float(form["long"])
    except (KeyError, ValueError) as exc:
        raise ServiceError(
            400,
            "invalid_location",
            "lat and long must both be numbers",
            detail_nl="lat en long moeten allebei getallen zijn",
        ) from exc


async def place_of(form: dict[str, str], geocoder: Geocoder) -> tuple[float, float, str | None]:
    """(lat, lon, place description): the coordinates when sent (the address kept as the description), else the
    address's place from the geocoder; refused when neither places the report."""
    address = form.get("address_string", "").strip() or None
    coordinates = _coordinates(form)
    if coordinates is not None:
        return coordinates[0], coordinates[1], address
    if address is None:
        raise ServiceError(
            400,
            "missing_location",
            "send lat and long, or an address_string (address_id is not supported)",
            detail_nl="stuur lat en long, of een address_string (address_id wordt niet ondersteund)",
        )
    try:
        place: Place | None = await geocoder.locate(address[:300])
    except GeocoderUnavailable as exc:
        raise ServiceError(
            503,
            "geocoder_unavailable",
            "the address cannot be looked up now; send lat and long, or try again later",
            detail_nl="het adres kan nu niet worden opgezocht; stuur lat en long, of probeer het later opnieuw",
            headers={"Retry-After": "30"},
        ) from exc
    if place is None:
        raise ServiceError(
            400,
            "address_not_found",
            "the address_string was not found; send lat and long, or a full address (street, number, place)",
            detail_nl="het adres in address_string is niet gevonden; stuur lat en long, of een volledig adres "
            "(straat, huisnummer, plaats)",
        )
    return place.lat, place.lon, place.label


def submission_of(form: dict[str, str], lat: float, lon: float, place: str | None) -> ReportSubmission:
    """The service request as a report (400 for one that is not)."""
    contact = {k: form[v] for k, v in (("name", "first_name"), ("phone", "phone"), ("email", "email")) if form.get(v)}
    try:
        return ReportSubmission.model_validate(
            {
                "category": form.get("service_code", ""),
                "description": form.get("description", ""),
                "location": {"lat": lat, "lon": lon, "description": place},
                "observed_at": datetime.now(UTC),
                "in_progress": _flag(form, "in_progress"),
                "danger_to_life": _flag(form, "danger_to_life"),
                "contact": {**contact, "share_with_police": False} if contact else None,
            }
        )
    except ValueError as exc:
        raise ServiceError(
            400,
            "invalid_request",
            f"the service request is not valid: {exc}",
            detail_nl=f"Het verzoek is niet geldig: {exc}",
        ) from exc


# -- media_url --------------------------------------------------------------------------------------------------


def media_refused(refusal: FetchRefused) -> ServiceError:
    """A `media_url` we did not take, and why: never a silent drop."""
    match refusal.reason:
        case "not_allowed":
            return ServiceError(
                422,
                "media_url_not_allowed",
                f"media_url was not fetched: {refusal.message}; send the photo to POST /v1/reports/{{id}}/photos "
                "with the access token instead",
                detail_nl=f"media_url is niet opgehaald: {refusal.message}; stuur de foto in plaats daarvan naar "
                "POST /v1/reports/{id}/photos met de toegangscode",
            )
        case "private_address":
            return ServiceError(
                422,
                "media_url_private_address",
                f"media_url was not fetched: {refusal.message}",
                detail_nl=f"media_url is niet opgehaald: {refusal.message}",
            )
        case "too_large":
            return ServiceError(
                413,
                "media_url_too_large",
                f"media_url was not taken: {refusal.message}",
                detail_nl=f"media_url is niet aangenomen: {refusal.message}",
            )
    return ServiceError(
        422,
        "media_url_failed",
        f"media_url could not be fetched: {refusal.message}",
        detail_nl=f"media_url kon niet worden opgehaald: {refusal.message}",
    )


async def fetched_photos(runtime: Runtime, media_url: str | None, urgent: bool) -> list[CheckedMedia]:
    """The photo or video at `media_url`, fetched under the guard and put through the same checks as an upload
    (its first bytes decide whether it is a video, and so its size limit, as for the app's uploads)."""
    if not media_url:
        return []
    settings: IntakeSettings = runtime.settings
    video_bytes = settings.max_video_bytes if settings.max_videos_per_report > 0 else 0
    limits = FetchLimits(
        allowed_hosts=frozenset(host.lower() for host in settings.open311_media_hosts),
        max_bytes=max(settings.max_photo_bytes, video_bytes),
        max_seconds=settings.open311_media_max_seconds,
        private_addresses=settings.open311_media_private_addresses,
    )
    uploads = settings.blob_dir.parent / "uploads"
    uploads.mkdir(parents=True, exist_ok=True)
    handle, name = tempfile.mkstemp(prefix="media-url-", dir=uploads)
    os.close(handle)
    form = UploadedForm(files=[UploadedFile("photos", None, None, Path(name))])
    try:
        upload = form.files[0]
        try:
            upload.size = await fetch_to_file(media_url.strip(), limits, Path(name))
        except FetchRefused as refusal:
            raise media_refused(refusal) from refusal
        try:
            judge_whole_file(
                upload, form, UploadLimits(settings.max_photo_bytes, 1, 0, max_video_bytes=video_bytes, max_videos=1)
            )
        except ServiceError as refusal:  # too large for what its first bytes prove: said as media_url's refusal
            raise media_refused(FetchRefused("too_large", refusal.detail)) from refusal
        return await report_photos.check_photos(runtime, form, urgent=urgent)
    except BaseException:
        form.cleanup()
        raise


# -- the public view --------------------------------------------------------------------------------------------


def public_view(report: Report, updated: datetime | None, language: str) -> dict[str, Any]:
    category = CATEGORIES.get(report.category)
    status = ReportStatus(report.status)
    stage = "closed" if status in FINAL_STATUSES else PUBLIC_STAGE[status]
    return {
        "service_request_id": report.id,
        "status": "closed" if status in FINAL_STATUSES else "open",
        "status_notes": PUBLIC_NOTES[stage][language],
        "service_code": report.category,
        "service_name": (category.name_nl if language == "nl" else category.name_en) if category else report.category,
        "agency_responsible": "Politie",
        "requested_datetime": report.received_at.isoformat(),
        "updated_datetime": (updated or report.received_at).isoformat(),
        "lat": round(report.lat, PUBLIC_PLACE_DECIMALS),
        "long": round(report.lon, PUBLIC_PLACE_DECIMALS),
    }


async def public_views(runtime: Runtime, reports: list[Report], language: str) -> list[dict[str, Any]]:
    """The public view of each report; `updated_datetime` is its last change of status."""
    ids = [report.id for report in reports]
    updated: dict[str, datetime] = {}
    if ids:
        async with runtime.db.sessions() as session:
            rows = await session.execute(
                select(col(TimelineEntry.report_id), func.max(TimelineEntry.occurred_at))
                .where(
                    col(TimelineEntry.report_id).in_(ids), col(TimelineEntry.event).in_([s.value for s in ReportStatus])
                )
                .group_by(col(TimelineEntry.report_id))
            )
            updated = {report_id: when for report_id, when in rows.all()}
    return [public_view(report, updated.get(report.id), language) for report in reports]


def not_found() -> ServiceError:
    return ServiceError(
        404,
        "request_not_found",
        "there is no service request with this id",
        detail_nl="er is geen melding met dit nummer",
    )


def _when(value: str | None, name: str) -> datetime | None:
    if not value:
        return None
    try:
        moment = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError as exc:
        raise ServiceError(
            400,
            "invalid_date",
            f"{name} is not a W3C date and time (2026-12-01T00:00:00Z)",
            detail_nl=f"{name} is geen W3C-datum met tijd (2026-12-01T00:00:00Z)",
        ) from exc
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _listed(value: str | None) -> list[str]:
    return [item.strip() for item in (value or "").split(",") if item.strip()]


async def find(
    runtime: Runtime,
    *,
    service_request_id: str | None,
    service_code: str | None,
    start_date: str | None,
    end_date: str | None,
    status: str | None,
) -> list[Report]:
    """GeoReport v2's search: by ids (which overrides the rest), else by services, dates (the last 90 days by
    default, never a wider range) and status, newest first, at most 1000."""
    ids = _listed(service_request_id)
    if len(ids) > MOST_IDS:
        raise ServiceError(
            400,
            "too_many_ids",
            f"at most {MOST_IDS} service_request_id values at once",
            detail_nl=f"hoogstens {MOST_IDS} waarden voor service_request_id tegelijk",
        )
    query = select(Report)
    if ids:
        query = query.where(col(Report.id).in_(ids))
    else:
        end = _when(end_date, "end_date")
        start = _when(start_date, "start_date")
        end = end or ((start + timedelta(days=LIST_DEFAULT_DAYS)) if start else datetime.now(UTC))
        start = start or end - timedelta(days=LIST_DEFAULT_DAYS)
        if not timedelta(0) <= end - start <= timedelta(days=LIST_DEFAULT_DAYS):
            raise ServiceError(
                400,
                "invalid_date_range",
                f"start_date must come before end_date, at most {LIST_DEFAULT_DAYS} days apart",
                detail_nl=f"start_date moet voor end_date liggen, hoogstens {LIST_DEFAULT_DAYS} dagen ervoor",
            )
        query = query.where(col(Report.received_at) >= start, col(Report.received_at) <= end)
        codes = _listed(service_code)
        if codes:
            query = query.where(col(Report.category).in_(codes))
        statuses = set(_listed(status))
        if statuses - {"open", "closed"}:
            raise ServiceError(
                400,
                "invalid_status",
                "status is open, closed, or both (comma separated)",
                detail_nl="status is open, closed, of beide (met een komma ertussen)",
            )
        if statuses == {"open"}:
            query = query.where(col(Report.status_rank) < FINAL_RANK)
        elif statuses == {"closed"}:
            query = query.where(col(Report.status_rank) >= FINAL_RANK)
    query = query.order_by(col(Report.received_at).desc()).limit(LIST_MOST)
    async with runtime.db.sessions() as session:
        return list((await session.execute(query)).scalars())


async def by_id(runtime: Runtime, request_id: str) -> Report:
    async with runtime.db.sessions() as session:
        report = (await session.execute(select(Report).where(col(Report.id) == request_id))).scalars().first()
    if report is None:
        raise not_found()
    return report


async def by_token(runtime: Runtime, token: str) -> Report:
    async with runtime.db.sessions() as session:
        report = (await session.execute(select(Report).where(col(Report.reference) == token.strip()))).scalars().first()
    if report is None:
        raise not_found()
    return report
