"""Open311 integrators' api keys: issued and revoked by a command (`burgermelding-report-intake integrators`).

A key is `bm311_<id>_<secret>`: the id finds the integrator, the secret proves it; only the secret's SHA-256 is
stored (it is random and long, so a plain hash is enough), and the key is shown once, when issued. A request
with a key counts against that integrator's own limit, not against the address its server shares with
everyone behind it, and its reports are marked as the integrator's. Without a key, Open311 requests count
against their address as before. A wrong, malformed or revoked key is refused (403), never ignored: an
integrator must learn at once that its key no longer works.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from burgermelding_shared import auditchain
from burgermelding_shared.db import Database
from burgermelding_shared.errors import ServiceError
from burgermelding_shared.timeutil import utcnow
from report_intake.models import Integrator, audit

KEY_FORMAT = re.compile(r"bm311_([0-9a-f]{12})_([A-Za-z0-9_-]{43})")


@dataclass(frozen=True)
class IssuedKey:
    integrator_id: str
    api_key: str  # shown once


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def invalid_api_key() -> ServiceError:
    return ServiceError(
        403,
        "invalid_api_key",
        "this api_key is not valid (unknown, malformed or revoked); send the request without one, or ask the "
        "police for a new key",
        detail_nl="deze api_key is niet geldig (onbekend, verkeerd gevormd of ingetrokken); stuur het verzoek "
        "zonder, of vraag de politie om een nieuwe sleutel",
    )


def _record(session: AsyncSession, action: str, integrator_id: str, operator: str, detail: dict) -> None:
    auditchain.record(
        session,
        audit,
        actor=operator,
        role="operator",
        action=action,
        target_type="integrator",
        target_id=integrator_id,
        detail=detail,
    )


async def issue(db: Database, name: str, reports_per_hour: int, operator: str) -> IssuedKey:
    integrator_id, secret = secrets.token_hex(6), secrets.token_urlsafe(32)
    async with db.transaction() as session:
        _record(
            session, "integrator.issued", integrator_id, operator, {"name": name, "reports_per_hour": reports_per_hour}
        )
        session.add(
            Integrator(
                id=integrator_id,
                name=name,
                key_hash=_digest(secret),
                reports_per_hour=reports_per_hour,
                issued_at=utcnow(),
            )
        )
    return IssuedKey(integrator_id, f"bm311_{integrator_id}_{secret}")


async def revoke(db: Database, integrator_id: str, operator: str) -> bool:
    async with db.transaction() as session:
        integrator = await session.get(Integrator, integrator_id)
        if integrator is None:
            return False
        integrator.revoked_at = integrator.revoked_at or utcnow()
        _record(session, "integrator.revoked", integrator_id, operator, {"name": integrator.name})
    return True


async def listing(db: Database) -> list[Integrator]:
    async with db.sessions() as session:
        return list((await session.execute(select(Integrator).order_by(col(Integrator.issued_at)))).scalars())


async def authenticate(db: Database, api_key: str) -> Integrator:
    """The integrator whose key this is, or 403."""
    match = KEY_FORMAT.fullmatch(api_key.strip())
    if match is None:
        raise invalid_api_key()
    integrator_id, secret = match.groups()
    async with db.sessions() as session:
        integrator = await session.get(Integrator, integrator_id)
    if (
        integrator is None
        or integrator.revoked_at is not None
        or not hmac.compare_digest(integrator.key_hash, _digest(secret))
    ):
        raise invalid_api_key()
    return integrator
