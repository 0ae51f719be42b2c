"""Dispatchers' authentication: OAuth2 password flow, signed bearer tokens, roles, account epochs, and a login
that slows whoever guesses, not whoever owns the account.

Passwords are argon2id hashes (pwdlib); scrypt hashes from before are still accepted and replaced by argon2id at
the next login. A token names the user, role, the account's epoch and an expiry, and is signed with the bridge's
secret.

The epoch is a number on each account that goes up whenever it is disabled, enabled again, or given a new
password or role. Tokens and console sessions carry the epoch they were issued at and are honoured only while it
is still the account's (`still_current`, checked on every request): each such change ends everything issued
before it, on every replica, at once.

There is no lockout: a lock that anyone who reaches the login can turn (ten wrong passwords, and a supervisor is
out until someone lifts it) is a weapon against the control room. Logins are throttled instead, in the shared
state (so across replicas with Redis), by where they come from: a source is a client address, an IPv6 one by its
/64 (`burgermelding_shared.ratelimit.network_of`, as every limit of the suite counts clients).
- Per name and source: after `login_free_failures` wrong passwords in a row each next try waits 1 s, then 2, 4,
  ... up to `login_max_delay_seconds` (429 with Retry-After). The same per source across all names, for one
  client trying many names.
- Per name, a ceiling: at most `login_account_ceiling` tries from sources the name has not logged in from
  recently; then such tries are refused for `login_account_window_seconds`, and the guessing campaign is said
  loudly (a log line, `bm_login_guessing_campaigns_total`, an audit entry).
A source with a good login for the name in the last `login_known_source_days` is exempt from the ceiling and from
its source's count: while the ceiling holds its tries are delayed (`login_ceiling_delay_seconds`), never
refused, so the owner at their own desk gets in whatever a stranger does elsewhere. Only their own wrong
passwords from there make them wait. Which sources are known is kept in the database (`KnownLoginSource`, read
by its primary key at every try, written at every good login), not in the shared state: that is process memory
without Redis and while Redis is away, and a restart or a deploy that forgot every desk would turn the ceiling
back into a lock anyone can turn, for every name at once.

Password checks run on a few threads of their own (`PasswordChecks`), not in the default pool that photo reads
and exports use. An unknown name costs the same hash as a known one, and a disabled or unknown account answers
exactly as a wrong password does. Names tried and sources are kept only as keyed hashes (`Pseudonyms`): people
type passwords into the name field, and the audit chain is permanent. Logins, failures, refused tries, campaigns
and account changes are audited.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import logging
import math
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cache
from typing import Annotated, Any, ClassVar, TypeGuard

from fastapi import Depends
from fastapi.security import OAuth2PasswordBearer
from pwdlib import PasswordHash
from pwdlib.hashers.argon2 import Argon2Hasher
from sqlalchemy import delete
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import col

from burgermelding_shared.app import Runtime, RuntimeDep
from burgermelding_shared.db import Database
from burgermelding_shared.errors import ServiceError
from burgermelding_shared.ratelimit import network_of
from burgermelding_shared.timeutil import utcnow
from dispatch_bridge.audit import audit
from dispatch_bridge.config import BridgeSettings
from dispatch_bridge.models import Dispatcher, KnownLoginSource

log = logging.getLogger(__name__)
ROLES = ("dispatcher", "supervisor")
oauth2_scheme = OAuth2PasswordBearer(tokenUrl="/v1/auth/token", auto_error=False)
# bmd1 tokens had no epoch: they are refused, and their holders log in again.
TOKEN_FORMAT = "bmd2"  # noqa: S105  (a format name, not a secret)


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


class PasswordChecks:
    """Password checks on `threads` threads of their own. Each takes tens of milliseconds of CPU: in the default
    pool a flood of guesses would starve the photo reads and exports that share it. At most `waiting` checks
    queue beyond the threads; past that a try from a source the name has not logged in from is answered 503, while
    the owner's still queues (so waits behind a bounded queue, not behind the flood)."""

    def __init__(self, threads: int, waiting: int) -> None:
        self._pool = ThreadPoolExecutor(threads, thread_name_prefix="password-check")
        self._room = threads + waiting
        self._in_use = 0
        self._lock = threading.Lock()  # released from the pool's threads

    async def check(self, password: str, stored: str | None, *, known_source: bool) -> tuple[bool, str | None]:
        with self._lock:
            if self._in_use >= self._room and not known_source:
                raise logins_busy()
            self._in_use += 1
        job = self._pool.submit(check_password, password, stored)
        # Released when the check ends, not when its caller stops waiting (a client that hangs up mid-check
        # leaves the check running).
        job.add_done_callback(self._release)
        return await asyncio.wrap_future(job)

    def _release(self, _job: Future[tuple[bool, str | None]]) -> None:
        with self._lock:
            self._in_use -= 1


