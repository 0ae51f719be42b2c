"""One error type and one renderer: every error leaves a service as `{"error": <code>, "detail": <message>}`."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.exc import TimeoutError as SQLAlchemyTimeoutError
from starlette.exceptions import HTTPException as StarletteHTTPException

log = logging.getLogger(__name__)


class ServiceError(Exception):
    """An error with its HTTP status, a stable machine-readable code and a human message.

    `detail_nl` carries the Dutch text for citizen-facing errors; the handler picks it by `Accept-Language`.
    """

    def __init__(
        self,
        status_code: int,
        error: str,
        detail: str,
        *,
        detail_nl: str | None = None,
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


class ErrorBody(BaseModel):
    """The body of every error response."""

    error: str
    detail: str


# What each status means across the suite, with typical bodies, for the OpenAPI document.
ERROR_EXAMPLES: dict[int, tuple[str, list[tuple[str, str]]]] = {
    400: ("The request is malformed", [
        ("idempotency_key_missing", "the Idempotency-Key header is required"),
        ("malformed_json", "the 'report' part is not valid JSON: Expecting value")]),
    401: ("No valid credential", [("missing_service_credential", "internal endpoint: a service credential is "
                                                                 "required")]),
    403: ("The credential does not allow this", [("forbidden", "this needs the role supervisor")]),
    404: ("Not found (for a citizen also: a wrong token)", [
        ("report_not_found", "no report with this id for this access token")]),
    409: ("In conflict with the current state", [
        ("request_in_progress", "a request with this Idempotency-Key is still being processed")]),
    413: ("Too large", [("upload_too_large", "a photo is larger than the limit of 20 MB"),
                        ("photo_too_many_pixels", "photo 1 has 20000x20000 pixels, more than the limit of "
                                                  "50,000,000")]),
    415: ("Unsupported content", [("photo_type_not_accepted", "photo 1 is not a JPEG, PNG, WebP or HEIC image")]),
    422: ("The request is not valid", [
        ("unknown_category", "unknown category 'ufo'; see GET /v1/categories"),
        ("idempotency_key_reused", "this Idempotency-Key was used for a different request")]),
    429: ("Too many requests; see Retry-After", [("rate_limited", "too many requests; try again in 42 s")]),
    503: ("Not available; see Retry-After", [("busy", "the service is busy; nothing was stored, try again in 2 s"),
                                              ("database_unreachable", "the database does not answer")]),
}


def error_response(code: int, examples: list[tuple[str, str]] | None = None) -> dict[str, Any]:
    """One OpenAPI response entry: the one error body, with examples of it (the route's own, if it names
    them, else the suite's typical ones for the status)."""
    description, typical = ERROR_EXAMPLES.get(code, ("Error", [("http_error", "the request failed")]))
    return {"model": ErrorBody, "description": description, "content": {"application/json": {"examples": {
        error: {"summary": error, "value": {"error": error, "detail": detail}}
        for error, detail in examples or typical}}}}


def error_responses(*codes: int, examples: dict[int, list[tuple[str, str]]] | None = None
                    ) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses=` entries for the given status codes, all with the one error body; `examples` names
    the errors a route really gives, by status."""
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
    return ServiceError(503, "busy", f"the service is busy; nothing was stored, try again in "
                        f"{BUSY_RETRY_AFTER_SECONDS} s", detail_nl="De dienst is even te druk; er is niets "
                        f"opgeslagen, probeer het over {BUSY_RETRY_AFTER_SECONDS} s opnieuw",
                        headers={"Retry-After": str(BUSY_RETRY_AFTER_SECONDS)})


def render_error(request: Request, exc: ServiceError) -> JSONResponse:
    """The one error body, in Dutch when the client prefers it and a Dutch text exists."""
    detail = exc.detail_nl if (exc.detail_nl and prefers_dutch(request)) else exc.detail
    return JSONResponse(
        status_code=exc.status_code,
        content={"error": exc.error, "detail": detail, **exc.extra},
        headers=exc.headers,
    )


# Starlette's own HTTP errors: a code, and a Dutch text (their English detail comes with the exception).
HTTP_ERRORS = {404: ("not_found", "Niet gevonden"), 405: ("method_not_allowed", "Deze methode is hier niet toegestaan"),
               413: ("payload_too_large", "Het verzoek is te groot")}


def render_http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
    """Starlette's own HTTP errors (unknown route, wrong method, body too large) in the one error body."""
    code, detail_nl = HTTP_ERRORS.get(exc.status_code, ("http_error", "Het verzoek is mislukt"))
    return render_error(request, ServiceError(exc.status_code, code, str(exc.detail), detail_nl=detail_nl,
                                              headers=exc.headers))


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

    @app.exception_handler(DBAPIError)
    @app.exception_handler(SQLAlchemyTimeoutError)
    async def _database_error(request: Request, exc: Exception) -> JSONResponse:
        if not is_transient(exc):
            return _unexpected_error(request, exc)
        # The request stored nothing (its transaction rolled back), so the client can safely send it again.
        log.warning("database busy or unreachable", extra={"reason": type(exc).__name__})
        return render_error(request, busy())

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        return _unexpected_error(request, exc)


def is_transient(error: BaseException) -> bool:
    """A database failure that says nothing about the request: a locked SQLite file, an exhausted connection
    pool, a database that does not answer, or a connection it closed (a restart or failover; the pool then
    renews its connections)."""
    return isinstance(error, OperationalError | SQLAlchemyTimeoutError) or (
        isinstance(error, DBAPIError) and error.connection_invalidated)


def _unexpected_error(request: Request, exc: Exception) -> JSONResponse:
    log.error("unhandled error", exc_info=exc)
    return render_error(request, ServiceError(500, "internal_error", "an unexpected error occurred",
                                              detail_nl="Er ging onverwacht iets mis"))
