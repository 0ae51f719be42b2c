"""Service-to-service credentials: short-lived JWTs, each service signing with its own Ed25519 key.

A credential names who sends it (`iss`), who may accept it (`aud`) and when it expires (`exp`, at most a few
minutes away), and carries the id of the key that signed it (`kid` in the header). A receiver holds only the
*public* keys of the services it accepts calls from, each bound to that service's name: it can check a
credential but never make one, so the meldkamer (which needs the bridge's public key) or a verification node
holds nothing that would let it speak as another service. A credential captured on its way to one service is
useless at another one and stops working within 90 seconds (a minute, and half a minute for clocks that differ).
Credentials are not bound to a request's body: one captured inside the network can be replayed to the same
service within that time, which the receivers' inboxes make harmless for messages (a replay is a duplicate).

Rotation without downtime, by key id: receivers first trust the new public key beside the old one, then the
service signs with the new key, then the old one is removed. Internal endpoints declare which issuers they
accept (`check_issuer`).

Development runs without any setup on keys derived from each service's name (`development_key`): published
in this repository, so their ids start with `dev-only-` and production refuses them.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from jwt.algorithms import OKPAlgorithm
from starlette.requests import Request
from starlette.types import ASGIApp, Receive, Scope, Send

from burgermelding_shared.errors import ServiceError, render_error

VERIFIED_ISSUER = "service_issuer"  # where the middleware leaves the issuer it verified, in the ASGI scope state
ALGORITHM = "EdDSA"
DEFAULT_TTL_SECONDS = 60
CLOCK_SKEW_SECONDS = 30
MAX_LIFETIME_SECONDS = 300  # a credential valid for longer than this was not made by one of our services
DEVELOPMENT_KEY_PREFIX = "dev-only-"
# The services that call each other with credentials (the meldkamer calls the bridge with signed webhooks).
SUITE_SERVICES = ("report-intake", "verification", "dispatch-bridge")


def _invalid(reason: str, detail: str, detail_nl: str, status: int = 401) -> ServiceError:
    return ServiceError(status, reason, detail, detail_nl=detail_nl, headers={"WWW-Authenticate": "Bearer"})


@dataclass(frozen=True)
class ServiceKey:
    """One service's private signing key and its id."""

    issuer: str
    kid: str
    private_key: Ed25519PrivateKey = field(repr=False)

    def issue(self, audience: str, ttl: int = DEFAULT_TTL_SECONDS) -> str:
        """A credential of this service for calls to `audience`."""
        now = int(time.time())
        return jwt.encode(
            {"iss": self.issuer, "aud": audience, "iat": now, "exp": now + ttl},
            self.private_key,
            algorithm=ALGORITHM,
            headers={"kid": self.kid},
        )

    def private_jwk(self) -> dict[str, str]:
        """The key as a private JWK (what `BM_<SERVICE>_SERVICE_KEY` holds)."""
        return {**json.loads(OKPAlgorithm.to_jwk(self.private_key)), "kid": self.kid}

    def public_jwk(self) -> dict[str, str]:
        """The public half as a JWK (what the services it calls list in their `TRUSTED_SERVICE_KEYS`)."""
        return {**json.loads(OKPAlgorithm.to_jwk(self.private_key.public_key())), "kid": self.kid}


def new_key(issuer: str, kid: str) -> ServiceKey:
    return ServiceKey(issuer, kid, Ed25519PrivateKey.generate())


def development_key(issuer: str) -> ServiceKey:
    """The published key a service signs with in development (refused in production)."""
    seed = hashlib.sha256(f"burgermelding-development-service-key:{issuer}".encode()).digest()
    return ServiceKey(issuer, f"{DEVELOPMENT_KEY_PREFIX}{issuer}", Ed25519PrivateKey.from_private_bytes(seed))


def _public_bytes(key: Ed25519PublicKey) -> bytes:
    return key.public_bytes(Encoding.Raw, PublicFormat.Raw)


