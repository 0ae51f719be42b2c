"""One error type and one renderer: every error leaves a service as RFC 9457 problem details
(`application/problem+json`: `type`, `title`, `status`, `detail`), with our machine-readable `error` code and the
Dutch text (`detail_nl`) as extension members, as the Dutch government's API design rules ask."""

from __future__ import annotations

import logging
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, Field
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.exc import TimeoutError as SQLAlchemyTimeoutError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import ClientDisconnect

from burgermelding_shared.blobstore import BlobStoreUnavailable

log = logging.getLogger(__name__)

PROBLEM_MEDIA_TYPE = "application/problem+json"
# A problem type is named by its error code under our own namespace. A tag URI (RFC 4151), as RFC 9457 suggests
# for types that are identifiers and not pages: nobody has to keep a web page up for a client to tell them apart.
PROBLEM_TYPE_PREFIX = "tag:burgermelding.politie.nl,2026:problem:"


class ServiceError(Exception):
    """An error with its HTTP status, a stable machine-readable code and a human message in English and Dutch
    (the renderer gives the one the client prefers as `detail`, and the Dutch one always as `detail_nl`)."""

    def __init__(
        self,
        status_code: int,
        error: str,
        detail: str,
        *,
        detail_nl: str,
        headers: dict[str, str] | None = None,
        extra: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(detail)
        self.status_code = status_code
        self.error = error
        self.detail = detail
        self.detail_nl = detail_nl
        self.headers = headers
        self.extra = extra or {}

    def problem(self, dutch: bool = False) -> dict[str, Any]:
        """The problem details body (RFC 9457) of this error."""
        return {
            "type": PROBLEM_TYPE_PREFIX + self.error,
            "title": problem_title(self.status_code),
            "status": self.status_code,
            "detail": self.detail_nl if dutch else self.detail,
            "error": self.error,
            "detail_nl": self.detail_nl,
            **self.extra,
        }


def problem_title(status: int) -> str:
    """RFC 9457's `title`: the same for every occurrence of a type (a type always has one status)."""
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"


class ProblemDetails(BaseModel):
    """The body of every error response: RFC 9457 problem details with our extension members."""

    type: str = Field(
        description="The problem type: a URI naming the error code.",
        examples=[PROBLEM_TYPE_PREFIX + "unknown_category"],
    )
    title: str = Field(description="Short summary of the problem type (the HTTP status phrase).")
    status: int = Field(description="The HTTP status code.")
    detail: str = Field(
        description="What went wrong this time, in English or, when `Accept-Language` prefers it, in Dutch."
    )
    error: str = Field(description="Machine-readable error code (the last part of `type`).")
    detail_nl: str = Field(description="What went wrong, in Dutch.")


# What each status means across the suite, with typical errors, for the OpenAPI document.
ERROR_EXAMPLES: dict[int, tuple[str, list[ServiceError]]] = {
    400: (
        "The request is malformed",
        [
            ServiceError(
                400,
                "idempotency_key_missing",
                "the Idempotency-Key header is required",
                detail_nl="de header Idempotency-Key is verplicht",
            ),
            ServiceError(
                400,
                "malformed_json",
                "the 'report' part is not valid JSON: Expecting value",
                detail_nl="het deel 'report' is geen geldige JSON: Expecting value",
            ),
        ],
    ),
    401: (
        "No valid credential",
        [
            ServiceError(
                401,
                "missing_service_credential",
                "internal endpoint: a service credential is required",
                detail_nl="intern adres: een dienstcredential is verplicht",
            )
        ],
    ),
    403: (
        "The credential does not allow this",
        [
            ServiceError(
                403, "forbidden", "this needs the role supervisor", detail_nl="hiervoor is de rol supervisor nodig"
            )
        ],
    ),
    404: (
        "Not found (for a citizen also: a wrong token)",
        [
            ServiceError(
                404,
                "report_not_found",
                "no report with this id for this access token",
                detail_nl="geen melding met dit nummer bij deze toegangscode",
            )
        ],
    ),
    409: (
        "In conflict with the current state",
        [
            ServiceError(
                409,
                "request_in_progress",
                "a request with this Idempotency-Key is still being processed",
                detail_nl="een verzoek met deze Idempotency-Key wordt nog verwerkt",
            )
        ],
    ),
    408: (
        "The request arrived too slowly; send it again",
        [
            ServiceError(
                408,
                "request_timeout",
                "the request body arrived too slowly (nothing for 15 s); send it again",
                detail_nl="Het verzoek kwam te langzaam binnen; stuur het opnieuw",
            )
        ],
    ),
    413: (
        "Too large",
        [
            ServiceError(
                413,
                "upload_too_large",
                "a photo is larger than the limit of 20 MB",
                detail_nl="een foto is groter dan de grens van 20 MB",
            )
        ],
    ),
    415: (
        "Unsupported content",
        [
            ServiceError(
                415,
                "photo_type_not_accepted",
                "photo 1 is not a JPEG, PNG, WebP or HEIC image",
                detail_nl="foto 1 is geen JPEG-, PNG-, WebP- of HEIC-afbeelding",
            )
        ],
    ),
    422: (
        "The request is not valid",
        [
            ServiceError(
                422,
                "unknown_category",
                "unknown category 'ufo'; see GET /v1/categories",
                detail_nl="onbekende categorie 'ufo'; zie GET /v1/categories",
            ),
            ServiceError(
                422,
                "idempotency_key_reused",
                "this Idempotency-Key was used for a different request",
                detail_nl="deze Idempotency-Key is al gebruikt voor een ander verzoek",
            ),
        ],
    ),
    429: (
        "Too many requests; see Retry-After",
        [
            ServiceError(
                429,
                "rate_limited",
                "too many requests; try again in 42 s",
                detail_nl="te veel verzoeken; probeer het over 42 s opnieuw",
            )
        ],
    ),
    503: (
        "Not available; see Retry-After",
        [
            ServiceError(
                503,
                "busy",
                "the service is busy; nothing was stored, try again in 2 s",
                detail_nl="de dienst is even te druk; er is niets opgeslagen, probeer het over 2 s opnieuw",
            ),
            ServiceError(
                503, "database_unreachable", "the database does not answer", detail_nl="de database antwoordt niet"
            ),
        ],
    ),
}
PROBLEM_SCHEMA_REF = {"$ref": "#/components/schemas/ProblemDetails"}


def error_response(code: int, examples: list[ServiceError] | None = None) -> dict[str, Any]:
    """One OpenAPI response entry: problem details, with examples of them (the route's own, if it names them,
    else the suite's typical ones for the status). The schema is added to the document by the app factory."""
    description, typical = ERROR_EXAMPLES.get(code, ("Error", []))
    return {
        "description": description,
        "content": {
            PROBLEM_MEDIA_TYPE: {
                "schema": PROBLEM_SCHEMA_REF,
                "examples": {
                    error.error: {"summary": error.error, "value": error.problem()} for error in examples or typical
                },
            }
        },
    }


def error_responses(
    *codes: int, examples: dict[int, list[ServiceError]] | None = None
) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses=` entries for the given status codes, all problem details; `examples` names the errors
    a route really gives, by status."""
    return {code: error_response(code, (examples or {}).get(code)) for code in codes}


def prefers_dutch(request: Request) -> bool:
    """True when `Accept-Language` ranks Dutch above English (absent header: English)."""
    header = request.headers.get("accept-language", "")
    best_lang, best_q = "", -1.0
    for part in header.split(","):
        bits = part.strip().split(";")
        lang = bits[0].strip().lower()
        q = 1.0
        for bit in bits[1:]:
            key, _, value = bit.strip().partition("=")
            if key == "q":
                try:
                    q = float(value)
                except ValueError:
                    q = 0.0
        if lang and q > best_q:
            best_lang, best_q = lang, q
    return best_lang.startswith("nl")


BUSY_RETRY_AFTER_SECONDS = 2


def busy() -> ServiceError:
    return ServiceError(
        503,
        "busy",
        f"the service is busy; nothing was stored, try again in {BUSY_RETRY_AFTER_SECONDS} s",
        detail_nl="De dienst is even te druk; er is niets "
        f"opgeslagen, probeer het over {BUSY_RETRY_AFTER_SECONDS} s opnieuw",
        headers={"Retry-After": str(BUSY_RETRY_AFTER_SECONDS)},
    )


def storage_unavailable() -> ServiceError:
    # Unreachable, refusing us, or a full disk: the same for the citizen, whose request was in order.
    return ServiceError(
        503,
        "storage_unavailable",
        f"the photo store cannot take photos just now; nothing was stored, try again in {BUSY_RETRY_AFTER_SECONDS} s",
        detail_nl="de foto-opslag kan nu geen "
        f"foto's opslaan; er is niets opgeslagen, probeer het over {BUSY_RETRY_AFTER_SECONDS} s "
        "opnieuw",
        headers={"Retry-After": str(BUSY_RETRY_AFTER_SECONDS)},
    )


ERROR_EXAMPLES[503][1].append(storage_unavailable())  # the typical 503s: busy, database away, photo store away


def render_error(request: Request, exc: ServiceError) -> JSONResponse:
    """Problem details, with `detail` in Dutch when the client prefers it."""
    metrics = getattr(request.app.state, "metrics", None)
    if metrics is not None:  # every refusal counted by its reason, in one place
        route = getattr(request.scope.get("route"), "path", None) or "unmatched"
        metrics.problems.labels(route, request.method, str(exc.status_code), exc.error).inc()
    dutch = prefers_dutch(request)
    headers = {**(exc.headers or {}), "Content-Language": "nl" if dutch else "en"}
    return JSONResponse(
        status_code=exc.status_code, content=exc.problem(dutch), headers=headers, media_type=PROBLEM_MEDIA_TYPE
    )


# Starlette's own HTTP errors: a code, and a Dutch text (their English detail comes with the exception).
HTTP_ERRORS = {
    400: ("malformed_body", "De inhoud van het verzoek kon niet worden gelezen"),
    404: ("not_found", "Niet gevonden"),
    405: ("method_not_allowed", "Deze methode is hier niet toegestaan"),
    408: ("request_timeout", "Het verzoek kwam te langzaam binnen; stuur het opnieuw"),
    413: ("payload_too_large", "Het verzoek is te groot"),
}


def render_http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
    """Starlette's own HTTP errors (unknown route, wrong method, body too large) in the one error body."""
    code, detail_nl = HTTP_ERRORS.get(exc.status_code, ("http_error", "Het verzoek is mislukt"))
    return render_error(
        request,
        ServiceError(
            exc.status_code,
            code,
            str(exc.detail),
            detail_nl=detail_nl,
            headers=dict(exc.headers) if exc.headers else None,
        ),
    )


def install_error_handlers(app: FastAPI) -> None:
    """Route every failure through the one error body."""

    @app.exception_handler(ServiceError)
    async def _service_error(request: Request, exc: ServiceError) -> JSONResponse:
        return render_error(request, exc)

    @app.exception_handler(RequestValidationError)
    async def _validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        problems = []
        for err in exc.errors():
            where = ".".join(str(p) for p in err.get("loc", ()))
            problems.append(f"{where}: {err.get('msg')}")
        return render_error(
            request,
            ServiceError(
                422,
                "validation_error",
                "; ".join(problems) or "request is not valid",
                detail_nl="Het verzoek is niet geldig: " + "; ".join(problems),
            ),
        )

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        return render_http_error(request, exc)

    @app.exception_handler(ClientDisconnect)
    async def _client_gone(request: Request, exc: ClientDisconnect) -> Response:
        # The caller left while its request was being read (a service killed mid-delivery, a phone out of
        # reach): nobody hears the answer and nothing was stored. Not an error of ours, and it retries.
        log.info("the client left before its request was read")
        return Response(status_code=400)

    @app.exception_handler(DBAPIError)
    @app.exception_handler(SQLAlchemyTimeoutError)
    @app.exception_handler(ConnectionError)
    async def _database_error(request: Request, exc: Exception) -> JSONResponse:
        if not is_transient(exc):
            return _unexpected_error(request, exc)
        # The request stored nothing (its transaction rolled back), so the client can safely send it again.
        log.warning("database busy or unreachable", extra={"reason": type(exc).__name__})
        return render_error(request, busy())

    @app.exception_handler(BlobStoreUnavailable)
    async def _storage_error(request: Request, exc: Exception) -> JSONResponse:
        # The request's transaction rolled back and what it had put in the store was removed: safe to retry.
        log.warning("photo store unavailable", extra={"reason": str(exc)[:200]})
        return render_error(request, storage_unavailable())

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        return _unexpected_error(request, exc)


# SQLSTATEs of a PostgreSQL that cannot serve now, whatever was asked: connection exceptions (08, not a protocol
# violation), insufficient resources (53, e.g. too many connections), shut down by an operator or a crash, or not
# accepting connections while it starts or stops (57P01-57P03).
TRANSIENT_SQLSTATES = ("08000", "08001", "08003", "08004", "08006", "53", "57P01", "57P02", "57P03")


def is_transient(error: BaseException) -> bool:
    """A database failure that says nothing about the request: a locked SQLite file, an exhausted connection
    pool, a database that does not answer, refuses connections, is restarting, or closed a connection (a restart
    or failover; the pool then renews its connections)."""
    if isinstance(error, OperationalError | SQLAlchemyTimeoutError):
        return True
    if isinstance(error, ConnectionError):  # refused or reset while the pool connects: asyncpg's own, unwrapped
        return True
    if not isinstance(error, DBAPIError):
        return False
    sqlstate = str(getattr(error.orig, "sqlstate", None) or "")
    return error.connection_invalidated or sqlstate.startswith(TRANSIENT_SQLSTATES)


def _unexpected_error(request: Request, exc: Exception) -> JSONResponse:
    log.error("unhandled error", exc_info=exc)
    return render_error(
        request,
        ServiceError(500, "internal_error", "an unexpected error occurred", detail_nl="Er ging onverwacht iets mis"),
    )