@cache
def password_checks(threads: int, waiting: int) -> PasswordChecks:
    """This process's checks: the threads are the process's, however many apps it runs (tests run several)."""
    return PasswordChecks(threads, waiting)


def _sign(secret: str, claims: str) -> str:
    return base64.urlsafe_b64encode(hmac.new(secret.encode(), claims.encode(), hashlib.sha256).digest()).rstrip(
        b"=").decode()


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


# ---- accounts and their epochs ------------------------------------------------------------------------------


def still_current(user: Dispatcher | None, epoch: int) -> TypeGuard[Dispatcher]:
    """Whether a token or console session issued at `epoch` still speaks for this account: it exists, is enabled,
    and has not been disabled, enabled, or given a new password or role since. The one rule for both."""
    return user is not None and not user.disabled and user.epoch == epoch


def end_everything_issued(user: Dispatcher) -> None:
    """Move the account to a new epoch: every token and console session issued to it before ends."""
    user.epoch += 1


class _Operator:
    """Whoever runs the bridge's `create-user` command on a server (a person the bridge cannot name)."""

    username = "create-user"
    role = "service"


class AccountExists(ValueError):
    """`create-user` for a name that has an account, without being told to reset it."""


async def create_user(db: Database, username: str, password: str, role: str, *, reset: bool = False) -> bool:
    """Create an account; or, with `reset`, give an existing one this password and role, enable it, and end
    everything issued to it before. Without `reset` an existing account is refused (AccountExists), so a typo in
    a command cannot take over a colleague's account. Returns whether the account existed; audited."""
    if role not in ROLES:
        raise ValueError(f"role must be one of {ROLES}")
    if len(password) < 12:
        raise ValueError("a password needs at least 12 characters")
    if not 0 < len(username) <= 64:
        raise ValueError("a user name has 1 to 64 characters")
    password_hash = hash_password(password)
    async with db.transaction() as session:
        existing = await session.get(Dispatcher, username, with_for_update=True)
        if existing is None:
            session.add(Dispatcher(username=username, password_hash=password_hash, role=role, created_at=utcnow()))
            audit(session, _Operator(), "account_created", "dispatcher", username, {"role": role})
            return False
        if not reset:
            raise AccountExists(f"the user {username} exists already (role {existing.role}); add --reset to give it "
                                "this password and role, which ends its tokens and console sessions")
        existing.password_hash, existing.role, existing.disabled = password_hash, role, False
        end_everything_issued(existing)
        session.add(existing)
        audit(session, _Operator(), "account_reset", "dispatcher", username, {"role": role})
    return True


async def change_account(runtime: Runtime, supervisor: Actor, username: str, change: str) -> dict[str, object]:
    """A supervisor disables or enables an account, which ends everything issued to it before, or lifts its
    ceiling (`unlock`: tries from sources it has not logged in from recently are let through again, e.g. once
    the campaign is blocked upstream); audited. `locked` in the answer: the ceiling holds now."""
    async with runtime.db.transaction() as session:
        user = await session.get(Dispatcher, username[:64], with_for_update=True)
        if user is None:
            raise ServiceError(404, "dispatcher_not_found", "no such dispatcher",
                               detail_nl="deze centralist bestaat niet")
        if change in ("disable", "enable") and user.disabled != (change == "disable"):
            user.disabled = change == "disable"
            end_everything_issued(user)
            session.add(user)
        audit(session, supervisor, change, "dispatcher", user.username)
        state: dict[str, object] = {"username": user.username, "role": user.role, "disabled": user.disabled}
    ceiling = LoginAttempt.of(runtime.settings, user.username, None).account  # the name's, whatever the source
    if change == "unlock":
        await runtime.shared.forget(ceiling)
    return {**state, "locked": await runtime.shared.held_for(ceiling) > 0}


