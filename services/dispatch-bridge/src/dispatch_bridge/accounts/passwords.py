"""Dispatcher passwords: hashing (Argon2, older scrypt hashes still read) in a bounded pool of its own."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import threading
from concurrent.futures import Future, ThreadPoolExecutor
from functools import cache
from typing import ClassVar

from pwdlib import PasswordHash
from pwdlib.hashers.argon2 import Argon2Hasher

from burgermelding_shared.errors import ServiceError


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


BUSY_SECONDS = 2


def logins_busy() -> ServiceError:
    return ServiceError(
        503,
        "logins_busy",
        f"too many logins at once; try again in {BUSY_SECONDS} s",
        detail_nl=f"te veel inlogpogingen tegelijk; probeer het over {BUSY_SECONDS} s opnieuw",
        headers={"Retry-After": str(BUSY_SECONDS)},
    )
