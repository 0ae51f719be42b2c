"""Anonymous installation credentials: telling citizens apart without knowing who they are.

Thousands of phones share one public address behind a mobile network's carrier-grade NAT, so limits and flood
checks keyed on the address refuse exactly the witnesses of a mass incident. The app therefore registers once
and receives a random credential; limits key on the installation instead (see `limits.py`).

Minting a credential costs the client a proof of work (hashcash style): it asks for a challenge, finds a
`solution` such that SHA-256("<challenge>:<solution>") starts with `difficulty_bits` zero bits, and redeems
the pair once. At the default 20 bits that is about a million hashes: roughly a second of a phone's CPU, and a
few tens of milliseconds of a server core, which is why redemption is also limited per address (sized for
carrier-grade NAT) and why every credential is itself limited. Challenges are stateless (signed, expiring);
only a redeemed challenge is remembered, until it expires, so a proof cannot be replayed.

What is stored identifies nobody: a random installation id, the SHA-256 of the credential's secret (256
random bits need no salt), the day it was made and whether it was revoked. Reports are bound to their
installation only through an HMAC under a server secret, so the database alone cannot tell which reports
came from one installation. For its first hour only, an installation also keeps the pseudonym of the address it
registered from (an HMAC under the day's salt, which lives only in memory) and when that hour ends, so that
installations made together from one address count as one witness (`independent_source`); both are erased
once the hour is over. A report made in that hour keeps the pseudonym (`Report.independent_source`) for every
later message about it.
"""

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
from sqlmodel import col, select

from burgermelding_shared.background import BackgroundLoop
from burgermelding_shared.db import Database
from burgermelding_shared.errors import ServiceError
from burgermelding_shared.ratelimit import Reservation
from burgermelding_shared.timeutil import utcnow
from report_intake.models import Installation, SpentChallenge

CREDENTIAL_PREFIX = "bmi1"
CHALLENGE_VERSION = "c1"
CHALLENGE_TTL = timedelta(minutes=10)
CREDENTIAL_PATTERN = re.compile(rf"^{CREDENTIAL_PREFIX}\.([0-9a-f]{{32}})\.([A-Za-z0-9_-]{{43}})$")
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
    return ServiceError(422, "challenge_invalid", "the challenge was not issued by this service or was altered",
                        detail_nl="De opgave is niet door deze dienst uitgegeven of is gewijzigd")


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
    return ServiceError(422, "challenge_expired", "the challenge has expired; ask for a new one",
                        detail_nl="De opgave is verlopen; vraag een nieuwe aan")


def invalid_proof(bits: int) -> ServiceError:
    return ServiceError(422, "proof_of_work_invalid",
                        f"SHA-256 of '<challenge>:<solution>' does not start with {bits} zero bits",
                        detail_nl=f"SHA-256 van '<challenge>:<solution>' begint niet met {bits} nulbits")


def secret_hash(secret: str) -> str:
    return hashlib.sha256(f"installation-secret:{secret}".encode()).hexdigest()


def replayed() -> ServiceError:
    return ServiceError(409, "proof_of_work_replayed", "this challenge was already redeemed; solve a new one",
                        detail_nl="Deze opgave is al ingewisseld; los een nieuwe op")


async def register(db: Database, secret: str, challenge: str, solution: str,
                   reserve: Callable[[], Awaitable[Reservation]], registered_from: str) -> Registered:
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
                session.add(Installation(id=installation_id, secret_hash=secret_hash(credential_secret),
                                         created_on=now.date().isoformat(), registered_from=registered_from,
                                         new_until=now + NEW_INSTALLATION))
        except IntegrityError as exc:  # a replay racing the first redemption
            raise replayed() from exc
    return Registered(installation_id, f"{CREDENTIAL_PREFIX}.{installation_id}.{credential_secret}")


def independent_source(installation: Installation, at: datetime) -> str | None:
    """The witness a report this installation makes at `at` counts as, when that is not the installation
    itself (None); the one rule, decided here only, once per report: the report keeps it
    (`Report.independent_source`), and every later message about it (photos added, display copies made, after
    the hour too) carries the same one.

    One address can register many installations within minutes, so fresh credentials alone would let one
    person be many witnesses; behind carrier-grade NAT many honest witnesses share an address, so the address
    alone cannot decide either. Installations registered from one address count as one source (that address's
    pseudonym) for the reports they make in their first NEW_INSTALLATION; after that each is its own. The window
    is fixed per installation when it registers: nothing a client does later moves it.

    What this rule does not stop, by design: someone who registers many installations and waits out the hour
    before reporting has as many witnesses (the rule raises the cost of a fake crowd, from minutes to an hour
    of patience, and the registration limit per address still bounds how many; it tells nothing about who
    holds a phone). And the pseudonym changes at midnight with the day's salt: installations registered just
    before and just after midnight count as two sources."""
    if installation.registered_from and installation.new_until and at < installation.new_until:
        return installation.registered_from
    return None


def invalid_credential() -> ServiceError:
    # One answer for a malformed, unknown or forged credential: nothing to probe.
    return ServiceError(401, "installation_credential_invalid", "the installation credential is not valid; "
                        "register the installation again", detail_nl="De installatiecode is niet geldig; "
                        "registreer de app opnieuw")


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
    return ServiceError(401, "installation_revoked", "this installation was revoked; register it again",
                        detail_nl="Deze installatie is ingetrokken; registreer de app opnieuw")


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
    return hmac.new(secret.encode(), f"installation-binding:{report_id}:{installation_id}".encode(),
                    hashlib.sha256).hexdigest()


async def installation_of_report(db: Database, secret: str, report_id: str, report_binding: str) -> str | None:
    """The installation a report is bound to, found by trying each (an operator's command, not a hot path:
    about a microsecond per installation)."""
    async with db.sessions() as session:
        ids = (await session.execute(select(Installation.id))).scalars().all()
    return next((i for i in ids if hmac.compare_digest(binding(secret, report_id, i), report_binding)), None)


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
            await session.execute(update(Installation).where(col(Installation.new_until) < utcnow())
                                  .values(registered_from=None, new_until=None))
        return 0
