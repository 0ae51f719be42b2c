"""The limits per installation and per address (reports, Burgernet sightings, Open311, registrations, wrong tokens),
reserved in one step before any work and given back when a request fails or replays."""

from __future__ import annotations

import hashlib
import hmac
import time
from dataclasses import dataclass

from burgermelding_shared.ratelimit import AnonymousClientKeys, RateLimiter, Reservation
from burgermelding_shared.sharedstate import SharedState
from report_intake.config import IntakeSettings
from report_intake.installations.senders import Sender, Submitter


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

        def limiter(name: str, capacity: int, per_seconds: float, *refusal: tuple[str, str]) -> RateLimiter:
            return RateLimiter(capacity, per_seconds, state, name, *refusal)

        return cls(
            creation=limiter("create", settings.reports_per_client, settings.reports_per_seconds),
            token_use=limiter("token", settings.token_uses_per_client, 60),
            wrong_tokens=limiter(
                "wrong-token",
                settings.wrong_tokens_per_report,
                600,
                (
                    "too many wrong access tokens for this report",
                    "Te vaak een verkeerde toegangscode voor deze melding",
                ),
            ),
            creation_guard=limiter("create-guard", settings.reports_per_address_guard, settings.reports_per_seconds),
            token_use_guard=limiter("token-guard", settings.token_uses_per_address_guard, 60),
            registration=limiter(
                "register",
                settings.installations_per_address,
                3600,
                ("too many registrations from this network", "Te veel registraties vanaf dit netwerk"),
            ),
            tag_secret=settings.token_secret,
            keys=AnonymousClientKeys(state),
        )

    async def address_pseudonym(self, address: str | None) -> str:
        """The address's pseudonym of the day: an HMAC under a salt that lives only in memory (ratelimit.py)."""
        return await self.keys.key(address)

    async def submitter(self, sender: Sender) -> Submitter:
        """The daily pseudonym reports are counted by (verification's flood rule, the bridge's witnesses).

        An installation's is an HMAC of its id and the day under the service's secret: the same on every
        replica and after a restart, so one phone is one witness everywhere; it identifies an installation,
        never a person. An address's uses the salt of the day that lives only in memory (ratelimit.py), so no
        stored tag can ever be traced back to an address."""
        if sender.installation_id:
            return Submitter(self._daily_tag("installation-tag", sender.installation_id), "installation")
        if sender.integrator_id:
            return Submitter(self._daily_tag("integrator-tag", sender.integrator_id), "integrator")
        return Submitter(await self.address_pseudonym(sender.address), "address")

    def _daily_tag(self, kind: str, identifier: str) -> str:
        day = int(time.time() // 86400)
        message = f"{kind}:{day}:{identifier}".encode()
        return hmac.new(self.tag_secret.encode(), message, hashlib.sha256).hexdigest()[:32]

    async def _per_sender(self, per_client: RateLimiter, guard: RateLimiter, sender: Sender) -> Reservation:
        submitter = await self.submitter(sender)
        reservation = Reservation()
        # The client's own limit first: an installation that floods is refused without draining the guard
        # that the honest witnesses behind the same address share.
        await reservation.take(per_client, f"{submitter.kind}:{submitter.tag}")
        if submitter.kind == "installation":
            await reservation.take(guard, await self.address_pseudonym(sender.address))
        return reservation

    async def new_report(self, sender: Sender) -> Reservation:
        """Count a new report against its sender now, before its uploads are read (429 if none is left). Give
        it back if the request fails or replays a report already made (reports.create_report does that)."""
        return await self._per_sender(self.creation, self.creation_guard, sender)

    async def new_integrator_report(self, integrator_id: str, reports_per_hour: int) -> Reservation:
        """Count a new Open311 report against its integrator's own limit (429 if none is left), not against the
        address its server shares with everyone else behind it."""
        limiter = RateLimiter(
            reports_per_hour,
            3600,
            self.creation.state,
            "integrator",
            ("this api_key's reports for the hour are used up", "De meldingen van deze api_key voor dit uur zijn op"),
        )
        reservation = Reservation()
        await reservation.take(limiter, integrator_id)
        return reservation

    async def using_token(self, sender: Sender) -> None:
        """Count a request with an access token (every one counts, answered or not)."""
        await self._per_sender(self.token_use, self.token_use_guard, sender)

    async def new_installation(self, address: str | None) -> Reservation:
        """Count a registration against its address now (429 if none is left); given back unless it is stored."""
        reservation = Reservation()
        await reservation.take(self.registration, await self.address_pseudonym(address))
        return reservation

    async def token_attempt(self, report_id: str) -> Reservation:
        """Count an attempt at a report's access token now (429 once too many were wrong): attempts sent in
        parallel cannot all pass. Give it back when the token turns out to be right: only wrong ones stay
        counted, a right one only while it is checked."""
        reservation = Reservation()
        await reservation.take(self.wrong_tokens, report_id)
        return reservation
