"""The console's sessions: a login with the dispatchers' accounts, held in a cookie, ended on logout, after
inactivity, or at once when the account is disabled, enabled, or given a new password or role (each session
carries the account's epoch at login, checked on every request as a bearer token's is: `auth.still_current`).

The cookie (`__Host-` prefixed: Secure, Path=/, no Domain; HttpOnly; SameSite=Strict) holds a random token; the
database holds only its SHA-256, so a copy of the database does not hand out sessions, and every replica of the
bridge knows every session. Each session has its own CSRF token, sent back with every change as a form field or
the `X-CSRF-Token` header and compared in constant time; a change whose `Origin` is another site is refused
too. Before login there is no session: the login form is protected by a double-submit token in a short-lived
cookie of its own.

Inactivity is what the dispatcher does, not what the screen does: the live feed does not keep a session alive,
the page tells the bridge about keys pressed and clicks at most once a minute (`/console/activity`).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import timedelta
from typing import Annotated
from urllib.parse import urlsplit

from fastapi import Depends, Request
from fastapi.responses import Response

from burgermelding_shared.app import Runtime, RuntimeDep
from burgermelding_shared.errors import ServiceError
from burgermelding_shared.timeutil import utcnow
from dispatch_bridge.accounts.logins import Login, wrong_credentials
from dispatch_bridge.accounts.tokens import Actor, still_current
from dispatch_bridge.audit import audit
from dispatch_bridge.models import ConsoleSession, Dispatcher

SESSION_COOKIE = "__Host-bm_console"
LOGIN_COOKIE = "__Host-bm_console_login"  # the login form's double-submit CSRF token
LANGUAGE_COOKIE = "__Host-bm_console_lang"
LANGUAGES = ("nl", "en")
TOUCH_EVERY = timedelta(seconds=30)  # last_seen_at is written at most this often (a write per request is waste)


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def new_login_token() -> str:
    return secrets.token_urlsafe(32)


def set_cookie(response: Response, name: str, value: str, max_age: int | None = None) -> None:
    response.set_cookie(name, value, max_age=max_age, path="/", secure=True, httponly=True, samesite="strict")


@dataclass(frozen=True)
class ConsoleUser:
    """A logged-in dispatcher as the console sees them: the API's actor, their session's CSRF token and language."""

    actor: Actor
    csrf_token: str
    language: str
    session_digest: str

    @property
    def is_supervisor(self) -> bool:
        return self.actor.role == "supervisor"


class LoginRequired(Exception):
    """No valid session: the page answers with a redirect to the login (or 401 to the page's script)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason  # expired | ended | none


async def start(runtime: Runtime, login: Login, language: str) -> tuple[str, str]:
    """A new session for a dispatcher who just logged in (`auth.authenticate`); returns (cookie token, CSRF
    token). It carries the epoch the password was checked at, so that any later change to the account ends it;
    if the account has changed since that check (disabled, or a new password or role: a reset landing between
    the two), there is no session, and the login answers as a wrong password would (401): the password that was
    checked may no longer be the account's."""
    actor = login.actor
    token, csrf = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
    now = utcnow()
    async with runtime.db.transaction() as session:
        user = await session.get(Dispatcher, actor.username)
        if not still_current(user, login.epoch):
            raise wrong_credentials()
        session.add(
            ConsoleSession(
                token_sha256=_digest(token),
                username=actor.username,
                csrf_token=csrf,
                language=language if language in LANGUAGES else "nl",
                created_at=now,
                last_seen_at=now,
                account_epoch=login.epoch,
            )
        )
        audit(session, actor, "console_login", "dispatcher", actor.username)
    return token, csrf


async def end(runtime: Runtime, user: ConsoleUser, why: str = "logout") -> None:
    async with runtime.db.transaction() as session:
        stored = await session.get(ConsoleSession, user.session_digest, with_for_update=True)
        if stored is not None and stored.ended_at is None:
            stored.ended_at = utcnow()
            session.add(stored)
            audit(session, user.actor, f"console_{why}", "dispatcher", user.actor.username)


async def end_cookie(runtime: Runtime, token: str | None) -> None:
    """End the session of a cookie a browser still carries when it logs in again (one session per browser)."""
    if not token:
        return
    async with runtime.db.transaction() as session:
        stored = await session.get(ConsoleSession, _digest(token), with_for_update=True)
        if stored is not None and stored.ended_at is None:
            stored.ended_at = utcnow()
            session.add(stored)


async def find(runtime: Runtime, token: str | None, *, activity: bool) -> ConsoleUser:
    """The session of this cookie, if it is still on. `activity`: the dispatcher did something (a page, an
    action), so the inactivity clock starts again; the live feed asks with activity=False."""
    if not token:
        raise LoginRequired("none")
    idle = timedelta(minutes=runtime.settings.console_idle_minutes)
    digest = _digest(token)
    now = utcnow()
    ended: str | None = None
    async with runtime.db.transaction() as session:  # (raising inside would roll back the ending)
        stored = await session.get(ConsoleSession, digest)
        if stored is None or stored.ended_at is not None:
            raise LoginRequired("ended")
        user = await session.get(Dispatcher, stored.username)
        if not still_current(user, stored.account_epoch):
            ended = "ended"
        elif now - stored.created_at > timedelta(hours=runtime.settings.console_session_hours):
            ended = "expired"
            audit(session, Actor(user.username, user.role), "console_session_aged", "dispatcher", user.username)
        elif now - stored.last_seen_at > idle:
            ended = "expired"
            audit(session, Actor(user.username, user.role), "console_timeout", "dispatcher", user.username)
        elif activity and now - stored.last_seen_at > TOUCH_EVERY:
            stored.last_seen_at = now
            session.add(stored)
        if ended is not None:
            stored.ended_at = now
            session.add(stored)
    if ended is not None or user is None:
        raise LoginRequired(ended or "ended")
    return ConsoleUser(Actor(user.username, user.role), stored.csrf_token, stored.language, digest)


FORM_SECONDS = 12 * 3600  # how long a used form nonce is remembered (longer than any session)


async def first_submission(runtime: Runtime, user: ConsoleUser, form: dict[str, object]) -> bool:
    """Whether this form is sent for the first time: a double click, or the browser sending it again, must not
    start a second Burgernet action or send the citizen the question twice. Each form carries a nonce of its
    own; the first submission takes it (in the shared state, so across replicas)."""
    nonce = str(form.get("nonce") or "")[:64]
    if not nonce:
        return True  # an old page without one: the checks of the change itself still apply
    return await runtime.shared.take(f"console-form:{user.session_digest}:{nonce}", FORM_SECONDS)


def new_nonce() -> str:
    return secrets.token_urlsafe(16)


async def set_language(runtime: Runtime, user: ConsoleUser, language: str) -> None:
    async with runtime.db.transaction() as session:
        stored = await session.get(ConsoleSession, user.session_digest, with_for_update=True)
        if stored is not None:
            stored.language = language
            session.add(stored)


def csrf_refused() -> ServiceError:
    return ServiceError(
        403,
        "csrf_token_invalid",
        "this form is no longer valid: reload the page and try again",
        detail_nl="dit formulier is niet meer geldig: laad de pagina opnieuw en probeer het nog eens",
    )


def same_origin(request: Request) -> bool:
    """A change must come from our own pages. Browsers send Origin on every POST; a request without it is not
    from a browser form (and still needs the CSRF token)."""
    if request.headers.get("sec-fetch-site") == "cross-site":
        return False
    origin = request.headers.get("origin")
    return origin is None or urlsplit(origin).netloc == request.headers.get("host", "")


def check_csrf(request: Request, expected: str, sent: str | None) -> None:
    if not same_origin(request) or not sent or not hmac.compare_digest(sent.encode(), expected.encode()):
        raise csrf_refused()


async def page_user(request: Request, runtime: RuntimeDep) -> ConsoleUser:
    return await find(runtime, request.cookies.get(SESSION_COOKIE), activity=True)


async def feed_user(request: Request, runtime: RuntimeDep) -> ConsoleUser:
    return await find(runtime, request.cookies.get(SESSION_COOKIE), activity=False)


async def supervisor_user(user: Annotated[ConsoleUser, Depends(page_user)]) -> ConsoleUser:
    if not user.is_supervisor:
        raise ServiceError(
            403, "forbidden", "this page is for supervisors", detail_nl="deze pagina is voor supervisors"
        )
    return user


User = Annotated[ConsoleUser, Depends(page_user)]
FeedUser = Annotated[ConsoleUser, Depends(feed_user)]
SupervisorUser = Annotated[ConsoleUser, Depends(supervisor_user)]
