"""The published documents' contract check (scripts/openapi_contract.py): what it calls breaking, and that a
change must be versioned and in the changelog."""

from __future__ import annotations

import copy
import importlib.util
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
spec = importlib.util.spec_from_file_location("openapi_contract", ROOT / "scripts" / "openapi_contract.py")
assert spec and spec.loader
contract = importlib.util.module_from_spec(spec)
spec.loader.exec_module(contract)

BASE: dict[str, Any] = {
    "openapi": "3.1.0",
    "info": {"title": "t", "version": "1.2.0"},
    "paths": {
        "/v1/reports/{report_id}": {
            "get": {
                "operationId": "getReport",
                "parameters": [{"name": "report_id", "in": "path", "required": True}],
                "responses": {
                    "200": {"content": {"application/json": {"schema": {"$ref": "#/components/schemas/View"}}}}
                },
            }
        },
        "/v1/reports": {
            "post": {
                "operationId": "createReport",
                "security": [{"installationCredential": []}, {}],
                "requestBody": {
                    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Submission"}}}
                },
                "responses": {"202": {"content": {"application/json": {"schema": {"type": "object"}}}}},
            }
        },
    },
    "components": {
        "schemas": {
            "View": {
                "type": "object",
                "properties": {"status": {"enum": ["received", "closed"]}, "id": {"type": "string"}},
            },
            "Submission": {"type": "object", "required": ["category"], "properties": {"category": {"type": "string"}}},
        }
    },
}


def changed(edit: Any) -> dict[str, Any]:
    document = copy.deepcopy(BASE)
    edit(document)
    return document


def test_what_breaks_a_client_and_what_does_not() -> None:
    assert contract.breaking_changes(BASE, BASE) == []
    removed = changed(lambda d: d["paths"].pop("/v1/reports"))
    assert contract.breaking_changes(BASE, removed) == ["POST /v1/reports: removed"]
    added = changed(lambda d: d["paths"].__setitem__("/v1/categories", {"get": {"responses": {"200": {}}}}))
    assert contract.breaking_changes(BASE, added) == []
    required = changed(
        lambda d: d["paths"]["/v1/reports"]["post"].__setitem__(
            "parameters", [{"name": "Idempotency-Key", "in": "header", "required": True}]
        )
    )
    assert contract.breaking_changes(BASE, required) == [
        "POST /v1/reports: header parameter 'Idempotency-Key' newly required"
    ]
    field = changed(lambda d: d["components"]["schemas"]["Submission"]["required"].append("description"))
    assert contract.breaking_changes(BASE, field) == ["POST /v1/reports body: property 'description' newly required"]
    gone = changed(lambda d: d["components"]["schemas"]["View"]["properties"].pop("id"))
    assert contract.breaking_changes(BASE, gone) == ["GET /v1/reports/{report_id} 200: property 'id' removed"]
    fewer = changed(
        lambda d: d["components"]["schemas"]["View"]["properties"]["status"].__setitem__("enum", ["closed"])
    )
    assert contract.breaking_changes(BASE, fewer) == [
        "GET /v1/reports/{report_id} 200.status: enum values removed: ['received']"
    ]
    secured = changed(lambda d: d["paths"]["/v1/reports/{report_id}"]["get"].__setitem__("security", [{"t": []}]))
    assert contract.breaking_changes(BASE, secured) == ["GET /v1/reports/{report_id}: a credential newly needed"]


def test_a_change_must_raise_the_version_and_be_in_the_changelog() -> None:
    added = changed(lambda d: d["paths"].__setitem__("/v1/categories", {"get": {"responses": {"200": {}}}}))
    assert contract.versioning_problems("api", BASE, BASE, "") == []
    assert "did not rise" in contract.versioning_problems("api", BASE, added, "## [1.2.0]")[0]
    added["info"]["version"] = "1.3.0"
    assert contract.versioning_problems("api", BASE, added, "## [1.3.0] - 2026-12-07") == []
    assert "no entry for [1.3.0]" in contract.versioning_problems("api", BASE, added, "## [1.2.0]")[0]
    removed = changed(lambda d: d["paths"].pop("/v1/reports"))
    removed["info"]["version"] = "1.3.0"
    assert "need a new major version" in contract.versioning_problems("api", BASE, removed, "[1.3.0]")[0]
    removed["info"]["version"] = "2.0.0"
    assert contract.versioning_problems("api", BASE, removed, "## [2.0.0]") == []
