"""A service's published documents: what an app team, an integrator, a client generator and a linter read.

Two OpenAPI documents per service, built from the same routes: the public one (`/openapi.json`, with `/docs` and
`/redoc` over it) holds only what callers outside the suite may call; the internal one
(`/internal/openapi.json`) holds the service-to-service routes, the probes and `/metrics`, and is itself behind
the service credential like every other `/internal/` path. Each document carries the API's version (semver, also
sent on every answer as `API-Version`), the servers, the security schemes the routes declare, stable
operationIds (the route function's name in camelCase), and only the schemas its own operations reach.

Swagger UI and ReDoc are served from the packaged assets of `fastapi-standalone-docs` (its static files only),
so the pages work on a police network with no way to a CDN.
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Callable, Iterable
from importlib.resources import files
from typing import Any

import yaml
from fastapi import FastAPI, Request
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html, get_swagger_ui_oauth2_redirect_html
from fastapi.openapi.utils import get_openapi
from fastapi.responses import HTMLResponse, JSONResponse, Response
from fastapi.routing import APIRoute
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel
from starlette.types import ASGIApp, Message, Receive, Scope, Send

PUBLIC_DOCUMENT = "/openapi.json"
# Where else the public document is (ADR /core/publish-openapi: at the API's base, as JSON and as YAML).
PUBLIC_DOCUMENT_ALIASES = ("/v1/openapi.json", "/openapi.yaml", "/v1/openapi.yaml")
INTERNAL_DOCUMENT = "/internal/openapi.json"
DOCS_ASSETS = "/docs-assets"
# Paths for operators and our own services only, whatever their prefix: the probes and the metrics.
OPERATOR_PATHS = frozenset({"/healthz", "/readyz", "/metrics"})
SEMVER = re.compile(r"^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)$")
API_VERSION_HEADER = "API-Version"


def operation_id(route: APIRoute) -> str:
    """A stable, readable operationId: the route function's name in camelCase (`create_report` ->
    `createReport`), which client generators turn back into a method name. Function names are unique within a
    service; `documents` checks it."""
    head, *rest = route.name.split("_")
    return head + "".join(part[:1].upper() + part[1:] for part in rest)


def embedded_schema(model: type[BaseModel]) -> dict[str, Any]:
    """A model's JSON Schema to embed in a document (a multipart part's `contentSchema`): its `$defs` put in
    place, since a `#/$defs/...` reference inside a document would be read from the document's root."""
    schema = model.model_json_schema()
    definitions = schema.pop("$defs", {})

    def inline(node: Any) -> Any:
        if isinstance(node, dict):
            ref = node.get("$ref", "")
            if ref.startswith("#/$defs/"):
                return inline({**definitions[ref.rsplit("/", 1)[1]], **{k: v for k, v in node.items() if k != "$ref"}})
            return {key: inline(value) for key, value in node.items()}
        if isinstance(node, list):
            return [inline(item) for item in node]
        return node

    return inline(schema)


def is_internal(path: str, internal_prefixes: Iterable[str]) -> bool:
    return path in OPERATOR_PATHS or any(path.startswith(prefix) for prefix in internal_prefixes)


def referenced_schemas(document: dict[str, Any]) -> set[str]:
    """The component schemas a document's paths (and what they reference, and so on) use."""
    schemas = document.get("components", {}).get("schemas", {})
    found: set[str] = set()
    pending: list[Any] = [document.get("paths", {}), document.get("components", {}).get("responses", {})]
    while pending:
        node = pending.pop()
        if isinstance(node, dict):
            ref = node.get("$ref")
            if isinstance(ref, str) and ref.startswith("#/components/schemas/"):
                name = ref.rsplit("/", 1)[1]
                if name not in found and name in schemas:
                    found.add(name)
                    pending.append(schemas[name])
            pending.extend(node.values())
        elif isinstance(node, list):
            pending.extend(node)
    return found


def only_paths(document: dict[str, Any], keep: Callable[[str], bool]) -> dict[str, Any]:
    """A copy of `document` with the paths `keep` accepts and only the schemas and tags they use."""
    part = copy.deepcopy(document)
    part["paths"] = {path: item for path, item in part.get("paths", {}).items() if keep(path)}
    components = part.setdefault("components", {})
    if "schemas" in components:
        used = referenced_schemas(part)
        components["schemas"] = {name: schema for name, schema in components["schemas"].items() if name in used}
    tags_used = {tag for item in part["paths"].values() for operation in item.values() for tag in operation["tags"]}
    if "tags" in part:
        part["tags"] = [tag for tag in part["tags"] if tag["name"] in tags_used]
    return part