# ---- logging in ---------------------------------------------------------------------------------------------


def wrong_credentials() -> ServiceError:
    return ServiceError(401, "invalid_credentials", "wrong username or password",
                        detail_nl="onjuiste gebruikersnaam of onjuist wachtwoord")


def login_throttled(wait: float) -> ServiceError:
    seconds = max(1, math.ceil(wait))
    return ServiceError(429, "login_throttled", f"too many login attempts; try again in {seconds} s",
                        detail_nl=f"te veel inlogpogingen; probeer het over {seconds} s opnieuw",
                        headers={"Retry-After": str(seconds)})


BUSY_SECONDS = 2


def logins_busy() -> ServiceError:
    return ServiceError(503, "logins_busy", f"too many logins at once; try again in {BUSY_SECONDS} s",
                        detail_nl=f"te veel inlogpogingen tegelijk; probeer het over {BUSY_SECONDS} s opnieuw",
                        headers={"Retry-After": str(BUSY_SECONDS)})


class Pseudonyms:
    """Keyed hashes of the names tried and of the sources: what the throttle counts, and what the audit and the
    logs name when a name is not an account. The key is derived from the token secret (one secret fewer to
    deploy); rotating that secret starts new pseudonyms."""

    def __init__(self, secret: str) -> None:
        self._key = hmac.new(secret.encode(), b"dispatch-bridge login pseudonyms", hashlib.sha256).digest()

    def _of(self, kind: str, text: str) -> str:
        return hmac.new(self._key, f"{kind}:{text}".encode(), hashlib.sha256).hexdigest()[:32]

    def name(self, username: str) -> str:
        return self._of("name", username.casefold())  # Dirk and dirk are one guess

    def source(self, address: str | None) -> str:
        """The source's network (an IPv6 address by its /64: one subscriber's, not 2**64 fresh starts)."""
        return self._of("source", network_of(address))


@cache
def _pseudonyms(secret: str) -> Pseudonyms:
    return Pseudonyms(secret)


@dataclass(frozen=True)
class LoginAttempt:
    """One try to log in as the throttle counts it: the name tried (at most 64 characters, as an account's),
    its pseudonym and the source's; and the keys it is counted under in the shared state."""

    username: str
    name: str
    source: str

    @classmethod
    def of(cls, settings: BridgeSettings, username: str, address: str | None) -> LoginAttempt:
        pseudonyms = _pseudonyms(settings.dispatcher_token_secret)
        return cls(username[:64], pseudonyms.name(username[:64]), pseudonyms.source(address))

    @property
    def pair(self) -> str:
        """This name from this source: its run of wrong passwords, and its one try at a time."""
        return f"login-pair:{self.name}:{self.source}"

    @property
    def from_source(self) -> str:
        """This source, whatever name it tries."""
        return f"login-source:{self.source}"

    @property
    def account(self) -> str:
        """This name's ceiling: its tries from sources it has not logged in from recently."""
        return f"login-account:{self.name}"

    def throttled_by(self, known_source: bool) -> list[str]:
        """The runs that make this try wait: the pair's always (from a known source it is the owner's own
        typing), the source's only for a name that has not logged in from it."""
        return [self.pair] if known_source else [self.pair, self.from_source]


class _Unauthenticated:
    """The audit's actor for a login that did not succeed."""

    username = "anonymous"
    role = "-"


TRY_SECONDS = 10  # the longest one try may hold its turn (a replica that dies mid-try frees it after this)


@dataclass(frozen=True)
class Login:
    """A good login: who, and the account's epoch when their password was checked. What is issued for it (a
    bearer token, a console session) carries that epoch, not the account's a moment later: a password or role
    reset landing in between must not hand the new epoch to whoever knew the old password."""

    actor: Actor
    epoch: int


async def log_in(runtime: Runtime, username: str, password: str, client_address: str | None) -> str:
    """A bearer token for the right password; else 401, 429 while this try must wait (see the module's doc), or
    503 while the password checks are full."""
    login = await authenticate(runtime, username, password, client_address)
    settings = runtime.settings
    return issue_token(settings.dispatcher_token_secret, login.actor.username, login.actor.role,
                       settings.dispatcher_token_minutes, login.epoch)


