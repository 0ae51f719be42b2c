"""Dispatchers' authentication: OAuth2 password flow, signed bearer tokens, roles, and a guarded login.

Passwords are argon2id hashes (pwdlib); scrypt hashes from before are still accepted and replaced by argon2id at
the next login. A token names the user, role and expiry and is signed with the bridge's secret; every request
also checks that the user still exists and is not disabled, so disabling a user ends their tokens at once (a
lockout does not: it guards the password, and must not let a stranger end a dispatcher's shift).

A login is guarded against guessing: one try at a time per name and per client; after `login_free_failures`
wrong passwords in a row, for the user name and for the client (each counted in the shared state, so across
replicas), every next try waits 1 s, then 2, 4, ... up to `login_max_delay_seconds` (429 with Retry-After);
after `login_lockout_after` the account is locked until a supervisor lifts it. Hashing runs off the event loop
(it takes tens of milliseconds and this service also takes the meldkamer's callbacks), an unknown user name
costs the same hash as a known one, and a locked, disabled or unknown account answers exactly as a wrong
password does, so nothing tells names apart.
Logins, failures, throttled tries, lockouts and their lifting are audited.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import math
import time
from dataclasses import dataclass
from typing import Annotated, ClassVar

from fastapi import Depends
from fastapi.security import OAuth2PasswordBearer
from pwdlib import PasswordHash
from pwdlib.hashers.argon2 import Argon2Hasher
from sqlalchemy import update

from burgermelding_shared.app import Runtime, RuntimeDep
from burgermelding_shared.db import Database
from burgermelding_shared.errors import ServiceError
from burgermelding_shared.ratelimit import AnonymousClientKeys
from burgermelding_shared.timeutil import utcnow
from dispatch_bridge.audit import audit
from dispatch_bridge.models import ConsoleSession, Dispatcher

ROLES = ("dispatcher", "supervisor")
oauth2_scheme = OAuth2PasswordBearer(tokenUrl="/v1/auth/token", auto_error=False)


class LegacyScryptHasher:
    """Verifies the scrypt hashes stored before argon2id (`scrypt$salt$digest`); never makes new ones."""

    PARAMETERS: ClassVar[dict[str, int]] = {"n": 2**14, "r": 8, "p": 1}

    @classmethod
    def identify(cls, hash: str | bytes) -> bool:
        return (hash.decode() if isinstance(hash, bytes) else hash).startswith("scrypt$")

    def hash(self, password: str | bytes, *, salt: bytes | None = None) -> str:
        raise NotImplementedError("new passwords are argon2id")

    def verify(self, password: str | bytes, hash: str | bytes) -> bool:
        text = hash.decode() if isinstance(hash, bytes) else hash
        secret = password.encode() if isinstance(password, str) else password
        try:
            _, salt, digest = text.split("$")
            candidate = hashlib.scrypt(secret, salt=base64.b64decode(salt), dklen=32, **self.PARAMETERS)
        except ValueError:
            return False
        return hmac.compare_digest(candidate, base64.b64decode(digest))

    def check_needs_rehash(self, hash: str | bytes) -> bool:
        return True


passwords = PasswordHash((Argon2Hasher(), LegacyScryptHasher()))
# Verified when the user name is unknown, so that a wrong name costs what a wrong password costs.
_UNKNOWN_USER_HASH = passwords.hash("no such dispatcher: this hash is only ever compared, never matched")


def hash_password(password: str) -> str:
    return passwords.hash(password)


def check_password(password: str, stored: str | None) -> tuple[bool, str | None]:
    """(matches, a new hash to store when the old one is of an older kind); blocking, run it in a thread."""
    if stored is None:
        passwords.verify(password, _UNKNOWN_USER_HASH)
        return False, None
    return passwords.verify_and_update(password, stored)


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
            existing.locked_at = None
            session.add(existing)
        else:
            session.add(Dispatcher(username=username, password_hash=hash_password(password), role=role,
                                   created_at=utcnow()))


def wrong_credentials() -> ServiceError:
    return ServiceError(401, "invalid_credentials", "wrong username or password (or the account is locked: ask a "
                        "supervisor)", detail_nl="onjuiste gebruikersnaam of onjuist wachtwoord (of het account is "
                        "geblokkeerd: vraag een supervisor)")


def login_throttled(wait: float) -> ServiceError:
    seconds = max(1, math.ceil(wait))
    return ServiceError(429, "login_throttled", f"too many wrong passwords; try again in {seconds} s",
                        detail_nl=f"te vaak een onjuist wachtwoord; probeer het over {seconds} s opnieuw",
                        headers={"Retry-After": str(seconds)})


@dataclass(frozen=True)
class LoginAttempt:
    """Who tries to log in, as the throttle counts them: the name tried and the client, both as pseudonyms."""

    username: str
    client_key: str

    @property
    def keys(self) -> tuple[str, str]:
        name = hashlib.sha256(self.username.lower().encode()).hexdigest()[:32]
        return f"login-user:{name}", f"login-client:{self.client_key}"


@dataclass(frozen=True)
class _Anonymous:
    """The audit's actor for a login that has not succeeded: the name that was tried."""

    username: str
    role: str = "-"