def check_operation_ids(document: dict[str, Any]) -> None:
    seen: dict[str, str] = {}
    for path, item in document.get("paths", {}).items():
        for method, operation in item.items():
            name = operation.get("operationId", "")
            if name in seen:
                raise RuntimeError(f"operationId {name!r} of {method.upper()} {path} is also {seen[name]}'s")
            seen[name] = f"{method.upper()} {path}"


# A header the service requires but checks itself (to answer its own problem, not FastAPI's 422) is declared
# optional in the route with this mark; the documents then say it is required.
REQUIRED_HEADER = {"x-burgermelding-required": True}


def settle_requirements(document: dict[str, Any], optional_schemes: frozenset[str]) -> None:
    """What a caller must send, as the service really checks it. FastAPI lists every security dependency of an
    operation as an alternative (any one of them would do); here each operation needs all of its schemes except
    the `optional_schemes`, which it takes when sent (the installation credential: with it, limits count the
    installation instead of the shared address). Headers marked REQUIRED_HEADER become required."""
    for item in document.get("paths", {}).values():
        for operation in item.values():
            for parameter in operation.get("parameters", []):
                schema = parameter.get("schema", {})
                if schema.pop(next(iter(REQUIRED_HEADER)), False):
                    parameter["required"] = True
                    branches = [b for b in schema.pop("anyOf", []) if b.get("type") != "null"]
                    if len(branches) == 1:
                        schema.update(branches[0])
            names = [name for requirement in operation.get("security", []) for name in requirement]
            if not names:
                continue
            required: dict[str, list[str]] = {name: [] for name in names if name not in optional_schemes}
            optional: dict[str, list[str]] = {name: [] for name in names if name in optional_schemes}
            operation["security"] = [{**required, **optional}, required] if optional else [required]


def with_version_header(document: dict[str, Any]) -> None:
    """Every answer carries `API-Version` (the Dutch API Design Rules, /core/version-header): say so on each."""
    headers = document.setdefault("components", {}).setdefault("headers", {})
    headers[API_VERSION_HEADER] = {
        "description": "The full version of this API (semver); the major version is also in the path.",
        "schema": {"type": "string", "example": document["info"]["version"]},
    }
    for item in document.get("paths", {}).values():
        for operation in item.values():
            for response in operation.get("responses", {}).values():
                response.setdefault("headers", {})[API_VERSION_HEADER] = {
                    "$ref": f"#/components/headers/{API_VERSION_HEADER}"
                }


# Media types whose answers are files (a photo, an evidence archive): the bytes as they are, never JSON or text.
BINARY_MEDIA = ("image/", "application/zip", "application/octet-stream")


def typed_binary_responses(document: dict[str, Any]) -> None:
    """A route that answers a file declares its media type with no schema (`{"image/jpeg": {}}`), which FastAPI
    publishes as it is. Client generators read a media type without a schema as an untyped answer: the
    TypeScript client (@hey-api/openapi-ts) typed the dispatcher's photo `unknown`, and openapi-python-client
    has no type to give it. Said as a binary string (`format: binary`, which both read as a file: `Blob | File`,
    `File`), the answer is the file it is; found by tests/e2e/test_generated_clients.py. Only a media object
    without a schema gets one: a route that describes its own answer keeps its description."""
    for item in document.get("paths", {}).values():
        for operation in item.values():
            for response in operation.get("responses", {}).values():
                for media, content in response.get("content", {}).items():
                    if media.startswith(BINARY_MEDIA) and "schema" not in content:
                        content["schema"] = {"type": "string", "format": "binary"}


class ApiHeaders:
    """Headers on every answer of the API: its version; `nosniff` (a browser never guesses a type, so an upload
    can never be run as a page); and `no-store` unless the route said itself how its answer may be cached, so
    that nothing personal (a report, a timeline, a photo) stays in a shared cache or on a shared computer. Files
    under `static_prefixes` (scripts and styles) keep their validators and may be cached."""

    def __init__(self, app: ASGIApp, version: str, static_prefixes: tuple[str, ...] = ()) -> None:
        self.app = app
        self.version = version.encode()
        self.static_prefixes = static_prefixes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        static = scope["path"].startswith(self.static_prefixes)

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                names = {name.lower() for name, _ in headers}
                headers.append((b"api-version", self.version))
                if b"x-content-type-options" not in names:
                    headers.append((b"x-content-type-options", b"nosniff"))
                if b"cache-control" not in names and not static:
                    headers.append((b"cache-control", b"no-store"))
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, with_headers)


