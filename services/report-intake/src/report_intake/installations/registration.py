"""Registering an installation: a signed challenge, a proof of work, a credential once."""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, update
from sqlalchemy.exc import IntegrityError
from sqlmodel import col

from burgermelding_shared.background import BackgroundLoop
from burgermelding_shared.db import Database
from burgermelding_shared.errors import ServiceError
from burgermelding_shared.ratelimit import Reservation
from burgermelding_shared.timeutil import utcnow
from report_intake.installations.credentials import CREDENTIAL_PREFIX, secret_hash
from report_intake.models import Installation, SpentChallenge

CHALLENGE_VERSION = "c1"


CHALLENGE_TTL = timedelta(minutes=10)


SOLUTION_PATTERN = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


# How long after its registration an installation counts, with the others registered from its address in their
# own first hour, as one witness (`independent_source`).
NEW_INSTALLATION = timedelta(hours=1)


@dataclass(frozen=True)
class Challenge:
    value: str
    difficulty_bits: int
    expires_at: datetime


@dataclass(frozen=True)
class Registered:
    installation_id: str
    credential: str


def _sign(secret: str, body: str) -> str:
    digest = hmac.new(secret.encode(), f"installation-challenge:{body}".encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest[:18]).decode()


def issue_challenge(secret: str, difficulty_bits: int) -> Challenge:
    """A fresh challenge: nothing is stored; its signature and expiry travel inside it."""
    expires_at = utcnow().replace(microsecond=0) + CHALLENGE_TTL
    body = f"{CHALLENGE_VERSION}.{difficulty_bits}.{int(expires_at.timestamp())}.{secrets.token_urlsafe(18)}"
    return Challenge(f"{body}.{_sign(secret, body)}", difficulty_bits, expires_at)


def leading_zero_bits(digest: bytes) -> int:
    value = int.from_bytes(digest, "big")
    return len(digest) * 8 - value.bit_length()


def solves(challenge: str, solution: str, bits: int) -> bool:
    return leading_zero_bits(hashlib.sha256(f"{challenge}:{solution}".encode()).digest()) >= bits


def solve(challenge: str, bits: int) -> str:
    """What the app does (in its own language): count until the hash has enough zero bits. Used by tests and
    the flood benchmark; about 2**bits hashes."""
    counter = 0
    while not solves(challenge, str(counter), bits):
        counter += 1
    return str(counter)


def invalid_challenge() -> ServiceError:
    return ServiceError(
        422,
        "challenge_invalid",
        "the challenge was not issued by this service or was altered",
        detail_nl="De opgave is niet door deze dienst uitgegeven of is gewijzigd",
    )


def check_proof(secret: str, challenge: str, solution: str) -> None:
    """A genuine, unexpired challenge and a solution that meets its difficulty; raises otherwise."""
    parts = challenge.split(".")
    if len(challenge) > 200 or len(parts) != 5 or parts[0] != CHALLENGE_VERSION:
        raise invalid_challenge()
    body, signature = ".".join(parts[:4]), parts[4]
    if not hmac.compare_digest(signature.encode(), _sign(secret, body).encode()):
        raise invalid_challenge()
    bits, expires = int(parts[1]), int(parts[2])  # digits: we signed them
    if utcnow().timestamp() > expires:
        raise expired_challenge()
    if not SOLUTION_PATTERN.match(solution) or not solves(challenge, solution, bits):
        raise invalid_proof(bits)


def expired_challenge() -> ServiceError:
    return ServiceError(
        422,
        "challenge_expired",
        "the challenge has expired; ask for a new one",
        detail_nl="De opgave is verlopen; vraag een nieuwe aan",
    )


def invalid_proof(bits: int) -> ServiceError:
    return ServiceError(
        422,
        "proof_of_work_invalid",
        f"SHA-256 of '<challenge>:<solution>' does not start with {bits} zero bits",
        detail_nl=f"SHA-256 van '<challenge>:<solution>' begint niet met {bits} nulbits",
    )


def replayed() -> ServiceError:
    return ServiceError(
        409,
        "proof_of_work_replayed",
        "this challenge was already redeemed; solve a new one",
        detail_nl="Deze opgave is al ingewisseld; los een nieuwe op",
    )


async def register(
    db: Database,
    secret: str,
    challenge: str,
    solution: str,
    reserve: Callable[[], Awaitable[Reservation]],
    registered_from: str,
) -> Registered:
    """Redeem a solved challenge, once, for a new credential; `registered_from` is the pseudonym of the
    client's address (kept for the installation's first hour: `independent_source`).

    The per-address limit (`reserve`) counts only new installations: it is taken once the proof holds and given
    back if no installation is stored, so junk proofs and replays cost an address nothing and one abuser behind
    a shared address cannot use up the registrations of the thousands of phones beside it (a refused client
    keeps its unspent challenge to retry). It is taken before the installation is stored, in one step with its
    check: registrations sent in parallel cannot all pass."""
    check_proof(secret, challenge, solution)
    digest = hashlib.sha256(challenge.encode()).hexdigest()
    async with db.sessions() as session:
        if await session.get(SpentChallenge, digest) is not None:
            raise replayed()
    installation_id = secrets.token_hex(16)
    credential_secret = base64.urlsafe_b64encode(secrets.token_bytes(32)).rstrip(b"=").decode()
    now = utcnow()
    async with await reserve():  # given back if the installation is not stored
        try:
            async with db.transaction() as session:
                # The spent challenge and the installation commit together: a replay finds the first and fails.
                session.add(SpentChallenge(digest=digest, expires_at=now + CHALLENGE_TTL))
                session.add(
                    Installation(
                        id=installation_id,
                        secret_hash=secret_hash(credential_secret),
                        created_on=now.date().isoformat(),
                        registered_from=registered_from,
                        new_until=now + NEW_INSTALLATION,
                    )
                )
        except IntegrityError as exc:  # a replay racing the first redemption
            raise replayed() from exc
    return Registered(installation_id, f"{CREDENTIAL_PREFIX}.{installation_id}.{credential_secret}")


class RegistrationPurger(BackgroundLoop):
    """Forgets what registering needs only for a while: redeemed challenges once they have expired (an expired
    challenge is refused anyway), and the address an installation registered from once its first hour is over."""

    name = "registration-purger"
    poll_seconds = 600.0

    def __init__(self, db: Database) -> None:
        super().__init__()
        self.db = db

    async def run_once(self) -> int:
        async with self.db.transaction() as session:
            await session.execute(delete(SpentChallenge).where(col(SpentChallenge.expires_at) < utcnow()))
            await session.execute(
                update(Installation)
                .where(col(Installation.new_until) < utcnow())
                .values(registered_from=None, new_until=None)
            )
        return 0
