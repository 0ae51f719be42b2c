"""An installation's credential: checked on a request, revoked, and bound to the reports it made."""

from __future__ import annotations

import hashlib
import hmac
import re
from dataclasses import dataclass

from sqlmodel import select

from burgermelding_shared.db import Database
from burgermelding_shared.errors import ServiceError
from burgermelding_shared.timeutil import utcnow
from report_intake.installations.senders import independent_source
from report_intake.models import Installation

CREDENTIAL_PREFIX = "bmi1"


CREDENTIAL_PATTERN = re.compile(rf"^{CREDENTIAL_PREFIX}\.([0-9a-f]{{32}})\.([A-Za-z0-9_-]{{43}})$")


def secret_hash(secret: str) -> str:
    return hashlib.sha256(f"installation-secret:{secret}".encode()).hexdigest()


def invalid_credential() -> ServiceError:
    # One answer for a malformed, unknown or forged credential: nothing to probe.
    return ServiceError(
        401,
        "installation_credential_invalid",
        "the installation credential is not valid; register the installation again",
        detail_nl="De installatiecode is niet geldig; registreer de app opnieuw",
    )


@dataclass(frozen=True)
class Authenticated:
    """The installation a presented credential opens, as a request needs it."""

    installation_id: str
    independent_source: str | None  # as `independent_source` decides it now


async def authenticate(db: Database, credential: str) -> Authenticated:
    """The installation a presented credential opens; 401 for anything else."""
    match = CREDENTIAL_PATTERN.match(credential.strip())
    if match is None:
        raise invalid_credential()
    installation_id, credential_secret = match.groups()
    async with db.sessions() as session:
        installation = await session.get(Installation, installation_id)
    if installation is None or not hmac.compare_digest(installation.secret_hash, secret_hash(credential_secret)):
        raise invalid_credential()
    if installation.revoked_at is not None:
        raise revoked()
    return Authenticated(installation_id, independent_source(installation, utcnow()))


def revoked() -> ServiceError:
    return ServiceError(
        401,
        "installation_revoked",
        "this installation was revoked; register it again",
        detail_nl="Deze installatie is ingetrokken; registreer de app opnieuw",
    )


async def revoke(db: Database, installation_id: str) -> bool:
    """Revoke an installation (the app resetting itself, or an operator blocking abuse); False if unknown."""
    async with db.transaction() as session:
        installation = await session.get(Installation, installation_id, with_for_update=True)
        if installation is None:
            return False
        installation.revoked_at = installation.revoked_at or utcnow()
        session.add(installation)
    return True


def binding(secret: str, report_id: str, installation_id: str) -> str:
    """What a report keeps of the installation that made it: checkable, not linkable without the secret."""
    return hmac.new(
        secret.encode(), f"installation-binding:{report_id}:{installation_id}".encode(), hashlib.sha256
    ).hexdigest()


async def installation_of_report(db: Database, secret: str, report_id: str, report_binding: str) -> str | None:
    """The installation a report is bound to, found by trying each (an operator's command, not a hot path:
    about a microsecond per installation)."""
    async with db.sessions() as session:
        ids = (await session.execute(select(Installation.id))).scalars().all()
    return next((i for i in ids if hmac.compare_digest(binding(secret, report_id, i), report_binding)), None)
