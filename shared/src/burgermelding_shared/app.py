"""The app factory every service uses: logging, trace context, errors, health, and the process's resources.

Resources (database engine, one httpx client, blob store, outbox relay) are created in the lifespan and closed
on shutdown; routes reach them through `Runtime`.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import AbstractAsyncContextManager, AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from typing import Annotated, Any

import httpx
from fastapi import Depends, FastAPI, Request
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import JSONResponse, Response
from fastapi.security import HTTPBearer
from prometheus_client import CONTENT_TYPE_LATEST
from starlette.types import ASGIApp

from burgermelding_shared.auditchain import AuditTables, CheckpointWriter
from burgermelding_shared.background import BackgroundLoop
from burgermelding_shared.blobstore import BlobStore, BlobStoreUnavailable
from burgermelding_shared.bodylimit import BodyPaceMiddleware, BodySizeLimitMiddleware
from burgermelding_shared.db import Database
from burgermelding_shared.error_catalogue import ERROR_CODES
from burgermelding_shared.errors import (
    ProblemDetails,
    ServiceError,
    error_response,
    error_responses,
    install_error_handlers,
    storage_unavailable,
)
from burgermelding_shared.logging import AccessLogMiddleware, configure_logging
from burgermelding_shared.messaging import Destination, MessagingTables, Relay, RelayConfig, ResultHandler
from burgermelding_shared.metrics import Metrics, Scraper
from burgermelding_shared.openapi import operation_id, publish
from burgermelding_shared.service_auth import (
    VERIFIED_ISSUER,
    InternalCredentialMiddleware,
    ServiceDestination,
    bearer_of,
    check_issuer,
)
from burgermelding_shared.settings import ServiceSettings
from burgermelding_shared.sharedstate import SharedState
from burgermelding_shared.tracing import app_telemetry, configure_tracing, instrument_client, shutdown_tracing

# What a browser client may send and read across origins (`cors_origins`): the credentials and headers our
# operations take, and the answers' headers a client acts on.
CORS_REQUEST_HEADERS = [
    "Authorization",
    "Installation-Credential",
    "Idempotency-Key",
    "Content-Type",
    "Accept-Language",
    "Last-Event-ID",
    "If-None-Match",
    "traceparent",
]
CORS_RESPONSE_HEADERS = ["API-Version", "Retry-After", "Location", "ETag", "Content-Language"]


@dataclass
class Runtime:
    """What one service process holds for its lifetime."""

    settings: Any
    db: Database
    blobs: BlobStore
    http: httpx.AsyncClient
    messaging: MessagingTables
    relay: Relay
    metrics: Metrics
    shared: SharedState
    audit: AuditTables | None = None  # the service's tamper-evident audit chain, if it keeps one
    extras: dict[str, Any] = field(default_factory=dict)


def get_runtime(request: Request) -> Runtime:
    return request.app.state.runtime


RuntimeDep = Annotated[Runtime, Depends(get_runtime)]

Hook = Callable[[Runtime], AbstractAsyncContextManager[None]]


def background_loop(factory: Callable[[Runtime], BackgroundLoop], extras_key: str | None = None) -> Hook:
    """A lifespan hook that runs a background loop for as long as the app runs (optionally kept in extras)."""

    @asynccontextmanager
    async def hook(runtime: Runtime) -> AsyncIterator[None]:
        loop = factory(runtime)
        if extras_key:
            runtime.extras[extras_key] = loop
        loop.start()
        try:
            yield
        finally:
            await loop.stop()

    return hook


def service_destinations(settings: ServiceSettings, urls: Mapping[str, str]) -> dict[str, Destination]:
    """Outbox destinations for our own services, each authenticated with a service token."""
    return {
        name: ServiceDestination(base_url=url, key=settings.signing_key, audience=name) for name, url in urls.items()
    }


def create_service_app(
    *,
    settings: ServiceSettings,
    title: str,
    description: str,
    messaging: MessagingTables,
    destinations: dict[str, Destination],
    result_handlers: dict[str, ResultHandler] | None = None,
    attempt_handlers: dict[str, ResultHandler] | None = None,
    hooks: list[Hook] | None = None,
    openapi_tags: list[dict[str, Any]] | None = None,
    large_body_paths: list[str] | None = None,
    service_only_prefixes: tuple[str, ...] = ("/internal/",),
    metrics_scrapers: list[Scraper] | None = None,
    audit: AuditTables | None = None,
    api_version: str = "1.0.0",
    servers: list[dict[str, str]] | None = None,
    fast_paths: list[Callable[[ASGIApp], ASGIApp]] | None = None,
    static_prefixes: tuple[str, ...] = (),
    optional_schemes: frozenset[str] = frozenset(),
) -> FastAPI:
    """A FastAPI app with the suite's plumbing. `hooks` run inside the lifespan (workers, pools).
    `large_body_paths` (regular expressions) are exempt from the body cap: routes that stream uploads to disk
    under limits of their own. Paths under `service_only_prefixes` answer nothing without a service credential.
    `metrics_scrapers` add the service's own gauges, read at each scrape of `/metrics`. `audit`: the service's
    audit chain, whose head is signed every `audit_checkpoint_seconds`. `api_version`: the full version (semver)
    of the service's API, in its documents and on every answer (see CHANGELOG.md); `servers`: where its public
    document says it is reached (default: the host it is read from). `fast_paths`: middleware that answers some
    requests before the rest of the stack (no access log, no routing), inside only the API's own headers.
    `static_prefixes`: where the service serves static files (cacheable; everything else is `no-store`)."""
    metrics = Metrics()
    metrics.scrapers.extend(metrics_scrapers or [])

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        configure_logging(settings.service_name, settings.log_level)
        configure_tracing(settings.service_name, settings.otlp_endpoint)
        db = Database(settings.effective_database_url, busy_timeout_ms=settings.sqlite_busy_timeout_ms)
        http = httpx.AsyncClient(timeout=httpx.Timeout(10.0, connect=3.0))
        instrument_client(http)
        fallbacks = metrics.counter(
            "bm_shared_state_fallbacks",
            "Uses of this replica's own memory for state that "
            "Redis should hold but did not answer for, by what (rate_limits, "
            "address_salt, circuits, counters)",
            ["what"],
        )
        for what in ("rate_limits", "address_salt", "circuits", "counters"):
            fallbacks.labels(what)  # present at 0, so that an alert on it has a series from the start
        shared = SharedState(
            settings.redis_url,
            f"{settings.redis_key_prefix}:{settings.service_name}",
            on_fallback=lambda what: fallbacks.labels(what).inc(),
            timeout_seconds=settings.redis_timeout_seconds,
        )
        relay = Relay(
            db,
            messaging,
            http,
            destinations,
            RelayConfig(
                poll_seconds=settings.relay_poll_seconds,
                backoff_base=settings.relay_backoff_base_seconds,
                backoff_cap=settings.relay_backoff_cap_seconds,
                max_attempts=settings.relay_max_attempts,
                lease_seconds=settings.relay_lease_seconds,
                request_timeout=settings.relay_request_timeout_seconds,
            ),
            result_handlers,
            attempt_handlers,
            shared,
        )
        runtime = Runtime(
            settings=settings,
            db=db,
            blobs=settings.blob_config().open(),
            http=http,
            messaging=messaging,
            relay=relay,
            metrics=metrics,
            shared=shared,
            audit=audit,
        )
        app.state.runtime = runtime
        async with AsyncExitStack() as stack:
            stack.push_async_callback(db.dispose)
            stack.push_async_callback(http.aclose)
            stack.push_async_callback(shared.aclose)
            stack.callback(shutdown_tracing)
            relay.start()
            stack.push_async_callback(relay.stop)
            if audit is not None:
                checkpoints = CheckpointWriter(db, audit, settings.signing_key, settings.audit_checkpoint_seconds)
                checkpoints.start()
                stack.push_async_callback(checkpoints.stop)
            for hook in hooks or []:
                await stack.enter_async_context(hook(runtime))
            yield

    app = FastAPI(
        title=title,
        description=description,
        version=api_version,
        lifespan=lifespan,
        openapi_tags=openapi_tags,
        telemetry=app_telemetry(),
        generate_unique_id_function=operation_id,
        openapi_url=None,  # served by `publish`: the public and the internal document, and the pages over them
        docs_url=None,
        redoc_url=None,
    )
    app.add_middleware(
        InternalCredentialMiddleware,
        trusted=settings.trusted_keys,
        audience=settings.service_name,
        prefixes=service_only_prefixes,
    )
    app.add_middleware(BodySizeLimitMiddleware, max_bytes=settings.max_body_bytes, exempt=large_body_paths or [])
    app.add_middleware(
        BodyPaceMiddleware,
        idle_seconds=settings.body_idle_seconds,
        min_bytes_per_second=settings.body_min_bytes_per_second,
        grace_seconds=settings.body_grace_seconds,
    )
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_methods=["GET", "POST", "PUT", "DELETE"],
            allow_headers=CORS_REQUEST_HEADERS,
            expose_headers=CORS_RESPONSE_HEADERS,
            max_age=600,
        )
    app.add_middleware(AccessLogMiddleware, metrics=metrics)
    for fast_path in fast_paths or []:
        app.add_middleware(fast_path)
    app.state.metrics = metrics
    install_error_handlers(app)
    publish(
        app,
        version=api_version,
        servers=servers or [{"url": "/"}],
        internal_prefixes=service_only_prefixes,
        finish=lambda document: document_errors_as_sent(document, settings.service_name),
        static_prefixes=static_prefixes,
        optional_schemes=optional_schemes,
    )

    @app.get("/healthz", tags=["health"], summary="Liveness: the process answers")
    async def healthz() -> dict[str, str]:
        return {"status": "alive"}

    @app.get(
        "/readyz",
        tags=["health"],
        summary="Readiness: the database and the photo store are reachable",
        responses=error_responses(503),
    )
    async def readyz(runtime: RuntimeDep) -> JSONResponse:
        try:
            await runtime.db.ping()
        except Exception as exc:
            raise ServiceError(
                503, "database_unreachable", "the database does not answer", detail_nl="de database antwoordt niet"
            ) from exc
        try:
            await asyncio.to_thread(runtime.blobs.ping)
        except BlobStoreUnavailable as exc:
            raise storage_unavailable() from exc
        # Redis is not a condition of readiness: without it each replica limits and trips circuits on its own.
        if not runtime.shared.shared:
            shared_state = "memory"
        else:
            shared_state = "redis" if await runtime.shared.ping() else "memory (redis unavailable)"
        return JSONResponse({"status": "ready", "shared_state": shared_state})

    @app.get(
        "/metrics",
        tags=["health"],
        summary="Prometheus metrics (text format); keep it off the public address (the reverse proxy does not pass it)",
        response_class=Response,
        responses={200: {"content": {CONTENT_TYPE_LATEST: {}}}},
    )
    async def metrics_page(runtime: RuntimeDep) -> Response:
        return Response(await runtime.metrics.scrape(runtime), media_type=CONTENT_TYPE_LATEST)

    return app


def document_errors_as_sent(schema: dict[str, Any], service_name: str) -> None:
    """Errors are sent as problem details (`ProblemDetails`, `application/problem+json`): put the schema in the
    document, with the service's error codes (the catalogue, read from the code) as the enum of `error`, and
    replace FastAPI's own 422 entry (its body is not what we send) with ours."""
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    problem = ProblemDetails.model_json_schema()
    if service_name in ERROR_CODES:
        problem["properties"]["error"]["enum"] = list(ERROR_CODES[service_name])
        problem["properties"]["error"]["description"] += " The codes are listed, with their texts, in docs/errors.md."
    components["ProblemDetails"] = problem
    schema["components"].setdefault("headers", {})["Retry-After"] = {
        "description": "Seconds to wait before trying again (the same request, with the same Idempotency-Key).",
        "schema": {"type": "integer", "minimum": 0},
    }
    for path, operations in schema.get("paths", {}).items():
        for operation in operations.values():
            responses = operation.setdefault("responses", {})
            if path != "/healthz":
                # Any operation that reaches the database or the photo store may find it busy or away: 503 with
                # Retry-After (busy, database_unreachable, storage_unavailable), never a 500.
                responses.setdefault("503", error_response(503))
            response = responses.get("422")
            if response and "HTTPValidationError" in repr(response.get("content", {})):  # FastAPI's, not a route's
                response.update(error_response(422))
            if "requestBody" in operation:
                # Whatever an operation takes, its body can be unreadable (400 malformed_body: not UTF-8, not
                # JSON), too slow (408) or too large (413): answered before the route runs.
                for code in (400, 408, 413):
                    responses.setdefault(str(code), error_response(code))
            for status in ("429", "503"):  # both always say when to come back
                if status in responses:
                    responses[status].setdefault("headers", {})["Retry-After"] = {
                        "$ref": "#/components/headers/Retry-After"
                    }
    components.pop("HTTPValidationError", None)
    components.pop("ValidationError", None)


