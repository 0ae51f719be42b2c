"""One error type and one renderer: every error leaves a service as `{"error": <code>, "detail": <message>}`."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
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


def error_responses(*codes: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses=` entries for the given status codes, all with the one error body."""
    return {code: {"model": ErrorBody} for code in codes}


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


def _render(request: Request, exc: ServiceError) -> JSONResponse:
    detail = exc.detail_nl if (exc.detail_nl and prefers_dutch(request)) else exc.detail
    return JSONResponse(
        status_code=exc.status_code,
        content={"error": exc.error, "detail": detail, **exc.extra},
        headers=exc.headers,
    )


def install_error_handlers(app: FastAPI) -> None:
    """Route every failure through the one error body."""

    @app.exception_handler(ServiceError)
    async def _service_error(request: Request, exc: ServiceError) -> JSONResponse:
        return _render(request, exc)

    @app.exception_handler(RequestValidationError)
    async def _validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        problems = []
        for err in exc.errors():
            where = ".".join(str(p) for p in err.get("loc", ()))
            problems.append(f"{where}: {err.get('msg')}")
        return _render(
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
        code = {404: "not_found", 405: "method_not_allowed", 413: "payload_too_large"}.get(
            exc.status_code, "http_error"
        )
        return _render(request, ServiceError(exc.status_code, code, str(exc.detail), headers=exc.headers))

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error")
        return _render(request, ServiceError(500, "internal_error", "an unexpected error occurred"))
