"""Logging in: throttled per name and source, never locked by a stranger, a guessing campaign alerted."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
import math
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cache
from typing import Any

from sqlalchemy import delete
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import col

from burgermelding_shared.app import Runtime
from burgermelding_shared.errors import ServiceError
from burgermelding_shared.ratelimit import network_of
from burgermelding_shared.timeutil import utcnow
from dispatch_bridge.accounts.passwords import password_checks
from dispatch_bridge.accounts.tokens import Actor, issue_token, still_current
from dispatch_bridge.audit import audit
from dispatch_bridge.config import BridgeSettings
from dispatch_bridge.models import Dispatcher, KnownLoginSource

log = logging.getLogger(__name__)


def wrong_credentials() -> ServiceError:
    return ServiceError(
        401,
        "invalid_credentials",
        "wrong username or password",
        detail_nl="onjuiste gebruikersnaam of onjuist wachtwoord",
    )


def login_throttled(wait: float) -> ServiceError:
    seconds = max(1, math.ceil(wait))
    return ServiceError(
        429,
        "login_throttled",
        f"too many login attempts; try again in {seconds} s",
        detail_nl=f"te veel inlogpogingen; probeer het over {seconds} s opnieuw",
        headers={"Retry-After": str(seconds)},
    )


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
    return issue_token(
        settings.dispatcher_token_secret,
        login.actor.username,
        login.actor.role,
        settings.dispatcher_token_minutes,
        login.epoch,
    )


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
    return statement.on_conflict_do_update(
        index_elements=["name_hmac", "source_hmac"], set_={"last_login_at": statement.excluded.last_login_at}
    )


async def _check(runtime: Runtime, attempt: LoginAttempt, password: str, known_source: bool) -> Login:
    settings = runtime.settings
    async with runtime.db.sessions() as session:
        user = await session.get(Dispatcher, attempt.username)
    checks = password_checks(settings.login_hash_threads, settings.login_hash_queue)
    matches, new_hash = await checks.check(password, user.password_hash if user else None, known_source=known_source)
    if not matches or user is None or user.disabled:
        await _failed(
            runtime,
            attempt,
            known_source,
            "unknown name" if user is None else "wrong password" if not matches else "disabled",
        )
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
        await session.execute(
            delete(KnownLoginSource).where(col(KnownLoginSource.last_login_at) < _known_since(settings))
        )
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
    await _audit_attempt(
        runtime,
        attempt,
        "login_failed",
        f"{reason}; {runs[0]} in a row for this name from "
        "this source" + ("" if known_source else f", {runs[1]} from this source"),
    )


async def _refused(runtime: Runtime, attempt: LoginAttempt, key: str, wait: float) -> ServiceError:
    """A try that must wait; audited once per wait, not per try (hammering a held login must not flood the
    audit chain)."""
    if await runtime.shared.count(key + ":refused", wait) == 1:
        await _audit_attempt(runtime, attempt, "login_throttled", f"tries refused for {math.ceil(wait)} s")
    return login_throttled(wait)


async def _campaign(runtime: Runtime, attempt: LoginAttempt, tries: int) -> None:
    """The name's ceiling is reached: someone is guessing it from many places. Said loudly, once per ceiling."""
    window = math.ceil(runtime.settings.login_account_window_seconds)
    log.warning(
        "login guessing campaign: a name reached its ceiling of tries from sources it has not logged in from",
        extra={
            "event": "login_guessing_campaign",
            "name_hmac": attempt.name,
            "tries": tries,
            "refused_for_seconds": window,
        },
    )
    runtime.metrics.counter(
        "bm_login_guessing_campaigns",
        "Login names that reached their ceiling of tries from "
        "sources they have not logged in from recently (login_account_ceiling): guessing "
        "campaigns",
    ).inc()
    await _audit_attempt(
        runtime,
        attempt,
        "login_campaign",
        f"{tries} tries from sources this name has not logged in from recently; such tries refused for {window} s",
    )


async def _audit_attempt(runtime: Runtime, attempt: LoginAttempt, action: str, detail: str) -> None:
    """Audit a login that did not succeed under the account its name is; a name that is no account only by its
    keyed hash (it may be a password typed into the wrong field, and the audit chain is permanent)."""
    async with runtime.db.transaction() as session:
        account = await session.get(Dispatcher, attempt.username)
        target = account.username if account is not None else f"name-hmac:{attempt.name}"
        audit(session, _Unauthenticated(), action, "dispatcher", target, detail)
