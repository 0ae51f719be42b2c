"""Dispatchers' authentication: OAuth2 password flow, signed bearer tokens, and roles.

Passwords are stored as scrypt hashes. A token names the user, role and expiry and is signed with the
bridge's secret; every request also checks that the user still exists and is not disabled.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends
from fastapi.security import OAuth2PasswordBearer

from burgermelding_shared.app import Runtime, RuntimeDep
from burgermelding_shared.db import Database
from burgermelding_shared.errors import ServiceError
from burgermelding_shared.timeutil import utcnow
from dispatch_bridge.models import Dispatcher

ROLES = ("dispatcher", "supervisor")
SCRYPT = {"n": 2**14, "r": 8, "p": 1}
oauth2_scheme = OAuth2PasswordBearer(tokenUrl="/v1/auth/token", auto_error=False)


def hash_password(password: str) -> str:
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, dklen=32, **SCRYPT)
    return f"scrypt${base64.b64encode(salt).decode()}${base64.b64encode(digest).decode()}"


def password_matches(password: str, stored: str) -> bool:
    try:
        _, salt, digest = stored.split("$")
        candidate = hashlib.scrypt(password.encode(), salt=base64.b64decode(salt), dklen=32, **SCRYPT)
    except ValueError:
        return False
    return hmac.compare_digest(candidate, base64.b64decode(digest))


def _sign(secret: str, claims: str) -> str:
    return base64.urlsafe_b64encode(hmac.new(secret.encode(), claims.encode(), hashlib.sha256).digest()).rstrip(
        b"=").decode()


def issue_token(secret: str, username: str, role: str, minutes: int) -> str:
    claims = f"bmd1.{base64.urlsafe_b64encode(username.encode()).decode()}.{role}.{int(time.time()) + minutes * 60}"
    return f"{claims}.{_sign(secret, claims)}"


@dataclass(frozen=True)
class Actor:
    username: str
    role: str


def _unauthorised(detail: str, detail_nl: str) -> ServiceError:
    return ServiceError(401, "not_authenticated", detail, detail_nl=detail_nl, headers={"WWW-Authenticate": "Bearer"})


async def create_user(db: Database, username: str, password: str, role: str) -> None:
    if role not in ROLES:
        raise ValueError(f"role must be one of {ROLES}")
    if len(password) < 12:
        raise ValueError("a password needs at least 12 characters")
    async with db.transaction() as session:
        existing = await session.get(Dispatcher, username)
        if existing is not None:
            existing.password_hash, existing.role, existing.disabled = hash_password(password), role, False
            session.add(existing)
        else:
            session.add(Dispatcher(username=username, password_hash=hash_password(password), role=role,
                                   created_at=utcnow()))


async def log_in(runtime: Runtime, username: str, password: str) -> str:
    async with runtime.db.sessions() as session:
        user = await session.get(Dispatcher, username[:64])
    if user is None or user.disabled or not password_matches(password, user.password_hash):
        raise ServiceError(401, "invalid_credentials", "wrong username or password",
                           detail_nl="onjuiste gebruikersnaam of onjuist wachtwoord")
    settings = runtime.settings
    return issue_token(settings.dispatcher_token_secret, user.username, user.role, settings.dispatcher_token_minutes)


async def current_actor(runtime: RuntimeDep, token: Annotated[str | None, Depends(oauth2_scheme)]) -> Actor:
    if not token:
        raise _unauthorised("a dispatcher's bearer token is required",
                            "het bearer-token van een centralist is verplicht")
    parts = token.split(".")
    if len(parts) != 5 or parts[0] != "bmd1":
        raise _unauthorised("the token is malformed", "het token is misvormd")
    if not hmac.compare_digest(parts[4], _sign(runtime.settings.dispatcher_token_secret, ".".join(parts[:4]))):
        raise _unauthorised("the token is not valid", "het token is niet geldig")
    if not parts[3].isdigit() or int(parts[3]) < time.time():
        raise _unauthorised("the token has expired", "het token is verlopen")
    username = base64.urlsafe_b64decode(parts[1]).decode()
    async with runtime.db.sessions() as session:
        user = await session.get(Dispatcher, username)
    if user is None or user.disabled:
        raise _unauthorised("this user no longer has access", "deze gebruiker heeft geen toegang meer")
    return Actor(user.username, user.role)


def require_role(*roles: str):  # type: ignore[no-untyped-def]
    async def dependency(actor: Annotated[Actor, Depends(current_actor)]) -> Actor:
        if actor.role not in roles:
            raise ServiceError(403, "forbidden", f"this needs the role {' or '.join(roles)}",
                               detail_nl=f"hiervoor is de rol {' of '.join(roles)} nodig")
        return actor

    return Depends(dependency)


AnyDispatcher = Annotated[Actor, require_role("dispatcher", "supervisor")]
Supervisor = Annotated[Actor, require_role("supervisor")]
