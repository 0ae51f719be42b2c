"""Bearer tokens for dispatchers, and who is asking (their role)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from dataclasses import dataclass
from typing import Annotated, Any, TypeGuard

from fastapi import Depends
from fastapi.security import OAuth2PasswordBearer

from burgermelding_shared.app import RuntimeDep
from burgermelding_shared.errors import ServiceError
from dispatch_bridge.models import Dispatcher

oauth2_scheme = OAuth2PasswordBearer(
    tokenUrl="/v1/auth/token",
    auto_error=False,
    scheme_name="dispatcherLogin",
    description="A dispatcher's or supervisor's token from `POST /v1/auth/token` (OAuth2 password flow), as "
    "`Authorization: Bearer <token>`; it ends with the account's next password or role change.",
)


# bmd1 tokens had no epoch: they are refused, and their holders log in again.
TOKEN_FORMAT = "bmd2"  # noqa: S105  (a format name, not a secret)


def _sign(secret: str, claims: str) -> str:
    return (
        base64.urlsafe_b64encode(hmac.new(secret.encode(), claims.encode(), hashlib.sha256).digest())
        .rstrip(b"=")
        .decode()
    )


def issue_token(secret: str, username: str, role: str, minutes: int, epoch: int = 0) -> str:
    name = base64.urlsafe_b64encode(username.encode()).decode()
    claims = f"{TOKEN_FORMAT}.{name}.{role}.{epoch}.{int(time.time()) + minutes * 60}"
    return f"{claims}.{_sign(secret, claims)}"


@dataclass(frozen=True)
class TokenClaims:
    username: str
    role: str
    epoch: int


def read_token(secret: str, token: str) -> TokenClaims:
    """The claims of a token this bridge signed and that has not expired; else 401."""
    # A header may carry any byte (Starlette reads it as Latin-1), and compare_digest refuses text that is not
    # ASCII with a TypeError: a 500 for what is only a malformed token.
    parts = token.split(".") if token.isascii() else []
    if len(parts) != 6 or parts[0] != TOKEN_FORMAT:
        raise _unauthorised("the token is malformed", "het token is misvormd")
    if not hmac.compare_digest(parts[5], _sign(secret, ".".join(parts[:5]))):
        raise _unauthorised("the token is not valid", "het token is niet geldig")
    if not parts[4].isdigit() or int(parts[4]) < time.time():
        raise _unauthorised("the token has expired", "het token is verlopen")
    if not parts[3].isdigit():  # (signed by us: never, unless a caller of issue_token passed something odd)
        raise _unauthorised("the token is malformed", "het token is misvormd")
    return TokenClaims(base64.urlsafe_b64decode(parts[1]).decode(), parts[2], int(parts[3]))


@dataclass(frozen=True)
class Actor:
    username: str
    role: str


def _unauthorised(detail: str, detail_nl: str) -> ServiceError:
    return ServiceError(401, "not_authenticated", detail, detail_nl=detail_nl, headers={"WWW-Authenticate": "Bearer"})


def still_current(user: Dispatcher | None, epoch: int) -> TypeGuard[Dispatcher]:
    """Whether a token or console session issued at `epoch` still speaks for this account: it exists, is enabled,
    and has not been disabled, enabled, or given a new password or role since. The one rule for both."""
    return user is not None and not user.disabled and user.epoch == epoch


def end_everything_issued(user: Dispatcher) -> None:
    """Move the account to a new epoch: every token and console session issued to it before ends."""
    user.epoch += 1


async def current_actor(runtime: RuntimeDep, token: Annotated[str | None, Depends(oauth2_scheme)]) -> Actor:
    if not token:
        raise _unauthorised(
            "a dispatcher's bearer token is required", "het bearer-token van een centralist is verplicht"
        )
    claims = read_token(runtime.settings.dispatcher_token_secret, token)
    async with runtime.db.sessions() as session:
        user = await session.get(Dispatcher, claims.username)
    if user is None or not still_current(user, claims.epoch) or user.role != claims.role:
        raise _unauthorised(
            "this token no longer speaks for its user: log in again",
            "dit token geldt niet meer voor deze gebruiker: log opnieuw in",
        )
    return Actor(user.username, user.role)


def require_role(*roles: str) -> Any:  # FastAPI types `Depends(...)` as Any
    async def dependency(actor: Annotated[Actor, Depends(current_actor)]) -> Actor:
        if actor.role not in roles:
            raise ServiceError(
                403,
                "forbidden",
                f"this needs the role {' or '.join(roles)}",
                detail_nl=f"hiervoor is de rol {' of '.join(roles)} nodig",
            )
        return actor

    return Depends(dependency)


AnyDispatcher = Annotated[Actor, require_role("dispatcher", "supervisor")]


Supervisor = Annotated[Actor, require_role("supervisor")]
