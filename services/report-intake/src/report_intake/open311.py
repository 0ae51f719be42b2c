"""An Open311 GeoReport v2 facade (JSON) over the same pipeline, so existing Open311 clients can submit reports.

Where we deviate from common Open311 servers, on purpose:
- Reading a request needs its access token (`Authorization: Bearer`): reports are not public.
- `media_url` is ignored: fetching URLs a client names would let anyone make us call any address. Photos go
  to `POST /v1/reports/{id}/photos` with the token.
- `device_id` is never stored. Contact fields are kept apart and not shared with the police (Open311 has no
  way to ask for consent).
- Open311 has no idempotency key: a client may send `Idempotency-Key`; without one, a retry of the same
  content from the same client on the same day replays the first answer instead of making a second report.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from typing import Annotated, Any, Literal
from urllib.parse import parse_qs

from fastapi import APIRouter, Header, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict

from burgermelding_shared import idempotency
from burgermelding_shared.app import RuntimeDep
from burgermelding_shared.categories import CATEGORIES
from burgermelding_shared.errors import ServiceError, error_responses
from burgermelding_shared.ratelimit import client_address
from report_intake.installations.senders import Sender
from report_intake.reports import access, creation, views
from report_intake.reports import submission as reports_submission
from report_intake.reports.status import FINAL_STATUSES
from report_intake.request_parts import bearer_token, language, limits_of
from report_intake.schemas import ReportSubmission

router = APIRouter(prefix="/open311/v2", tags=["open311"])
MAX_FORM_BYTES = 16 * 1024
REQUEST_ID = "3f8e2b0c-7a51-4c3e-9d0a-1b2c3d4e5f60"


class Open311Service(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "service_code": "burglary",
                    "service_name": "Burglary",
                    "description": "Someone is breaking in or has broken in",
                    "metadata": False,
                    "type": "realtime",
                    "keywords": "burglary",
                    "group": "Bezitsaantasting",
                }
            ]
        }
    )

    service_code: str
    service_name: str
    description: str
    metadata: bool
    type: str
    keywords: str
    group: str


class Open311Created(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "service_request_id": REQUEST_ID,
                    "service_notice": "BM-2026-000124",
                    "account_id": None,
                    "access_token": "q3T0pX1vR8mJ2cYb6LwN4sZ9hKe5uAoDfGiHjClMnPr",
                }
            ]
        }
    )

    service_request_id: str
    service_notice: str
    account_id: str | None
    access_token: str  # ours: needed to read the request back (reports are not public)


class Open311Request(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "service_request_id": REQUEST_ID,
                    "status": "open",
                    "status_notes": "The control room has taken up your report.",
                    "service_code": "burglary",
                    "service_name": "Burglary",
                    "requested_datetime": "2026-11-22T20:10:04+00:00",
                    "updated_datetime": "2026-11-22T20:10:06+00:00",
                }
            ]
        }
    )

    service_request_id: str
    status: Literal["open", "closed"]
    status_notes: str | None
    service_code: str
    service_name: str
    requested_datetime: str
    updated_datetime: str


FORM_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "application/x-www-form-urlencoded": {
                "schema": {
                    "type": "object",
                    "required": ["service_code", "lat", "long", "description"],
                    "properties": {
                        "service_code": {"type": "string", "description": "A code from services.json"},
                        "lat": {"type": "number"},
                        "long": {"type": "number"},
                        "address_string": {"type": "string", "description": "Kept as the place description"},
                        "description": {"type": "string", "maxLength": 2000},
                        "attribute[in_progress]": {"type": "boolean"},
                        "attribute[danger_to_life]": {"type": "boolean"},
                        "first_name": {"type": "string"},
                        "email": {"type": "string"},
                        "phone": {"type": "string"},
                    },
                    "example": {
                        "service_code": "burglary",
                        "lat": 52.0907,
                        "long": 5.1214,
                        "description": "Twee mannen bij de achterdeur",
                        "attribute[in_progress]": True,
                    },
                }
            }
        },
    }
}


@router.get("/services.json", summary="Open311: the service list (our categories)", response_model=list[Open311Service])
async def list_open311_services(request: Request) -> list[dict[str, Any]]:
    nl = language(request) == "nl"
    return [
        {
            "service_code": c.code,
            "service_name": c.name_nl if nl else c.name_en,
            "description": c.hint_nl if nl else c.hint_en,
            "metadata": False,
            "type": "realtime",
            "keywords": c.apco.lower(),
            "group": c.lmc.split(" / ")[0],
        }
        for c in CATEGORIES.values()
    ]


async def _read_form(request: Request) -> dict[str, str]:
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


def _number(form: dict[str, str], name: str) -> float:
    try:
        return float(form[name])
    except (KeyError, ValueError) as exc:
        raise ServiceError(
            400,
            "missing_location",
            "lat and long are required numbers (address_string alone cannot be placed)",
            detail_nl="lat en long zijn verplichte getallen (een adres alleen kan niet op de kaart worden gezet)",
        ) from exc


def _flag(form: dict[str, str], name: str) -> bool:
    return form.get(f"attribute[{name}]", "").lower() in ("true", "1", "yes")


def _submission(form: dict[str, str]) -> ReportSubmission:
    """The service request as a report (400 for one that is not)."""
    contact = {k: form[v] for k, v in (("name", "first_name"), ("phone", "phone"), ("email", "email")) if form.get(v)}
    try:
        return ReportSubmission.model_validate(
            {
                "category": form.get("service_code", ""),
                "description": form.get("description", ""),
                "location": {
                    "lat": _number(form, "lat"),
                    "lon": _number(form, "long"),
                    "description": form.get("address_string"),
                },
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


@router.post(
    "/requests.json",
    summary="Open311: create a service request",
    status_code=201,
    response_model=list[Open311Created],
    openapi_extra=FORM_BODY,
    responses=error_responses(400, 409, 413, 415, 422, 429),
)
async def create_open311_request(
    request: Request,
    runtime: RuntimeDep,
    idempotency_key: Annotated[str | None, Header(alias="Idempotency-Key")] = None,
) -> JSONResponse:
    limits = limits_of(runtime)
    sender = Sender(client_address(request))  # Open311 clients have no installation credential
    # Counted now, in one step with the check: requests sent together cannot all pass. Given back if the request
    # fails, or by create_report if it repeats one already answered.
    async with await limits.new_report(sender) as reservation:
        form = await _read_form(request)
        submission = _submission(form)
        reports_submission.validate_submission(submission, runtime.settings)
        if idempotency_key:
            key = idempotency.check_key(idempotency_key)
        else:
            anonymous = (await limits.submitter(sender)).tag
            key = "open311-" + hashlib.sha256((anonymous + repr(sorted(form.items()))).encode()).hexdigest()[:40]
        new = creation.NewReport(
            submission,
            [],
            key,
            language(request),
            fingerprint_basis={"open311": form},
            sender=sender,
            reservation=reservation,
        )
        _status, body = await creation.create_report(runtime, new)
    notice = body["safety_advice"]["message"] if body.get("safety_advice") else body["reference"]
    return JSONResponse(
        [
            {
                "service_request_id": body["id"],
                "service_notice": notice,
                "account_id": None,
                "access_token": body["access_token"],
            }
        ],
        status_code=201,
    )


@router.get(
    "/requests/{request_id}.json",
    summary="Open311: read a service request (needs its access token)",
    response_model=list[Open311Request],
    responses=error_responses(404, 429),
)
async def get_open311_request(
    request_id: str, request: Request, runtime: RuntimeDep, authorization: Annotated[str | None, Header()] = None
) -> list[dict[str, Any]]:
    sender = Sender(client_address(request))
    await limits_of(runtime).using_token(sender)
    view = await views.view_report(
        runtime, request_id, access.Access(bearer_token(authorization), sender), language(request)
    )
    nl = language(request) == "nl"
    category = CATEGORIES[view.category]
    return [
        {
            "service_request_id": view.id,
            "status": "closed" if view.status in FINAL_STATUSES else "open",
            "status_notes": view.timeline[-1].text if view.timeline else None,
            "service_code": view.category,
            "service_name": category.name_nl if nl else category.name_en,
            "requested_datetime": view.received_at.isoformat(),
            "updated_datetime": (view.timeline[-1].occurred_at if view.timeline else view.received_at).isoformat(),
        }
    ]
