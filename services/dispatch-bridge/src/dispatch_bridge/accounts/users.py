"""Dispatcher accounts and roles: created, changed, disabled; a change ends every session issued before it."""

from __future__ import annotations

from typing import Literal

from burgermelding_shared.app import Runtime
from burgermelding_shared.db import Database
from burgermelding_shared.errors import ServiceError
from burgermelding_shared.timeutil import utcnow
from dispatch_bridge.accounts.logins import LoginAttempt
from dispatch_bridge.accounts.passwords import hash_password
from dispatch_bridge.accounts.tokens import Actor, end_everything_issued
from dispatch_bridge.audit import audit
from dispatch_bridge.models import Dispatcher

Role = Literal["dispatcher", "supervisor"]
ROLES: tuple[Role, ...] = ("dispatcher", "supervisor")


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
            raise AccountExists(
                f"the user {username} exists already (role {existing.role}); add --reset to give it "
                "this password and role, which ends its tokens and console sessions"
            )
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
            raise ServiceError(
                404, "dispatcher_not_found", "no such dispatcher", detail_nl="deze centralist bestaat niet"
            )
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
