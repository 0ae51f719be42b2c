"""Abuse limits for citizen routes, keyed without addresses (see burgermelding_shared.ratelimit).

A client that presents an installation credential is limited per installation, and its address only by a
coarse guard sized for the thousands of phones a mobile network puts behind one address. A client without a
credential (Open311, an old app) is limited per address, as before.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from dataclasses import dataclass, field
from typing import Literal

from burgermelding_shared.ratelimit import AnonymousClientKeys, RateLimiter, rate_limited
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
    keys: AnonymousClientKeys = field(default_factory=AnonymousClientKeys)

    @classmethod
    def from_settings(cls, settings: IntakeSettings) -> IntakeLimits:
        return cls(creation=RateLimiter(settings.reports_per_client, settings.reports_per_seconds),
                   token_use=RateLimiter(settings.token_uses_per_client, 60),
                   wrong_tokens=RateLimiter(settings.wrong_tokens_per_report, 600),
                   creation_guard=RateLimiter(settings.reports_per_address_guard, settings.reports_per_seconds),
                   token_use_guard=RateLimiter(settings.token_uses_per_address_guard, 60),
                   registration=RateLimiter(settings.installations_per_address, 3600),
                   tag_secret=settings.token_secret)

    def submitter(self, sender: Sender) -> tuple[str, SubmitterKind]:
        """The daily pseudonym reports are counted by (verification's flood rule, the bridge's witnesses).

        An installation's is an HMAC of its id and the day under the service's secret: the same on every
        replica and after a restart, so one phone is one witness everywhere; it identifies an installation,
        never a person. An address's uses the salt that lives only in this process's memory (ratelimit.py), so
        no stored tag can ever be traced back to an address."""
        if sender.installation_id:
            day = int(time.time() // 86400)
            message = f"installation-tag:{day}:{sender.installation_id}".encode()
            return hmac.new(self.tag_secret.encode(), message, hashlib.sha256).hexdigest()[:32], "installation"
        return self.keys.key(sender.address), "address"

    def _per_sender(self, per_client: RateLimiter, guard: RateLimiter, scope: str, sender: Sender) -> None:
        tag, kind = self.submitter(sender)
        # The client's own limit first: an installation that floods is refused without draining the guard
        # that the honest witnesses behind the same address share.
        per_client.enforce(f"{scope}:{kind}:{tag}")
        if kind == "installation":
            guard.enforce(f"{scope}-guard:" + self.keys.key(sender.address))

    def creating(self, sender: Sender) -> None:
        self._per_sender(self.creation, self.creation_guard, "create", sender)

    def using_token(self, sender: Sender) -> None:
        self._per_sender(self.token_use, self.token_use_guard, "token", sender)

    def may_register(self, address: str | None) -> None:
        """429 if this address has used up its registrations (counts nothing: see `registered`)."""
        wait = self.registration.peek("register:" + self.keys.key(address))
        if wait > 0:
            raise rate_limited(wait, "too many registrations from this network",
                               "Te veel registraties vanaf dit netwerk")

    def registered(self, address: str | None) -> None:
        self.registration.check("register:" + self.keys.key(address))

    def refuse_if_guessing(self, report_id: str) -> None:
        wait = self.wrong_tokens.peek(report_id)
        if wait > 0:
            raise rate_limited(wait, "too many wrong access tokens for this report",
                               "Te vaak een verkeerde toegangscode voor deze melding")

    def count_wrong_token(self, report_id: str) -> None:
        self.wrong_tokens.check(report_id)