def publish(
    app: FastAPI,
    *,
    version: str,
    servers: list[dict[str, str]],
    internal_prefixes: tuple[str, ...],
    finish: Callable[[dict[str, Any]], None] | None = None,
    static_prefixes: tuple[str, ...] = (),
    optional_schemes: frozenset[str] = frozenset(),
) -> None:
    """Serve the public and the internal document and the offline documentation pages of `app` (made with
    `docs_url=None, redoc_url=None, openapi_url=None`). `finish` completes the whole document before it is split
    (the service's own additions: the problem schema, documented errors). `static_prefixes`: where the service
    serves static files of its own (see ApiHeaders); `optional_schemes`: security schemes an operation takes
    when sent but does not need (see settle_requirements)."""
    if not SEMVER.match(version):
        raise ValueError(f"the API version must be semver (MAJOR.MINOR.PATCH): {version!r}")
    if not is_internal(INTERNAL_DOCUMENT, internal_prefixes):
        raise ValueError(f"{INTERNAL_DOCUMENT} must be under a prefix that needs a service credential")
    app.version = version
    built: dict[str, dict[str, Any]] = {}

    def documents() -> dict[str, dict[str, Any]]:
        if not built:
            whole = get_openapi(
                title=app.title,
                version=version,
                description=app.description,
                routes=app.routes,
                tags=app.openapi_tags,
                servers=servers,
            )
            if finish:
                finish(whole)
            settle_requirements(whole, optional_schemes)
            typed_binary_responses(whole)
            check_operation_ids(whole)
            with_version_header(whole)
            built["public"] = only_paths(whole, lambda path: not is_internal(path, internal_prefixes))
            internal = only_paths(whole, lambda path: is_internal(path, internal_prefixes))
            internal["info"]["title"] += " (internal)"
            built["internal"] = internal
        return built

    app.openapi = lambda: documents()["public"]  # type: ignore[method-assign]
    app.state.internal_openapi = lambda: documents()["internal"]

    # Anyone may read the public document from a browser on any site (a generator, an API catalogue): it holds
    # nothing that is not public, and the request carries no credentials (ADR /core/publish-openapi).
    anyone = {"Access-Control-Allow-Origin": "*"}

    @app.get(PUBLIC_DOCUMENT, include_in_schema=False)
    async def public_document() -> JSONResponse:
        return JSONResponse(documents()["public"], headers=anyone)

    async def public_document_elsewhere(request: Request) -> Response:
        if request.url.path.endswith(".yaml"):
            text = yaml.safe_dump(documents()["public"], sort_keys=False, allow_unicode=True)
            return Response(text, media_type="application/yaml", headers=anyone)
        return JSONResponse(documents()["public"], headers=anyone)

    for path in PUBLIC_DOCUMENT_ALIASES:
        app.add_api_route(path, public_document_elsewhere, methods=["GET"], include_in_schema=False)

    @app.get(INTERNAL_DOCUMENT, include_in_schema=False)
    async def internal_document() -> JSONResponse:
        return JSONResponse(documents()["internal"])

    assets = files("fastapi_standalone_docs") / "static"
    app.mount(DOCS_ASSETS + "/swagger", StaticFiles(directory=str(assets / "swagger")), name="swagger-assets")
    app.mount(DOCS_ASSETS + "/redoc", StaticFiles(directory=str(assets / "redoc")), name="redoc-assets")
    favicon = f"{DOCS_ASSETS}/fastapi/favicon.png"
    app.mount(DOCS_ASSETS + "/fastapi", StaticFiles(directory=str(assets / "fastapi")), name="fastapi-assets")

    @app.get("/docs", include_in_schema=False)
    async def swagger_ui() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url=PUBLIC_DOCUMENT,
            title=f"{app.title} {version}",
            swagger_js_url=f"{DOCS_ASSETS}/swagger/swagger-ui-bundle.js",
            swagger_css_url=f"{DOCS_ASSETS}/swagger/swagger-ui.css",
            swagger_favicon_url=favicon,
            oauth2_redirect_url="/docs/oauth2-redirect",
        )

    @app.get("/docs/oauth2-redirect", include_in_schema=False)
    async def swagger_ui_redirect() -> HTMLResponse:
        return get_swagger_ui_oauth2_redirect_html()

    @app.get("/redoc", include_in_schema=False)
    async def redoc() -> HTMLResponse:
        return get_redoc_html(
            openapi_url=PUBLIC_DOCUMENT,
            title=f"{app.title} {version}",
            redoc_js_url=f"{DOCS_ASSETS}/redoc/redoc.standalone.js",
            redoc_favicon_url=favicon,
            with_google_fonts=False,
        )

    app.add_middleware(ApiHeaders, version=version, static_prefixes=(DOCS_ASSETS + "/", *static_prefixes))


def dump(document: dict[str, Any]) -> str:
    """A document as committed in a snapshot: stable key order, one trailing newline."""
    return json.dumps(document, indent=2, sort_keys=True, ensure_ascii=False) + "\n"