# The published development keys by their public bytes: refused in production under any key id.
PUBLISHED_KEYS = frozenset(
    _public_bytes(development_key(service).private_key.public_key())
    for service in (*SUITE_SERVICES, "meldkamer", "service")
)


def is_published(key: Ed25519PrivateKey | Ed25519PublicKey) -> bool:
    """True for a development key (whatever id it was given): anyone can sign with it."""
    public = key.public_key() if isinstance(key, Ed25519PrivateKey) else key
    return _public_bytes(public) in PUBLISHED_KEYS


def load_service_key(issuer: str, jwk: Mapping[str, Any]) -> ServiceKey:
    """A service's signing key from its private JWK; ValueError when it is not an Ed25519 private key with an id."""
    key = _load_jwk(jwk)
    if not isinstance(key, Ed25519PrivateKey):
        raise ValueError("the service key must be an Ed25519 private key (a JWK with kty OKP, crv Ed25519 and d)")
    return ServiceKey(issuer, str(jwk["kid"]), key)


def _load_jwk(jwk: Mapping[str, Any]) -> Any:
    if not isinstance(jwk.get("kid"), str) or not jwk["kid"]:
        raise ValueError("every key needs a key id (kid), so that it can be rotated")
    if jwk.get("kty") != "OKP" or jwk.get("crv") != "Ed25519":
        raise ValueError(f"key {jwk['kid']}: only Ed25519 keys (kty OKP, crv Ed25519) are accepted")
    try:
        return OKPAlgorithm.from_jwk(dict(jwk))
    except (jwt.InvalidKeyError, ValueError, TypeError) as exc:
        raise ValueError(f"key {jwk['kid']}: not a valid Ed25519 JWK") from exc


@dataclass(frozen=True)
class TrustedKeys:
    """The public keys this service accepts credentials from, by key id, each bound to one issuer."""

    by_kid: Mapping[str, tuple[str, Ed25519PublicKey]]

    @classmethod
    def load(cls, keys_by_issuer: Mapping[str, Sequence[Mapping[str, Any]]]) -> TrustedKeys:
        """From `{issuer: [public JWK, ...]}`; ValueError on a private key (a receiver must not hold one), a
        key without an id, or one id given twice."""
        by_kid: dict[str, tuple[str, Ed25519PublicKey]] = {}
        for issuer, jwks in keys_by_issuer.items():
            for jwk in jwks:
                if "d" in jwk:
                    raise ValueError(
                        f"key {jwk.get('kid')} of {issuer} is a private key: a receiver holds only public keys"
                    )
                key = _load_jwk(jwk)
                if not isinstance(key, Ed25519PublicKey) or jwk["kid"] in by_kid:
                    raise ValueError(f"key {jwk['kid']} of {issuer}: not a public key, or its id is used twice")
                by_kid[jwk["kid"]] = (issuer, key)
        return cls(by_kid)

    @classmethod
    def development(cls) -> TrustedKeys:
        keys = (development_key(service) for service in SUITE_SERVICES)
        return cls({key.kid: (key.issuer, key.private_key.public_key()) for key in keys})

    def verify(self, token: str, audience: str, allowed_issuers: frozenset[str] | None) -> str:
        """The issuer of a valid credential for `audience` (from one of `allowed_issuers`; None: any issuer this
        service trusts); raises 401 (not a valid credential) or 403 (valid, but not for this)."""
        try:
            kid = jwt.get_unverified_header(token).get("kid")
        except jwt.PyJWTError as exc:
            raise _invalid(
                "invalid_service_credential", "service credential is malformed", "de dienstcredential is misvormd"
            ) from exc
        owner = self.by_kid.get(kid) if isinstance(kid, str) else None
        if owner is None:
            raise _invalid(
                "unknown_service_key",
                "service credential is signed with a key this service does not trust",
                "de dienstcredential is ondertekend met een sleutel die deze dienst niet vertrouwt",
            )
        issuer, public_key = owner
        try:
            claims = jwt.decode(
                token,
                public_key,
                algorithms=[ALGORITHM],
                audience=audience,
                issuer=issuer,
                leeway=CLOCK_SKEW_SECONDS,
                options={"require": ["iss", "aud", "exp", "iat"]},
            )
        except jwt.ExpiredSignatureError as exc:
            raise _invalid(
                "expired_service_credential", "service credential has expired", "de dienstcredential is verlopen"
            ) from exc
        except jwt.InvalidAudienceError as exc:
            raise _invalid(
                "wrong_audience",
                "service credential is for another service",
                "de dienstcredential is voor een andere dienst",
                status=403,
            ) from exc
        except jwt.PyJWTError as exc:  # bad signature, or a key used in another service's name
            raise _invalid(
                "invalid_service_credential", "service credential is not valid", "de dienstcredential is niet geldig"
            ) from exc
        if not isinstance(claims["exp"], int) or claims["exp"] > time.time() + MAX_LIFETIME_SECONDS:
            raise _invalid(
                "invalid_service_credential",
                "service credential is valid for too long",
                "de dienstcredential is te lang geldig",
            )
        return check_issuer(issuer, allowed_issuers)


