"""The dispatchers' API document: every answer has a schema a client can be generated from."""

from __future__ import annotations

from typing import Any


def named(schema: dict[str, Any]) -> bool:
    """A reference to a named schema, or an array of them (not `{}`, not a free-form object)."""
    if schema.get("type") == "array":
        return set(schema.get("items", {})) == {"$ref"}
    return set(schema) == {"$ref"}


async def test_every_dispatcher_answer_has_a_schema(bridge: Any) -> None:
    document = (await bridge.client.get("/openapi.json")).json()
    checked, unnamed = [], []
    for path, item in document["paths"].items():
        if not path.startswith(("/v1/dispatch/", "/v1/auth/")):
            continue
        for method, operation in item.items():
            success = {status: r for status, r in operation["responses"].items() if status.startswith("2")}
            assert success, f"{method.upper()} {path} documents no success response"
            for status, response in success.items():
                content = response.get("content", {})
                if status == "204" or "application/json" not in content:
                    continue  # a photo, a file, no body
                checked.append(f"{method.upper()} {path}")
                if not named(content["application/json"].get("schema", {})):
                    unnamed.append(f"{method.upper()} {path} {status}")
    assert not unnamed, f"answers without a named schema: {unnamed}"
    assert len(checked) >= 25  # the operations are there (photos and the evidence export are not JSON)
