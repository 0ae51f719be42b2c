"""Abuse limits for citizen routes, keyed without addresses (see burgermelding_shared.ratelimit)."""

from __future__ import annotations

from dataclasses import dataclass, field

from burgermelding_shared.errors import ServiceError
from burgermelding_shared.ratelimit import AnonymousClientKeys, RateLimiter
from report_intake.config import IntakeSettings


@dataclass
class IntakeLimits:
    creation: RateLimiter
    token_use: RateLimiter
    wrong_tokens: RateLimiter
    keys: AnonymousClientKeys = field(default_factory=AnonymousClientKeys)

    @classmethod
    def from_settings(cls, settings: IntakeSettings) -> IntakeLimits:
        return cls(creation=RateLimiter(settings.reports_per_client, settings.reports_per_seconds),
                   token_use=RateLimiter(settings.token_uses_per_client, 60),
                   wrong_tokens=RateLimiter(settings.wrong_tokens_per_report, 600))

    def creating(self, client_address: str | None) -> None:
        self.creation.enforce("create:" + self.keys.key(client_address))

    def using_token(self, client_address: str | None) -> None:
        self.token_use.enforce("token:" + self.keys.key(client_address))

    def refuse_if_guessing(self, report_id: str) -> None:
        wait = self.wrong_tokens.peek(report_id)
        if wait > 0:
            raise ServiceError(429, "rate_limited", "too many wrong access tokens for this report; try later",
                               detail_nl="Te vaak een verkeerde toegangscode voor deze melding; probeer het later",
                               headers={"Retry-After": str(max(1, int(wait) + 1))})

    def count_wrong_token(self, report_id: str) -> None:
        self.wrong_tokens.check(report_id)