async def authenticate(runtime: Runtime, username: str, password: str, client_address: str | None) -> Login:
    """Check a login, throttled as the module's doc says (401, 429, 503 as `log_in`); audited. The console
    starts its session from the answer (`sessions.start`)."""
    shared = runtime.shared
    attempt = LoginAttempt.of(runtime.settings, username, client_address)
    known_source = await is_known_source(runtime, attempt)
    # One try at a time for each run that counts it: a burst of concurrent tries would otherwise all pass the
    # waits below before the first of them is counted (a check takes tens of milliseconds).
    turns = attempt.throttled_by(known_source)
    taken = [key for key in turns if await shared.take(key, TRY_SECONDS)]
    try:
        if len(taken) < len(turns):
            raise login_throttled(1)
        await _throttle(runtime, attempt, known_source)
        return await _check(runtime, attempt, password, known_source)
    finally:
        for key in taken:
            await shared.give_back(key)


async def _throttle(runtime: Runtime, attempt: LoginAttempt, known_source: bool) -> None:
    """Refuse a try that must wait (429); count one from a source the name has not logged in from against the
    name's ceiling; delay one from a known source while that ceiling holds."""
    settings, shared = runtime.settings, runtime.shared
    for key in attempt.throttled_by(known_source):
        wait = await shared.held_for(key)
        if wait > 0:
            raise await _refused(runtime, attempt, key, wait)
    window = settings.login_account_window_seconds
    held = await shared.held_for(attempt.account)
    if known_source:
        if held > 0:
            await asyncio.sleep(settings.login_ceiling_delay_seconds)
        return
    if held > 0:
        raise await _refused(runtime, attempt, attempt.account, held)
    # Counted before the check, so that tries arriving together from many sources cannot all slip under it.
    tries = await shared.count(attempt.account, window)
    ceiling = settings.login_account_ceiling
    if tries >= ceiling:
        await shared.hold(attempt.account, window)
        if tries > ceiling:  # came in together with the one that reached it
            raise await _refused(runtime, attempt, attempt.account, window)
        await _campaign(runtime, attempt, tries)


async def is_known_source(runtime: Runtime, attempt: LoginAttempt) -> bool:
    """Whether this name had a good login from this source in the last `login_known_source_days`: one lookup by
    primary key, at every try."""
    async with runtime.db.sessions() as session:
        known = await session.get(KnownLoginSource, (attempt.name, attempt.source))
    return known is not None and known.last_login_at > _known_since(runtime.settings)


def _known_since(settings: BridgeSettings) -> datetime:
    return utcnow() - timedelta(days=settings.login_known_source_days)


def _remember_source(is_sqlite: bool, attempt: LoginAttempt) -> Any:
    """This name's good login from this source, now (the row made or moved on in one statement: two replicas
    may let the same owner in at once)."""
    insert = (sqlite.insert if is_sqlite else postgresql.insert)(KnownLoginSource)
    statement = insert.values(name_hmac=attempt.name, source_hmac=attempt.source, last_login_at=utcnow())
    return statement.on_conflict_do_update(index_elements=["name_hmac", "source_hmac"],
                                           set_={"last_login_at": statement.excluded.last_login_at})


async def _check(runtime: Runtime, attempt: LoginAttempt, password: str, known_source: bool) -> Login:
    settings = runtime.settings
    async with runtime.db.sessions() as session:
        user = await session.get(Dispatcher, attempt.username)
    checks = password_checks(settings.login_hash_threads, settings.login_hash_queue)
    matches, new_hash = await checks.check(password, user.password_hash if user else None,
                                           known_source=known_source)
    if not matches or user is None or user.disabled:
        await _failed(runtime, attempt, known_source, "unknown name" if user is None else
                      "wrong password" if not matches else "disabled")
        raise wrong_credentials()
    async with runtime.db.transaction() as session:
        stored = await session.get(Dispatcher, user.username)
        if stored is None or not still_current(stored, user.epoch):  # changed while the password was checked
            raise wrong_credentials()
        if new_hash is not None:  # an older kind of hash (the same password: the epoch stays)
            stored.password_hash = new_hash
            session.add(stored)
        audit(session, stored, "login", "dispatcher", stored.username)
        await session.execute(_remember_source(runtime.db.is_sqlite, attempt))
        # Sources nobody logged in from lately are forgotten (a few rows: good logins are rare, and indexed).
        await session.execute(delete(KnownLoginSource).where(
            col(KnownLoginSource.last_login_at) < _known_since(settings)))
        login = Login(Actor(stored.username, stored.role), stored.epoch)
    await runtime.shared.forget(attempt.pair)
    return login


