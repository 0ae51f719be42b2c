"""The OpenAPI document is the developers' interface: every citizen endpoint documents its errors."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from report_intake.config import IntakeSettings
from report_intake.installations.registration import solves


def example_of(document: dict, response: dict) -> Any:
    """The example a response documents: on its content, or on the (item) schema it refers to."""
    for media in response.get("content", {}).values():
        if media.get("example") or media.get("examples"):
            return media.get("example") or media.get("examples")
        schema = media.get("schema", {})
        schema = schema.get("items", schema)
        if "$ref" in schema:
            schema = document["components"]["schemas"][schema["$ref"].rsplit("/", 1)[1]]
        if schema.get("examples"):
            return schema["examples"]
    return None


async def test_every_citizen_endpoint_documents_its_error_responses(start_service: Callable[..., Any]) -> None:
    intake = await start_service("report_intake", IntakeSettings)
    document = (await intake.client.get("/openapi.json")).json()
    for path, operations in document["paths"].items():
        if not path.startswith(("/v1/reports", "/v1/installations", "/open311/v2/requests")):
            continue
        for method, operation in operations.items():
            errors = {code for code in operation["responses"] if code.startswith("4")}
            # A challenge is stateless and refused to nobody (a limit would let one abuser lock out a network).
            assert errors or path == "/v1/installations/challenges", f"{method.upper()} {path} documents no error"
            for code in errors:
                # Open311's errors are in the spec's shape, in the path's format; but a body too slow to arrive (408)
                # is answered before any route runs, as problem details.
                if path.startswith("/open311/") and code != "408":
                    (content,) = operation["responses"][code]["content"].values()
                    assert content["schema"] == {"$ref": "#/components/schemas/Open311Errors"}, (path, code)
                    continue
                content = operation["responses"][code]["content"]["application/problem+json"]
                assert content["schema"] == {"$ref": "#/components/schemas/ProblemDetails"}, (path, code)
                assert all(
                    set(e["value"]) == {"type", "title", "status", "detail", "error", "detail_nl"}
                    and e["value"]["status"] == int(code)
                    for e in content["examples"].values()
                ), (path, code)
            success = next(code for code in operation["responses"] if code.startswith("2"))
            if success == "204":
                continue
            assert example_of(document, operation["responses"][success]), f"{method.upper()} {path}: no example"
    create = document["paths"]["/v1/reports"]["post"]
    report_part = create["requestBody"]["content"]["multipart/form-data"]["schema"]["properties"]["report"]
    assert report_part["contentSchema"]["examples"][0]["category"] == "burglary"


async def test_the_registration_flow_is_documented_for_app_developers(start_service: Callable[..., Any]) -> None:
    intake = await start_service("report_intake", IntakeSettings)
    document = (await intake.client.get("/openapi.json")).json()
    register = document["paths"]["/v1/installations"]["post"]
    assert "SHA-256" in register["description"] and "Installation-Credential" in register["description"]
    assert example_of(document, register["responses"]["201"])[0]["credential"].startswith("bmi1.")
    refusals = register["responses"]["422"]["content"]["application/problem+json"]["examples"]
    assert {"proof_of_work_invalid", "challenge_expired", "challenge_invalid"} <= set(refusals)
    assert "proof_of_work_replayed" in register["responses"]["409"]["content"]["application/problem+json"]["examples"]
    create = document["paths"]["/v1/reports"]["post"]
    # The credential is a security scheme (a generated client sends it), optional: the request goes without it.
    assert document["components"]["securitySchemes"]["installationCredential"] == {
        "type": "apiKey",
        "in": "header",
        "name": "Installation-Credential",
        "description": document["components"]["securitySchemes"]["installationCredential"]["description"],
    }
    assert create["security"] == [{"installationCredential": []}, {}]
    assert not any(p["name"] == "Installation-Credential" for p in create.get("parameters", []))
    assert (
        "installation_credential_invalid"
        in create["responses"]["401"]["content"]["application/problem+json"]["examples"]
    )
    # The example challenge and solution are a real test vector.
    solution = register["requestBody"]["content"]["application/json"]["schema"]
    example = document["components"]["schemas"][solution["$ref"].rsplit("/", 1)[1]]["examples"][0]
    assert solves(example["challenge"], example["solution"], 20) and example["solution"] in register["description"]


async def test_what_a_generated_client_must_send_and_may_get_back(start_service: Callable[..., Any]) -> None:
    intake = await start_service("report_intake", IntakeSettings)
    document = (await intake.client.get("/openapi.json")).json()
    schemes = document["components"]["securitySchemes"]
    assert schemes["citizenToken"]["type"] == "http" and schemes["citizenToken"]["scheme"] == "bearer"
    status = document["paths"]["/v1/reports/{report_id}"]["get"]
    # The report's token is needed, the installation credential taken when sent: both or the token alone.
    assert status["security"] == [{"citizenToken": [], "installationCredential": []}, {"citizenToken": []}]
    create = document["paths"]["/v1/reports"]["post"]
    key = next(p for p in create["parameters"] if p["name"] == "Idempotency-Key")
    assert key["required"] is True and key["schema"]["type"] == "string"
    for code in ("429", "503"):
        assert create["responses"][code]["headers"]["Retry-After"] == {"$ref": "#/components/headers/Retry-After"}
    examples = create["responses"]["503"]["content"]["application/problem+json"]["examples"]
    assert {"busy", "storage_unavailable"} <= set(examples)
    for path, item in document["paths"].items():
        for method, operation in item.items():
            assert "503" in operation["responses"], (method, path)
    # A request without the key is still answered with our own problem, as documented (400), not FastAPI's 422.
    refused = await intake.client.post("/v1/reports", files={"report": (None, "{}")})
    assert refused.status_code == 400 and refused.json()["error"] == "idempotency_key_missing"
