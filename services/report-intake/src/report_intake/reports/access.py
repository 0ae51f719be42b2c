"""Who may read or change a report: its access token (sealed for replays, stored only as a hash) and, for an
installation's report, its credential."""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import select

from burgermelding_shared.app import Runtime
from burgermelding_shared.errors import ServiceError
from burgermelding_shared.ratelimit import Reservation
from report_intake.installations import credentials
from report_intake.installations.senders import Sender
from report_intake.limits import IntakeLimits
from report_intake.models import (
    Report,
)


def not_found() -> ServiceError:
    # The same answer for an unknown report, a wrong token and another report's token: nothing to probe.
    return ServiceError(
        404,
        "report_not_found",
        "no report with this id for this access token",
        detail_nl="Geen melding met dit nummer voor deze toegangscode",
    )


def new_access_token() -> str:
    """256 random bits, URL-safe."""
    return base64.urlsafe_b64encode(secrets.token_bytes(32)).rstrip(b"=").decode()


def _token_pad(secret: str, report_id: str, idempotency_key: str) -> bytes:
    return hmac.new(secret.encode(), f"token-seal:{report_id}:{idempotency_key}".encode(), hashlib.sha256).digest()


def seal_token(secret: str, report_id: str, idempotency_key: str, token: str) -> str:
    """The token sealed for one purpose: replaying its creation answer to a client that retries (its first
    answer may have been lost on the way, and without the token the citizen can never follow the report up).

    It is XORed with a one-time pad that needs both the server secret (not in the database) and the client's
    Idempotency-Key (stored only as a hash), and is purged with the idempotency record after a day. For
    reading a report the database holds nothing but the token's salted hash."""
    raw = base64.urlsafe_b64decode(token + "=")
    return bytes(a ^ b for a, b in zip(raw, _token_pad(secret, report_id, idempotency_key), strict=True)).hex()


def unseal_token(secret: str, report_id: str, idempotency_key: str, sealed: str) -> str:
    pad = _token_pad(secret, report_id, idempotency_key)
    raw = bytes(a ^ b for a, b in zip(bytes.fromhex(sealed), pad, strict=True))
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def hash_token(salt: str, token: str) -> str:
    return hashlib.sha256(f"{salt}:{token}".encode()).hexdigest()


@dataclass(frozen=True)
class Access:
    """What a follow-up request brings: the report's access token, and who sends it."""

    token: str | None
    sender: Sender


def check_installation(report: Report, sender: Sender, secret: str, changing: bool) -> None:
    """A report made by an installation is changed only with that installation's credential, and never opened
    with another's (a credential copied elsewhere, or a token given to someone else's app)."""
    if report.installation_binding is None:
        return
    if sender.installation_id is None:
        if changing:
            raise credential_required()
        return
    if not hmac.compare_digest(
        report.installation_binding, credentials.binding(secret, report.id, sender.installation_id)
    ):
        raise installation_mismatch()


def credential_required() -> ServiceError:
    return ServiceError(
        401,
        "installation_credential_required",
        "this report was made by an app installation: send its Installation-Credential to change it",
        detail_nl="Deze melding is met een app gedaan: stuur de Installation-Credential van die app "
        "mee om haar te wijzigen",
    )


def installation_mismatch() -> ServiceError:
    return ServiceError(
        403,
        "installation_mismatch",
        "this report was made by another installation",
        detail_nl="Deze melding is met een andere installatie gedaan",
    )


async def authorised_report(
    runtime: Runtime, session: AsyncSession, report_id: str, access: Access, changing: bool = False, lock: bool = False
) -> Report:
    """The report this token opens, or the one 404. Repeated wrong tokens for a report are slowed down. With
    `lock`, the report is locked for the rest of the caller's transaction (PostgreSQL), so that a change made at
    the same time (a status event from the bridge, say) is not overwritten by one made from what was read before."""
    limits: IntakeLimits | None = runtime.extras.get("limits")
    # Counted before the token is checked, so that guesses sent in parallel cannot all pass; given back if it is
    # right (only wrong ones count) or the lookup fails.
    attempt = await limits.token_attempt(report_id) if limits is not None else Reservation()
    report = None
    token = access.token
    async with attempt:
        if token and len(report_id) <= 36 and len(token) <= 128:
            query = select(Report).where(Report.id == report_id)
            report = (await session.execute(query.with_for_update() if lock else query)).scalars().first()
    if report is None or not hmac.compare_digest(report.token_hash, hash_token(report.token_salt, token or "")):
        raise not_found()
    await attempt.give_back()
    check_installation(report, access.sender, runtime.settings.token_secret, changing)
    return report
