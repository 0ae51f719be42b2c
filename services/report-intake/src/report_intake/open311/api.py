"""Open311 GeoReport v2 (https://wiki.open311.org/GeoReport_v2/), JSON and XML, over the same pipeline as the app.

Every route of the spec: services, a service's definition, creating a request (a url-encoded form), searching
requests, reading one, and tokens. Where we differ from a municipal Open311 server, on purpose:
- Reads are public as the spec has them, but show only the public view (service_requests.py): no description,
  contact, photos or exact place. The reporter follows the whole report with the `access_token` the creation
  answer adds (the citizen API, `GET /v1/reports/{id}`).
- `api_key` is optional: an integrator's key (integrators.py) gives it limits of its own and marks its reports;
  without one, requests count against their network address, like the app's without a credential.
- `media_url` is fetched only from allow-listed hosts, under a guard (burgermelding_shared.guarded_fetch), into
  the same photo checks as an upload; a URL we do not take is refused with the reason, never dropped.
- `address_string` alone is placed by the geocoder (`geocoder` setting), or refused when it names no address.
- `device_id` is never stored. Contact fields are kept apart and not shared with the police (Open311 has no way
  to ask for consent).
- Open311 has no idempotency key: a client may send `Idempotency-Key`; without one, a retry of the same form
  from the same client on the same day replays the first answer instead of making a second report.
- The answer to a request in progress or with danger to life says to call 112 (`service_notice`), as the app's.
"""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated

from fastapi import APIRouter, Depends, Header, Query, Request, Response
from fastapi.security import APIKeyQuery

from burgermelding_shared import idempotency
from burgermelding_shared.app import Runtime, RuntimeDep
from burgermelding_shared.errors import ServiceError
from burgermelding_shared.geocoding import Geocoder
from burgermelding_shared.ratelimit import Reservation, client_address
from burgermelding_shared.videos import CheckedMedia, CheckedVideo
from report_intake.installations.senders import Sender
from report_intake.open311 import integrators, service_requests, services
from report_intake.open311.service_requests import Open311Created, Open311Request, Open311Token
from report_intake.open311.services import Open311Service, Open311ServiceDefinition
from report_intake.open311.wire import Open311Route, answer, error_responses, open311_route, wire_of
from report_intake.reports import creation
from report_intake.reports import submission as reports_submission
from report_intake.request_parts import language, limits_of

router = APIRouter(prefix="/open311/v2", tags=["open311"], route_class=Open311Route)

API_KEY = APIKeyQuery(
    name="api_key",
    auto_error=False,
    scheme_name="open311ApiKey",
    description="An Open311 integrator's key (issued by the command `burgermelding-report-intake integrators "
    "issue`). Optional: with it, the integrator's own limits and its reports marked as its; without it, the "
    "network address's limits. On `POST requests` it may also come as the form field `api_key`, as the spec has it.",
)

FORM_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "application/x-www-form-urlencoded": {
                "schema": {
                    "type": "object",
                    "required": ["service_code", "description"],
                    "properties": {
                        "service_code": {"type": "string", "description": "A code from services.json"},
                        "lat": {"type": "number", "description": "With long; or send address_string"},
                        "long": {"type": "number"},
                        "address_string": {
                            "type": "string",
                            "maxLength": 300,
                            "description": "Placed by the geocoder when lat and long are absent (a street, "
                            "number and place); else kept as the place description",
                        },
                        "description": {"type": "string", "maxLength": 2000},
                        "attribute[in_progress]": {"type": "string", "enum": ["true", "false"]},
                        "attribute[danger_to_life]": {"type": "string", "enum": ["true", "false"]},
                        "media_url": {
                            "type": "string",
                            "format": "uri",
                            "description": "A photo on an allow-listed host: fetched and checked like an upload",
                        },
                        "api_key": {"type": "string", "description": "The integrator's key (optional)"},
                        "jurisdiction_id": {"type": "string", "description": "Accepted and ignored: one jurisdiction"},
                        "first_name": {"type": "string"},
                        "last_name": {"type": "string", "description": "Not stored"},
                        "email": {"type": "string"},
                        "phone": {"type": "string"},
                        "device_id": {"type": "string", "description": "Not stored"},
                        "account_id": {"type": "string", "description": "Not stored"},
                    },
                    "example": {
                        "service_code": "burglary",
                        "lat": 52.0907,
                        "long": 5.1214,
                        "description": "Twee mannen bij de achterdeur",
                        "attribute[in_progress]": "true",
                    },
                }
            }
        },
    }
}


def geocoder_of(runtime: Runtime) -> Geocoder:
    geocoder: Geocoder = runtime.extras["geocoder"]
    return geocoder


async def counted_read(request: Request, runtime: RuntimeDep) -> None:
    """A public read, counted against its address like a citizen's status poll."""
    await limits_of(runtime).using_token(Sender(client_address(request)))


ReadDep = Depends(counted_read)


@open311_route(
    router,
    "GET",
    "/services",
    summary="Open311: the service list (our report categories)",
    response_model=list[Open311Service],
    responses=error_responses(429),
)
async def list_open311_services(request: Request) -> Response:
    return answer(wire_of(request), "services", services.service_list(language(request)))


@open311_route(
    router,
    "GET",
    "/services/{service_code}",
    summary="Open311: a service's definition (the attributes we read: in progress, danger to life)",
    response_model=Open311ServiceDefinition,
    responses=error_responses(404, 422, 429),
)
async def get_open311_service_definition(service_code: str, request: Request) -> Response:
    return answer(wire_of(request), "service_definition", services.definition(service_code, language(request)))