def check_issuer(issuer: str, allowed_issuers: frozenset[str] | None) -> str:
    """`issuer` if it may call this endpoint (None: any service may); 403 otherwise."""
    if allowed_issuers is not None and issuer not in allowed_issuers:
        raise ServiceError(
            403,
            "issuer_not_allowed",
            f"service '{issuer}' may not call this endpoint",
            detail_nl=f"dienst '{issuer}' mag dit adres niet aanroepen",
        )
    return issuer


@dataclass
class ServiceDestination:
    """An outbox destination that is one of our own services, called with this service's credential."""

    base_url: str
    key: ServiceKey
    audience: str

    def headers_for(self, body: bytes, message_id: str) -> dict[str, str]:
        return {"authorization": f"Bearer {self.key.issue(self.audience)}"}


def bearer_of(authorization: str) -> str:
    """The token of an `Authorization: Bearer` header; 401 without one."""
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise ServiceError(
            401,
            "missing_service_credential",
            "internal endpoint: a service credential is required",
            detail_nl="intern adres: een dienstcredential is verplicht",
            headers={"WWW-Authenticate": "Bearer"},
        )
    return token.strip()


class InternalCredentialMiddleware:
    """No internal endpoint answers anything (not even that a body is malformed) to a caller without a valid
    service credential for this service. FastAPI reads and judges a body before a route's dependencies run,
    so the check happens here, in front of it; each route then checks which services may call it, using the
    issuer verified here (`scope["state"][VERIFIED_ISSUER]`) rather than verifying the token a second time."""

    def __init__(
        self, app: ASGIApp, trusted: TrustedKeys, audience: str, prefixes: tuple[str, ...] = ("/internal/",)
    ) -> None:
        self.app, self.trusted, self.audience, self.prefixes = app, trusted, audience, prefixes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"].startswith(self.prefixes):
            request = Request(scope, receive)
            try:
                issuer = self.trusted.verify(bearer_of(request.headers.get("authorization", "")), self.audience, None)
            except ServiceError as exc:
                await render_error(request, exc)(scope, receive, send)
                return
            scope.setdefault("state", {})[VERIFIED_ISSUER] = issuer
        await self.app(scope, receive, send)


def main(argv: list[str] | None = None) -> None:
    """`python -m burgermelding_shared.service_auth <service> <kid>`: a new key pair, as the settings hold it."""
    import sys

    args = sys.argv[1:] if argv is None else argv
    if len(args) != 2:
        raise SystemExit("usage: python -m burgermelding_shared.service_auth <service-name> <key-id>")
    key = new_key(args[0], args[1])
    print(f"# {args[0]}'s own setting (keep it secret):\nSERVICE_KEY='{json.dumps(key.private_jwk())}'")
    print(f'# add to TRUSTED_SERVICE_KEYS of each service it calls, under "{args[0]}":\n{json.dumps(key.public_jwk())}')


if __name__ == "__main__":
    main()
