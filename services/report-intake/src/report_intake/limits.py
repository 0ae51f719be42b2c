"""Abuse limits for citizen routes, keyed without addresses (see burgermelding_shared.ratelimit).

A client that presents an installation credential is limited per installation, and its address only by a
coarse guard sized for the thousands of phones a mobile network puts behind one address. A client without a
credential (Open311, an old app) is limited per address, as before.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from dataclasses import dataclass
from typing import Literal

from burgermelding_shared.ratelimit import AnonymousClientKeys, RateLimiter, rate_limited
from burgermelding_shared.sharedstate import SharedState
from report_intake.config import IntakeSettings

SubmitterKind = Literal["installation", "address"]


@dataclass(frozen=True)
class Sender:
    """Who sends a request, as far as limits and flood checks need to know; neither part is ever stored."""

    address: str | None
    installation_id: str | None = None


@dataclass
class IntakeLimits:
    creation: RateLimiter
    token_use: RateLimiter
    wrong_tokens: RateLimiter
    creation_guard: RateLimiter
    token_use_guard: RateLimiter
    registration: RateLimiter
    tag_secret: str
    keys: AnonymousClientKeys

    @classmethod
    def from_settings(cls, settings: IntakeSettings, state: SharedState) -> IntakeLimits:
        """The limits, counted in the service's shared state (one limit across replicas when that is Redis)."""
        def limiter(name: str, capacity: int, per_seconds: float) -> RateLimiter:
            return RateLimiter(capacity, per_seconds, state, name)

        return cls(creation=limiter("create", settings.reports_per_client, settings.reports_per_seconds),
                   token_use=limiter("token", settings.token_uses_per_client, 60),
                   wrong_tokens=limiter("wrong-token", settings.wrong_tokens_per_report, 600),
                   creation_guard=limiter("create-guard", settings.reports_per_address_guard,
                                          settings.reports_per_seconds),
                   token_use_guard=limiter("token-guard", settings.token_uses_per_address_guard, 60),
                   registration=limiter("register", settings.installations_per_address, 3600),
                   tag_secret=settings.token_secret, keys=AnonymousClientKeys(state))

    async def submitter(self, sender: Sender) -> tuple[str, SubmitterKind]:
        """The daily pseudonym reports are counted by (verification's flood rule, the bridge's witnesses).

        An installation's is an HMAC of its id and the day under the service's secret: the same on every
        replica and after a restart, so one phone is one witness everywhere; it identifies an installation,
        never a person. An address's uses the salt of the day that lives only in memory (ratelimit.py), so no
        stored tag can ever be traced back to an address."""
        if sender.installation_id:
            day = int(time.time() // 86400)
            message = f"installation-tag:{day}:{sender.installation_id}".encode()
            return hmac.new(self.tag_secret.encode(), message, hashlib.sha256).hexdigest()[:32], "installation"
        return await self.keys.key(sender.address), "address"

    async def _per_sender(self, per_client: RateLimiter, guard: RateLimiter, sender: Sender,
                          count: bool = True) -> None:
        tag, kind = await self.submitter(sender)
        # The client's own limit first: an installation that floods is refused without draining the guard
        # that the honest witnesses behind the same address share.
        limiters = [(per_client, f"{kind}:{tag}")]
        if kind == "installation":
            limiters.append((guard, await self.keys.key(sender.address)))
        for limiter, key in limiters:
            wait = await (limiter.check(key) if count else limiter.peek(key))
            if wait > 0:
                raise rate_limited(wait)

    async def may_create(self, sender: Sender) -> None:
        """429 if this sender has no new reports left; counts nothing. Asked before a report's uploads are
        read, so that a flood is refused cheaply; `creating` counts once the report turns out to be new."""
        await self._per_sender(self.creation, self.creation_guard, sender, count=False)

    async def creating(self, sender: Sender) -> None:
        """Count a new report (never a replay of one already answered: a phone's honest retries are free)."""
        await self._per_sender(self.creation, self.creation_guard, sender)

    async def using_token(self, sender: Sender) -> None:
        await self._per_sender(self.token_use, self.token_use_guard, sender)

    async def may_register(self, address: str | None) -> None:
        """429 if this address has used up its registrations (counts nothing: see `registered`)."""
        wait = await self.registration.peek(await self.keys.key(address))
        if wait > 0:
            raise rate_limited(wait, "too many registrations from this network",
                               "Te veel registraties vanaf dit netwerk")

    async def registered(self, address: str | None) -> None:
        await self.registration.check(await self.keys.key(address))

    async def refuse_if_guessing(self, report_id: str) -> None:
        wait = await self.wrong_tokens.peek(report_id)
        if wait > 0:
            raise rate_limited(wait, "too many wrong access tokens for this report",
                               "Te vaak een verkeerde toegangscode voor deze melding")

    async def count_wrong_token(self, report_id: str) -> None:
        await self.wrong_tokens.check(report_id)