async def sender_and_limit(request: Request, runtime: Runtime, api_key: str | None) -> tuple[Sender, Reservation]:
    """Who sends this request, counted now against their limit (429 if none is left): the integrator whose key
    comes with it (403 for a key that is not valid), else the network address."""
    limits = limits_of(runtime)
    if api_key:
        try:
            integrator = await integrators.authenticate(runtime.db, api_key)
        except ServiceError:
            # A wrong key counts against its address like a wrong access token: guessing is throttled (429).
            await limits.using_token(Sender(client_address(request)))
            raise
        sender = Sender(client_address(request), integrator_id=integrator.id)
        return sender, await limits.new_integrator_report(integrator.id, integrator.reports_per_hour)
    sender = Sender(client_address(request))
    return sender, await limits.new_report(sender)


@asynccontextmanager
async def media_photos(runtime: Runtime, media_url: str | None, urgent: bool) -> AsyncIterator[list[CheckedMedia]]:
    """The photo or video at `media_url` while the report is stored; its files (a video's playable copy too) are
    gone afterwards, whatever happened."""
    photos = await service_requests.fetched_photos(runtime, media_url, urgent)
    try:
        yield photos
    finally:
        for photo in photos:
            photo.path.unlink(missing_ok=True)
            if isinstance(photo, CheckedVideo):
                photo.playable_path.unlink(missing_ok=True)


@open311_route(
    router,
    "POST",
    "/requests",
    summary="Open311: create a service request",
    status_code=201,
    response_model=list[Open311Created],
    openapi_extra=FORM_BODY,
    responses=error_responses(400, 403, 409, 413, 415, 422, 429, 503),
)
async def create_open311_request(
    request: Request,
    runtime: RuntimeDep,
    api_key: Annotated[str | None, Depends(API_KEY)] = None,
    idempotency_key: Annotated[str | None, Header(alias="Idempotency-Key")] = None,
) -> Response:
    form = await service_requests.read_form(request)
    sender, reservation = await sender_and_limit(request, runtime, form.pop("api_key", None) or api_key)
    # Given back if the request fails, or by create_report if it repeats one already answered.
    async with reservation:
        lat, lon, place = await service_requests.place_of(form, geocoder_of(runtime))
        submission = service_requests.submission_of(form, lat, lon, place)
        reports_submission.validate_submission(submission, runtime.settings)
        if idempotency_key:
            key = idempotency.check_key(idempotency_key)
        else:
            anonymous = (await limits_of(runtime).submitter(sender)).tag
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
        async with media_photos(runtime, form.get("media_url"), new.urgent) as photos:
            new.photos = photos
            _status, body = await creation.create_report(runtime, new)
    notice = body["safety_advice"]["message"] if body.get("safety_advice") else body["reference"]
    created = {
        "service_request_id": body["id"],
        "token": body["reference"],
        "service_notice": notice,
        "account_id": None,
        "access_token": body["access_token"],
    }
    return answer(wire_of(request), "service_requests", [created], status_code=201)


@open311_route(
    router,
    "GET",
    "/requests",
    summary="Open311: search service requests (their public view)",
    description="By `service_request_id` (comma separated, at most 100; overrides the rest), else by "
    "`service_code`, `start_date`, `end_date` (the last 90 days by default, never a wider range) and `status`; "
    "newest first, at most 1000.",
    response_model=list[Open311Request],
    responses=error_responses(400, 422, 429),
    dependencies=[ReadDep],
)
async def list_open311_requests(
    request: Request,
    runtime: RuntimeDep,
    service_request_id: Annotated[str | None, Query(max_length=4000)] = None,
    service_code: Annotated[str | None, Query(max_length=1000)] = None,
    start_date: Annotated[str | None, Query(max_length=40)] = None,
    end_date: Annotated[str | None, Query(max_length=40)] = None,
    status: Annotated[str | None, Query(max_length=20)] = None,
    jurisdiction_id: Annotated[str | None, Query(max_length=100, description="Accepted and ignored")] = None,
) -> Response:
    found = await service_requests.find(
        runtime,
        service_request_id=service_request_id,
        service_code=service_code,
        start_date=start_date,
        end_date=end_date,
        status=status,
    )
    views = await service_requests.public_views(runtime, found, language(request))
    return answer(wire_of(request), "service_requests", views)


@open311_route(
    router,
    "GET",
    "/requests/{request_id}",
    summary="Open311: a service request (its public view)",
    response_model=list[Open311Request],
    responses=error_responses(404, 422, 429),
    dependencies=[ReadDep],
)
async def get_open311_request(request_id: str, request: Request, runtime: RuntimeDep) -> Response:
    report = await service_requests.by_id(runtime, request_id)
    views = await service_requests.public_views(runtime, [report], language(request))
    return answer(wire_of(request), "service_requests", views)


@open311_route(
    router,
    "GET",
    "/tokens/{token}",
    summary="Open311: the service request id of a token (our token is the report's reference)",
    response_model=list[Open311Token],
    responses=error_responses(404, 422, 429),
    dependencies=[ReadDep],
)
async def get_open311_token(token: str, request: Request, runtime: RuntimeDep) -> Response:
    report = await service_requests.by_token(runtime, token)
    return answer(wire_of(request), "service_requests", [{"service_request_id": report.id, "token": report.reference}])


@router.api_route("/{rest:path}", methods=["GET", "POST"], include_in_schema=False)
async def open311_not_found(rest: str) -> Response:
    """Anything else under the Open311 root: a 404 in the spec's shape (a client's wrong path or format)."""
    raise ServiceError(
        404,
        "not_found",
        "there is no such Open311 resource (GeoReport v2: services, requests and tokens, in .json or .xml)",
        detail_nl="zo'n Open311-adres bestaat niet (GeoReport v2: services, requests en tokens, als .json of .xml)",
    )
