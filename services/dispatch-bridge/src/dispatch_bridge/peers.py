"""The bridge's calls to the services that hold records with it (intake and verification), answered at once:
custody, legal holds, Burgernet figures, verification's dead jobs. Messages that must not be lost go through the
outbox instead."""

from __future__ import annotations

import uuid

import httpx

from burgermelding_shared.app import Runtime
from burgermelding_shared.errors import ServiceError


async def call_service(
    runtime: Runtime, service: str, method: str, path: str, body: dict | None = None
) -> httpx.Response:
    """A call to intake or verification with this bridge's credential (raises on a failure or an error)."""
    settings = runtime.settings
    base = {"report-intake": settings.intake_url, "verification": settings.verification_url}[service]
    headers = {"authorization": f"Bearer {settings.signing_key.issue(service)}"}
    if body is not None:
        headers["idempotency-key"] = str(uuid.uuid4())
    response = await runtime.http.request(method, base.rstrip("/") + path, json=body, headers=headers, timeout=5)
    response.raise_for_status()
    return response


def unreachable(service: str) -> ServiceError:
    return ServiceError(
        503,
        "service_unreachable",
        f"{service} did not answer; try again shortly",
        detail_nl=f"{service} antwoordt niet; probeer het zo opnieuw",
        headers={"Retry-After": "5"},
    )
