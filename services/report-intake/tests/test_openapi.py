"""The OpenAPI document is the developers' interface: every citizen endpoint documents its errors."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from report_intake.config import IntakeSettings


async def test_every_citizen_endpoint_documents_its_error_responses(start_service: Callable[..., Any]) -> None:
    intake = await start_service("report_intake", IntakeSettings)
    document = (await intake.client.get("/openapi.json")).json()
    for path, operations in document["paths"].items():
        if not path.startswith(("/v1/reports", "/open311/v2/requests")):
            continue
        for method, operation in operations.items():
            errors = {code for code in operation["responses"] if code.startswith("4")}
            assert errors, f"{method.upper()} {path} documents no error response"
            for code in errors:
                schema = operation["responses"][code]["content"]["application/json"]["schema"]
                assert schema == {"$ref": "#/components/schemas/ErrorBody"}, (path, code)
    create = document["paths"]["/v1/reports"]["post"]
    report_part = create["requestBody"]["content"]["multipart/form-data"]["schema"]["properties"]["report"]
    assert report_part["contentSchema"]["examples"][0]["category"] == "burglary"
