"""Every error of every service is RFC 9457 problem details, as the Dutch government's API design rules require,
and every service's OpenAPI document says so."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from dispatch_bridge.config import BridgeSettings
from meldkamer_sim.config import MeldkamerSettings
from report_intake.config import IntakeSettings
from verification.config import VerificationSettings

SERVICES = [
    ("report_intake", IntakeSettings),
    ("verification", VerificationSettings),
    ("dispatch_bridge", BridgeSettings),
    ("meldkamer_sim", MeldkamerSettings),
]
PROBLEM_MEMBERS = {"type", "title", "status", "detail", "error", "detail_nl"}


def check_problem(response: Any, status: int, error: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    problem = response.json()
    assert set(problem) >= PROBLEM_MEMBERS, problem
    assert problem["status"] == status and problem["error"] == error
    assert problem["type"] == f"tag:burgermelding.politie.nl,2026:problem:{error}"
    assert problem["title"] and problem["detail"] and problem["detail_nl"]
    return problem


@pytest.mark.parametrize(("package", "settings"), SERVICES, ids=[s[0] for s in SERVICES])
async def test_errors_are_problem_details_in_english_or_dutch(
    start_service: Callable[..., Any], package: str, settings: type
) -> None:
    service = await start_service(package, settings)
    english = check_problem(await service.client.get("/no/such/page"), 404, "not_found")
    dutch = check_problem(
        await service.client.get("/no/such/page", headers={"Accept-Language": "nl, en;q=0.5"}), 404, "not_found"
    )
    assert english["detail"] != english["detail_nl"] and dutch["detail"] == dutch["detail_nl"]
    assert english["title"] == dutch["title"] == "Not Found"  # the same for every occurrence of the type
    # An internal endpoint without its credential: the shared service authentication's error.
    internal = {
        "report_intake": "/internal/v1/report-events",
        "verification": "/internal/v1/jobs",
        "dispatch_bridge": "/internal/v1/reports",
        "meldkamer_sim": None,
    }[package]
    if internal:
        check_problem(await service.client.post(internal, json={}), 401, "missing_service_credential")


@pytest.mark.parametrize(("package", "settings"), SERVICES, ids=[s[0] for s in SERVICES])
async def test_the_openapi_document_describes_every_error_as_problem_details(
    start_service: Callable[..., Any], package: str, settings: type
) -> None:
    service = await start_service(package, settings)
    public = (await service.client.get("/openapi.json")).json()
    internal = service.app.state.internal_openapi()
    documented = 0
    for document in (public, internal):
        if not document["paths"]:
            continue  # verification has no public operation
        schema = document["components"]["schemas"]["ProblemDetails"]
        assert set(schema["required"]) >= PROBLEM_MEMBERS
        assert "ErrorBody" not in document["components"]["schemas"]
    for path, operations in [*public["paths"].items(), *internal["paths"].items()]:
        for method, operation in operations.items():
            for code, response in operation["responses"].items():
                if int(code) < 400:
                    continue
                documented += 1
                if path.startswith("/open311/") and code != "408":
                    # Open311's routes answer in that standard's error shape (report_intake/open311/wire.py); a body
                    # too slow (408) is answered before any route, as a problem, and so may a service too busy (503).
                    (media,) = response["content"].values()
                    allowed = {"Open311Errors", "ProblemDetails"} if code == "503" else {"Open311Errors"}
                    assert media["schema"]["$ref"].rsplit("/", 1)[1] in allowed, (method, path, code)
                    continue
                assert set(response["content"]) == {"application/problem+json"}, (method, path, code)
                media = response["content"]["application/problem+json"]
                assert media["schema"] == {"$ref": "#/components/schemas/ProblemDetails"}, (method, path, code)
                for example in media.get("examples", {}).values():
                    assert set(example["value"]) >= PROBLEM_MEMBERS and example["value"]["status"] == int(code)
    assert documented
