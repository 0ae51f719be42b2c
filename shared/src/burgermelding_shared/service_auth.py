"""Service-to-service credentials: short-lived tokens signed with the suite's internal secret.

A token names who sends it (issuer), who may accept it (audience) and when it expires, and is signed with
HMAC-SHA256. A token captured on its way to one service is useless at another one and stops working within a
minute. Internal endpoints declare which issuers they accept.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from dataclasses import dataclass

from starlette.requests import Request
from starlette.types import ASGIApp, Receive, Scope, Send

from burgermelding_shared.errors import ServiceError, render_error

VERIFIED_ISSUER = "service_issuer"  # where the middleware leaves the issuer it verified, in the ASGI scope state
TOKEN_VERSION = "bm1"  # noqa: S105  (a format tag, not a secret)
DEFAULT_TTL_SECONDS = 60
CLOCK_SKEW_SECONDS = 30


def _sign(secret: str, message: str) -> str:
    mac = hmac.new(secret.encode(), message.encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(mac).rstrip(b"=").decode()


def issue_token(secret: str, issuer: str, audience: str, ttl: int = DEFAULT_TTL_SECONDS) -> str:
    expires = int(time.time()) + ttl
    claims = f"{TOKEN_VERSION}.{issuer}.{audience}.{expires}"
    return f"{claims}.{_sign(secret, claims)}"


def verify_token(secret: str, token: str, audience: str, allowed_issuers: frozenset[str] | None) -> str:
    """The issuer of a valid token for `audience` (from one of `allowed_issuers`; None: any); raises 401/403."""
    parts = token.split(".")
    if len(parts) != 5 or parts[0] != TOKEN_VERSION:
        raise ServiceError(401, "invalid_service_credential", "service credential is malformed",
                           detail_nl="de dienstcredential is misvormd")
    _, issuer, token_audience, expires, signature = parts
    expected = _sign(secret, ".".join(parts[:4]))
    if not hmac.compare_digest(signature, expected):
        raise ServiceError(401, "invalid_service_credential", "service credential signature is wrong",
                           detail_nl="de handtekening van de dienstcredential klopt niet")
    if not expires.isdigit() or int(expires) < time.time() - CLOCK_SKEW_SECONDS:
        raise ServiceError(401, "expired_service_credential", "service credential has expired",
                           detail_nl="de dienstcredential is verlopen")
    if token_audience != audience:
        raise ServiceError(403, "wrong_audience", "service credential is for another service",
                           detail_nl="de dienstcredential is voor een andere dienst")
    return check_issuer(issuer, allowed_issuers)


def check_issuer(issuer: str, allowed_issuers: frozenset[str] | None) -> str:
    """`issuer` if it may call this endpoint (None: any service may); 403 otherwise."""
    if allowed_issuers is not None and issuer not in allowed_issuers:
        raise ServiceError(403, "issuer_not_allowed", f"service '{issuer}' may not call this endpoint",
                           detail_nl=f"dienst '{issuer}' mag dit adres niet aanroepen")
    return issuer


@dataclass
class ServiceDestination:
    """An outbox destination that is one of our own services, authenticated with a service token."""

    base_url: str
    secret: str
    issuer: str
    audience: str

    def headers_for(self, body: bytes, message_id: str) -> dict[str, str]:
        return {"authorization": f"Bearer {issue_token(self.secret, self.issuer, self.audience)}"}


def bearer_of(authorization: str) -> str:
    """The token of an `Authorization: Bearer` header; 401 without one."""
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise ServiceError(401, "missing_service_credential", "internal endpoint: a service credential is required",
                           detail_nl="intern adres: een dienstcredential is verplicht",
                           headers={"WWW-Authenticate": "Bearer"})
    return token.strip()


class InternalCredentialMiddleware:
    """No internal endpoint answers anything (not even that a body is malformed) to a caller without a valid
    service credential for this service. FastAPI reads and judges a body before a route's dependencies run,
    so the check happens here, in front of it; each route then checks which services may call it, using the
    issuer verified here (`scope["state"][VERIFIED_ISSUER]`) rather than verifying the token a second time."""

    def __init__(self, app: ASGIApp, secret: str, audience: str, prefixes: tuple[str, ...] = ("/internal/",)) -> None:
        self.app, self.secret, self.audience, self.prefixes = app, secret, audience, prefixes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"].startswith(self.prefixes):
            request = Request(scope, receive)
            try:
                issuer = verify_token(self.secret, bearer_of(request.headers.get("authorization", "")),
                                      self.audience, None)
            except ServiceError as exc:
                await render_error(request, exc)(scope, receive, send)
                return
            scope.setdefault("state", {})[VERIFIED_ISSUER] = issuer
        await self.app(scope, receive, send)
