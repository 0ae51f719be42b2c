"""What each service publishes, as an app team, an integrator or a browser meets it: a public OpenAPI document
with only the public operations, an internal one behind the service credential, stable operationIds, the API's
version in the document and on every answer, `/docs` and `/redoc` that load nothing from elsewhere, answers that
are never sniffed or cached unless they say so, and cross-origin access only for the origins a deployment names."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import pytest
import yaml

from burgermelding_shared.service_auth import development_key
from dispatch_bridge.config import BridgeSettings
from meldkamer_sim.config import MeldkamerSettings
from report_intake.config import IntakeSettings
from tests.helpers import report_json, report_parts
from verification.config import VerificationSettings

SERVICES = [
    ("report_intake", IntakeSettings, "report-intake"),
    ("verification", VerificationSettings, "verification"),
    ("dispatch_bridge", BridgeSettings, "dispatch-bridge"),
    ("meldkamer_sim", MeldkamerSettings, "meldkamer"),
]
IDS = [service[0] for service in SERVICES]
# A caller each service trusts (the development keys), for its internal document.
CALLER = {"report-intake": "dispatch-bridge", "verification": "report-intake", "dispatch-bridge": "verification"}
CALLER["meldkamer"] = "dispatch-bridge"
SEMVER = re.compile(r"^\d+\.\d+\.\d+$")


async def documents(service: Any, name: str) -> tuple[dict[str, Any], dict[str, Any]]:
    public = await service.client.get("/openapi.json")
    assert public.status_code == 200
    token = development_key(CALLER[name]).issue(name)
    internal = await service.client.get("/internal/openapi.json", headers={"Authorization": f"Bearer {token}"})
    assert internal.status_code == 200, internal.text
    return public.json(), internal.json()


@pytest.mark.parametrize(("package", "settings", "name"), SERVICES, ids=IDS)
async def test_the_public_document_holds_only_public_operations_and_the_internal_one_needs_a_credential(
    start_service: Callable[..., Any], package: str, settings: type, name: str
) -> None:
    service = await start_service(package, settings)
    public, internal = await documents(service, name)
    for path in public["paths"]:
        assert not path.startswith("/internal/") and path not in {"/healthz", "/readyz", "/metrics"}, path
    assert {"/healthz", "/readyz", "/metrics"} <= set(internal["paths"])
    assert all(
        path.startswith(("/internal/", "/v1/requests-for-service")) or path in {"/healthz", "/readyz", "/metrics"}
        for path in internal["paths"]
    ), sorted(internal["paths"])
    # Nothing of the internal operations leaks into the public document through its schemas.
    public_schemas = set(public.get("components", {}).get("schemas", {}))
    only_internal = set(internal.get("components", {}).get("schemas", {})) - public_schemas
    text = str(public)
    assert not any(f"#/components/schemas/{schema}'" in text for schema in only_internal)
    refused = await service.client.get("/internal/openapi.json")
    assert refused.status_code == 401 and refused.json()["error"] == "missing_service_credential"


@pytest.mark.parametrize(("package", "settings", "name"), SERVICES, ids=IDS)
async def test_operation_ids_are_readable_unique_and_the_version_is_semver_on_every_answer(
    start_service: Callable[..., Any], package: str, settings: type, name: str
) -> None:
    service = await start_service(package, settings)
    public, internal = await documents(service, name)
    version = public["info"]["version"]
    assert SEMVER.match(version) and internal["info"]["version"] == version
    ids = [
        operation["operationId"]
        for document in (public, internal)
        for item in document["paths"].values()
        for operation in item.values()
    ]
    assert len(ids) == len(set(ids)), ids
    assert all(re.fullmatch(r"[a-z][a-zA-Z0-9]*", operation_id) for operation_id in ids), ids
    for document in (public, internal):
        assert document["servers"] and document["servers"][0]["url"]
        for item in document["paths"].values():
            for operation in item.values():
                for response in operation["responses"].values():
                    assert "API-Version" in response["headers"], operation["operationId"]
    for path in ("/healthz", "/openapi.json", "/no-such-thing", "/docs"):
        answer = await service.client.get(path)
        assert answer.headers["api-version"] == version, path
        assert answer.headers["x-content-type-options"] == "nosniff", path


@pytest.mark.parametrize(("package", "settings", "name"), SERVICES, ids=IDS)
async def test_docs_and_redoc_load_only_our_own_assets(
    start_service: Callable[..., Any], package: str, settings: type, name: str
) -> None:
    service = await start_service(package, settings)
    for page in ("/docs", "/redoc"):
        html = (await service.client.get(page)).text
        assert "http://" not in html and "https://" not in html.replace("https://github.com", ""), page
        assets = re.findall(r"""(?:src|href)=["']?(/[^"'\s>]+)""", html)
        assets += re.findall(r"""url:\s*['"](/[^'"]+)""", html)
        assert any(asset.endswith(".js") for asset in assets), (page, assets)
        for asset in assets:
            loaded = await service.client.get(asset)
            assert loaded.status_code == 200, (page, asset)
    script = await service.client.get("/docs-assets/swagger/swagger-ui-bundle.js")
    assert "javascript" in script.headers["content-type"] and "no-store" not in script.headers.get("cache-control", "")
    redirect = await service.client.get("/docs/oauth2-redirect")
    assert redirect.status_code == 200


async def test_personal_answers_are_never_stored_and_the_feed_may_be_cached(start_service: Callable[..., Any]) -> None:
    intake = await start_service("report_intake", IntakeSettings)
    created = await intake.client.post(
        "/v1/reports", files=report_parts(report_json()), headers={"Idempotency-Key": "published-documents-1"}
    )
    assert created.status_code == 202, created.text
    assert created.headers["cache-control"] == "no-store"
    report = created.json()
    status = await intake.client.get(
        f"/v1/reports/{report['id']}", headers={"Authorization": f"Bearer {report['access_token']}"}
    )
    assert status.status_code == 200
    assert status.headers["cache-control"] == "no-store" and status.headers["x-content-type-options"] == "nosniff"
    feed = await intake.client.get("/v1/burgernet/actions")
    assert feed.headers["cache-control"].startswith("public, max-age=")
    assert feed.headers["api-version"] == intake.app.version and feed.headers["x-content-type-options"] == "nosniff"


async def test_cross_origin_access_only_for_the_origins_named(start_service: Callable[..., Any]) -> None:
    closed = await start_service("report_intake", IntakeSettings)
    asked = {"Origin": "https://melden.example", "Access-Control-Request-Method": "POST"}
    preflight = await closed.client.options("/v1/reports", headers=asked)
    assert "access-control-allow-origin" not in preflight.headers
    bridge = await start_service("dispatch_bridge", BridgeSettings, cors_origins=["https://melden.example"])
    preflight = await bridge.client.options(
        "/v1/auth/token", headers={**asked, "Access-Control-Request-Headers": "Authorization, Content-Type"}
    )
    assert preflight.status_code == 200
    assert preflight.headers["access-control-allow-origin"] == "https://melden.example"
    assert "authorization" in preflight.headers["access-control-allow-headers"].lower()
    stranger = await bridge.client.options("/v1/auth/token", headers={**asked, "Origin": "https://evil.example"})
    assert stranger.headers.get("access-control-allow-origin") != "https://evil.example"
    answer = await bridge.client.get("/healthz", headers={"Origin": "https://melden.example"})
    assert answer.headers["access-control-allow-origin"] == "https://melden.example"
    assert "API-Version" in answer.headers["access-control-expose-headers"]


@pytest.mark.parametrize(("package", "settings", "name"), SERVICES, ids=IDS)
async def test_the_public_document_is_at_the_apis_base_too_as_json_and_yaml_for_anyone(
    start_service: Callable[..., Any], package: str, settings: type, name: str
) -> None:
    service = await start_service(package, settings)
    public, _ = await documents(service, name)
    for path in ("/openapi.json", "/v1/openapi.json", "/openapi.yaml", "/v1/openapi.yaml"):
        answer = await service.client.get(path, headers={"Origin": "https://catalogue.example.org"})
        assert answer.status_code == 200, path
        assert answer.headers["access-control-allow-origin"] == "*", path
        if path.endswith(".yaml"):
            assert answer.headers["content-type"].startswith("application/yaml")
            assert yaml.safe_load(answer.text) == public, path
        else:
            assert answer.json() == public, path
