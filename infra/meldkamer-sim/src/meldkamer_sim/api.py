"""The simulated meldkamer's API."""

from __future__ import annotations

import hmac
import time
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Header, Query
from fastapi.security import HTTPBearer
from pydantic import BaseModel, Field

from burgermelding_shared.app import Runtime, RuntimeDep, require_service
from burgermelding_shared.catalogue import INCIDENT_UPDATE, REQUEST_FOR_SERVICE
from burgermelding_shared.contracts import IncidentStatus, IncidentUpdate, RequestForService, RequestResponse
from burgermelding_shared.errors import ServiceError, error_responses
from meldkamer_sim import dispatcher
from meldkamer_sim.faults import FAULT_STATUSES, Faults, FaultState

router = APIRouter(prefix="/v1", tags=["meldkamer"])
admin = APIRouter(prefix="/admin", tags=["admin"])


def faults_of(runtime: Runtime) -> FaultState:
    return runtime.extras["faults"]


# How the document names the admin token; require_admin compares the whole header itself, in constant time.
ADMIN_TOKEN = HTTPBearer(auto_error=False, scheme_name="adminToken", description="The simulator's admin token.")


def require_admin(
    runtime: RuntimeDep,
    _declared: Annotated[Any, Depends(ADMIN_TOKEN)],
    authorization: Annotated[str | None, Header(include_in_schema=False)] = None,
) -> None:
    expected = f"Bearer {runtime.settings.admin_token}"
    if not authorization or not hmac.compare_digest(authorization.encode(), expected.encode()):
        raise ServiceError(
            401,
            "admin_token_required",
            "the admin endpoints need the admin token",
            detail_nl="voor de beheeradressen is het beheertoken nodig",
        )


AdminDep = Annotated[None, Depends(require_admin)]


class Outage(BaseModel):
    seconds: float = Field(ge=0, le=3600, description="How long from now; 0 ends an outage in progress.")


@admin.get("/faults", response_model=Faults, summary="The faults now in force", responses=error_responses(401))
async def get_faults(runtime: RuntimeDep, _admin: AdminDep) -> Faults:
    return faults_of(runtime).faults


@admin.put("/faults", response_model=Faults, summary="Replace the faults", responses=error_responses(401, 422))
async def put_faults(faults: Faults, runtime: RuntimeDep, _admin: AdminDep) -> Faults:
    faults_of(runtime).faults = faults
    return faults


@admin.post(
    "/outage", summary="Start a whole outage now, for some seconds (0: end it)", responses=error_responses(401, 422)
)
async def start_outage(outage: Outage, runtime: RuntimeDep, _admin: AdminDep) -> dict[str, float]:
    state = faults_of(runtime)
    state.outage_until = time.monotonic() + outage.seconds
    return {"outage_seconds": outage.seconds}


class Ending(BaseModel):
    status: Literal["Closed", "Cancelled"] = Field(description="How the operator ends it.")


@admin.post(
    "/incidents/{incident_id}/end",
    summary="A meldkamer operator ends an incident now (its signed callback goes at once; the script stops)",
    responses=error_responses(401, 404, 422),
)
async def end_incident(incident_id: str, ending: Ending, runtime: RuntimeDep, _admin: AdminDep) -> dict[str, str]:
    incident = await dispatcher.end_incident(runtime, incident_id, IncidentStatus(ending.status))
    return {"incident_id": incident.incident_id, "status": ending.status}


@router.post(
    REQUEST_FOR_SERVICE.under(router.prefix),
    response_model=RequestResponse,
    summary="A request for service (STA-024 shaped); idempotent per requestId",
    responses=error_responses(400, 401, 403, 422, *FAULT_STATUSES),
)
async def request_for_service(
    request: RequestForService,
    runtime: RuntimeDep,
    _caller: str = require_service("dispatch-bridge"),
) -> RequestResponse:
    late_error = await faults_of(runtime).before()
    answer = await dispatcher.accept_request(runtime, request)
    if late_error:
        raise late_error  # stored, yet answered with an error: the bridge will retry the same requestId
    return answer


@router.post(
    INCIDENT_UPDATE.under(router.prefix),
    summary="News on an incident; idempotent per updateId",
    responses=error_responses(400, 401, 403, 409, 422, *FAULT_STATUSES),
)
async def incident_update(
    request_id: str,
    update: IncidentUpdate,
    runtime: RuntimeDep,
    _caller: str = require_service("dispatch-bridge"),
) -> dict[str, str]:
    late_error = await faults_of(runtime).before()
    result = await dispatcher.apply_update(runtime, request_id, update)
    if late_error:
        raise late_error
    return result


@router.get(
    "/incidents",
    summary="The incidents this meldkamer has received, newest first (the admin token: they "
    "hold citizens' descriptions)",
    responses=error_responses(401),
)
async def list_incidents(
    runtime: RuntimeDep,
    _admin: AdminDep,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
) -> list[dict[str, Any]]:
    return await dispatcher.list_incidents(runtime, limit, offset)