async def log_in(runtime: Runtime, username: str, password: str, client_address: str | None) -> str:
    shared = runtime.shared
    attempt = LoginAttempt(username[:64], await AnonymousClientKeys(shared).key(client_address))
    # One try at a time per name and per client: a burst of concurrent tries would otherwise all pass the
    # wait below before the first of them is counted (the hash takes tens of milliseconds).
    taken = [key for key in attempt.keys if await shared.take(key, TRY_SECONDS)]
    try:
        if len(taken) < len(attempt.keys):
            raise login_throttled(1)
        return await _try(runtime, attempt, password)
    finally:
        for key in taken:
            await shared.give_back(key)


TRY_SECONDS = 10  # the longest one try may hold its turn (a replica that dies mid-try frees it after this)


async def _try(runtime: Runtime, attempt: LoginAttempt, password: str) -> str:
    settings, shared = runtime.settings, runtime.shared
    wait, holding = max([(await shared.held_for(key), key) for key in attempt.keys])
    if wait > 0:
        # Audited once per wait, not per try: hammering a held login must not flood the audit log.
        if await shared.count(holding + ":refused", wait) == 1:
            async with runtime.db.transaction() as session:
                audit(session, _Anonymous(attempt.username), "login_throttled", "dispatcher", attempt.username,
                      f"tries refused for {math.ceil(wait)} s")
        raise login_throttled(wait)
    async with runtime.db.sessions() as session:
        user = await session.get(Dispatcher, attempt.username)
    matches, new_hash = await asyncio.to_thread(check_password, password, user.password_hash if user else None)
    if not matches or user is None or user.disabled or user.locked_at is not None:
        await _failed(runtime, attempt, user, "wrong password" if user is not None and not matches else
                      "disabled" if user is not None and user.disabled else
                      "locked" if user is not None and user.locked_at is not None else "unknown user")
        raise wrong_credentials()
    async with runtime.db.transaction() as session:
        stored = await session.get(Dispatcher, user.username)
        if stored is None or stored.disabled or stored.locked_at is not None:  # changed while hashing
            raise wrong_credentials()
        if new_hash is not None and stored.password_hash == user.password_hash:  # an older hash: argon2id now
            stored.password_hash = new_hash
            session.add(stored)
        audit(session, user, "login", "dispatcher", user.username)
    await shared.forget(*attempt.keys)
    return issue_token(settings.dispatcher_token_secret, user.username, user.role, settings.dispatcher_token_minutes)


async def _failed(runtime: Runtime, attempt: LoginAttempt, user: Dispatcher | None, reason: str) -> None:
    """Count a failed login for the name and the client, make the next try wait, lock the account when its
    wrong passwords in a row reach the limit; all audited."""
    settings, shared = runtime.settings, runtime.shared
    failures = [await shared.count(key, settings.login_failures_forgotten_seconds) for key in attempt.keys]
    for key, count in zip(attempt.keys, failures, strict=True):
        beyond = count - settings.login_free_failures
        if beyond >= 0:
            # (The exponent is capped: a long enough run would overflow a float.)
            await shared.hold(key, min(settings.login_max_delay_seconds, 2.0 ** min(beyond, 30)))
    async with runtime.db.transaction() as session:
        audit(session, _Anonymous(attempt.username), "login_failed", "dispatcher", attempt.username,
              f"{reason}; {failures[0]} in a row for this name, {failures[1]} from this client")
        if user is not None and user.locked_at is None and reason == "wrong password" \
                and failures[0] >= settings.login_lockout_after:
            stored = await session.get(Dispatcher, user.username)
            if stored is not None:
                stored.locked_at = utcnow()
                session.add(stored)
                audit(session, _Anonymous(attempt.username), "lockout", "dispatcher", attempt.username,
                      f"{failures[0]} wrong passwords in a row")


async def change_account(runtime: Runtime, supervisor: Actor, username: str, change: str) -> dict[str, object]:
    """A supervisor disables or enables an account, or lifts its lockout (which also clears the name's
    wrong-password count); audited. Disabling ends the user's tokens and console sessions at once."""
    async with runtime.db.transaction() as session:
        user = await session.get(Dispatcher, username[:64])
        if user is None:
            raise ServiceError(404, "dispatcher_not_found", "no such dispatcher",
                               detail_nl="deze centralist bestaat niet")
        if change == "disable":
            user.disabled = True
            await session.execute(update(ConsoleSession).where(ConsoleSession.username == user.username,
                                                               ConsoleSession.ended_at.is_(None))
                                  .values(ended_at=utcnow()))
        elif change == "enable":
            user.disabled = False
        elif change == "unlock":
            user.locked_at = None
        session.add(user)
        audit(session, supervisor, change, "dispatcher", user.username)
        state = {"username": user.username, "role": user.role, "disabled": user.disabled,
                 "locked": user.locked_at is not None}
    if change == "unlock":
        await runtime.shared.forget(LoginAttempt(user.username, "").keys[0])
    return state


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
    # A lockout guards the password, not the dispatcher at their desk: their open session goes on (else
    # anyone who knows a name could end a shift by guessing). Disabling an account ends it at once.
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