async def _failed(runtime: Runtime, attempt: LoginAttempt, known_source: bool, reason: str) -> None:
    """Count a failed login in each run it belongs to and make the next try wait past the free ones; audited."""
    settings, shared = runtime.settings, runtime.shared
    counted = attempt.throttled_by(known_source)
    runs = [await shared.count(key, settings.login_failures_forgotten_seconds) for key in counted]
    for key, run in zip(counted, runs, strict=True):
        beyond = run - settings.login_free_failures
        if beyond >= 0:
            # (The exponent is capped: a long enough run would overflow a float.)
            await shared.hold(key, min(settings.login_max_delay_seconds, 2.0 ** min(beyond, 30)))
    await _audit_attempt(runtime, attempt, "login_failed", f"{reason}; {runs[0]} in a row for this name from "
                         "this source" + ("" if known_source else f", {runs[1]} from this source"))


async def _refused(runtime: Runtime, attempt: LoginAttempt, key: str, wait: float) -> ServiceError:
    """A try that must wait; audited once per wait, not per try (hammering a held login must not flood the
    audit chain)."""
    if await runtime.shared.count(key + ":refused", wait) == 1:
        await _audit_attempt(runtime, attempt, "login_throttled", f"tries refused for {math.ceil(wait)} s")
    return login_throttled(wait)


async def _campaign(runtime: Runtime, attempt: LoginAttempt, tries: int) -> None:
    """The name's ceiling is reached: someone is guessing it from many places. Said loudly, once per ceiling."""
    window = math.ceil(runtime.settings.login_account_window_seconds)
    log.warning("login guessing campaign: a name reached its ceiling of tries from sources it has not logged in "
                "from", extra={"event": "login_guessing_campaign", "name_hmac": attempt.name, "tries": tries,
                              "refused_for_seconds": window})
    runtime.metrics.counter("bm_login_guessing_campaigns", "Login names that reached their ceiling of tries from "
                            "sources they have not logged in from recently (login_account_ceiling): guessing "
                            "campaigns").inc()
    await _audit_attempt(runtime, attempt, "login_campaign", f"{tries} tries from sources this name has not logged "
                         f"in from recently; such tries refused for {window} s")


async def _audit_attempt(runtime: Runtime, attempt: LoginAttempt, action: str, detail: str) -> None:
    """Audit a login that did not succeed under the account its name is; a name that is no account only by its
    keyed hash (it may be a password typed into the wrong field, and the audit chain is permanent)."""
    async with runtime.db.transaction() as session:
        account = await session.get(Dispatcher, attempt.username)
        target = account.username if account is not None else f"name-hmac:{attempt.name}"
        audit(session, _Unauthenticated(), action, "dispatcher", target, detail)


# ---- every request ------------------------------------------------------------------------------------------


async def current_actor(runtime: RuntimeDep, token: Annotated[str | None, Depends(oauth2_scheme)]) -> Actor:
    if not token:
        raise _unauthorised("a dispatcher's bearer token is required",
                            "het bearer-token van een centralist is verplicht")
    claims = read_token(runtime.settings.dispatcher_token_secret, token)
    async with runtime.db.sessions() as session:
        user = await session.get(Dispatcher, claims.username)
    if user is None or not still_current(user, claims.epoch) or user.role != claims.role:
        raise _unauthorised("this token no longer speaks for its user: log in again",
                            "dit token geldt niet meer voor deze gebruiker: log opnieuw in")
    return Actor(user.username, user.role)


def require_role(*roles: str) -> Any:  # FastAPI types `Depends(...)` as Any
    async def dependency(actor: Annotated[Actor, Depends(current_actor)]) -> Actor:
        if actor.role not in roles:
            raise ServiceError(403, "forbidden", f"this needs the role {' or '.join(roles)}",
                               detail_nl=f"hiervoor is de rol {' of '.join(roles)} nodig")
        return actor

    return Depends(dependency)


AnyDispatcher = Annotated[Actor, require_role("dispatcher", "supervisor")]
Supervisor = Annotated[Actor, require_role("supervisor")]