def _service_caller(request: Request, runtime: Runtime, allowed: frozenset[str]) -> str:
    verified = request.scope.get("state", {}).get(VERIFIED_ISSUER)
    if verified is not None:  # InternalCredentialMiddleware checked the token already
        return check_issuer(verified, allowed)
    token = bearer_of(request.headers.get("authorization", ""))
    return runtime.settings.trusted_keys.verify(token, runtime.settings.service_name, allowed)


# How the documents name the service credential (the dependencies below check it themselves).
SERVICE_CREDENTIAL = HTTPBearer(
    auto_error=False,
    scheme_name="serviceCredential",
    bearerFormat="JWT",
    description="A short-lived EdDSA JWT signed with the calling service's own key, for this service "
    "(`aud`), naming the caller (`iss`) and the key (`kid`).",
)
ServiceCredentialDeclared = Annotated[Any, Depends(SERVICE_CREDENTIAL)]


def require_service(*issuers: str) -> Any:
    """Dependency for internal endpoints: a valid service credential from one of `issuers`, for this service."""
    allowed = frozenset(issuers)

    async def dependency(request: Request, runtime: RuntimeDep, _declared: ServiceCredentialDeclared) -> str:
        return _service_caller(request, runtime, allowed)

    return Depends(dependency)


@dataclass(frozen=True)
class InternalMessage:
    """Who sent a message between our services, and its id (the sender's Idempotency-Key)."""

    source: str
    message_id: str


def internal_message(*issuers: str) -> Any:
    """Dependency for internal endpoints that take a message: the credential is checked first, so nothing about
    the request is answered to a caller without one; then the message id is read."""
    allowed = frozenset(issuers)

    async def dependency(
        request: Request, runtime: RuntimeDep, _declared: ServiceCredentialDeclared
    ) -> InternalMessage:
        source = _service_caller(request, runtime, allowed)
        return InternalMessage(source, message_id_header(request))

    return Depends(dependency)


def message_id_header(request: Request) -> str:
    """The sender's message id (its Idempotency-Key), required on every internal message."""
    key = request.headers.get("idempotency-key", "").strip()
    if not key or len(key) > 64:
        raise ServiceError(
            400,
            "missing_idempotency_key",
            "internal messages carry an Idempotency-Key of at most 64 characters",
            detail_nl="interne berichten hebben een Idempotency-Key van hoogstens 64 tekens",
        )
    return key
