from __future__ import annotations

from functools import lru_cache
from typing import ClassVar, TypeGuard

from pydantic import Field, ValidationError, field_validator
from pydantic_settings import SettingsConfigDict

from burgermelding_shared import webhooks
from burgermelding_shared.contracts import IncidentStatus, MeldkamerAppeal
from burgermelding_shared.settings import PLACEHOLDER_PREFIX, ServiceSettings
from meldkamer_sim.faults import Faults

STATUSES: tuple[str, ...] = tuple(IncidentStatus)
ASK_STEP, BURGERNET_STEP = "ask:", "burgernet:"


def is_status(action: str) -> TypeGuard[IncidentStatus]:
    """A script step that sets the incident's status (the others ask the citizen or start a Burgernet action)."""
    return action in STATUSES


def _check_step(action: str) -> None:
    if is_status(action) or (action.startswith(ASK_STEP) and action[len(ASK_STEP) :].strip()):
        return
    if action.startswith(BURGERNET_STEP):
        parts = action[len(BURGERNET_STEP) :].split(":", 3)
        try:
            looking_for, radius, minutes, description = parts
            MeldkamerAppeal.model_validate(
                {
                    "transactionId": "script",
                    "requestId": "script",
                    "lookingFor": looking_for,
                    "description": description,
                    "radiusMeters": radius,
                    "minutes": minutes,
                }
            )
        except (ValueError, ValidationError) as error:
            raise ValueError(
                f"{action!r}: not a Burgernet action (burgernet:<looking for>:<radius m>:<minutes>:"
                f"<description>): {error}"
            ) from None
        return
    raise ValueError(
        f"{action!r} is not a script step: an EIDO status ({', '.join(STATUSES)}), ask:<question> or burgernet:..."
    )


class MeldkamerSettings(ServiceSettings):
    """Settings of the simulated meldkamer; environment variables start with `BM_MELDKAMER_`."""

    model_config = SettingsConfigDict(env_prefix="BM_MELDKAMER_", extra="ignore")

    service_name: str = "meldkamer"
    # It calls the bridge with signed webhooks, not credentials: it holds only the bridge's public key (in
    # trusted_service_keys), which lets it check the bridge's calls and make none of its own.
    issues_service_credentials: ClassVar[bool] = False
    port: int = Field(8004, description="Port to listen on.")
    bridge_url: str = Field(
        "http://127.0.0.1:8003",
        description="Where callbacks go (the path comes from the EIDO callback URI; the host never does).",
    )
    webhook_keys: dict[str, str] = Field(
        default_factory=webhooks.development_keys,
        description="Sign the callbacks, by key id, as JSON "
        '(`{"<kid>": "whsec_<base64>"}`); each is one of the bridge\'s meldkamer_webhook_keys. Every key listed '
        "signs each callback, so a rotation lists the old and the new key for a while.",
    )
    script: list[tuple[str, float]] = Field(
        [
            ("Active", 2.0),
            ("ResourcesAssigned", 10.0),
            ("ask:Can you describe the person you saw?", 15.0),
            ("Closed", 60.0),
        ],
        description="The dispatcher's script as JSON: (action, seconds after acceptance); an action is an EIDO "
        "status, `ask:<question for the citizen>`, or `burgernet:<person|vehicle|missing_child>:<radius m>:"
        "<minutes>:<description>` (a Burgernet action around the incident's place).",
    )
    faults: Faults = Field(default_factory=Faults, description="Faults from the start, as JSON (see Faults).")
    fault_seed: int | None = Field(
        None,
        ge=0,
        lt=2**32,
        description="Seed of the random faults (which requests "
        "fail or hang, which callbacks come twice or late); logged at start. Unset: a new "
        "one each start. The same seed replays a run's draws.",
    )
    admin_token: str = Field(
        PLACEHOLDER_PREFIX + "meldkamer-admin-token-change-me",
        description="Bearer token for the /admin endpoints (faults at run time).",
    )
    fetch_photos: bool = Field(True, description="Fetch every photo by its URL and check its SHA-256.")

    @field_validator("script")
    @classmethod
    def _script_steps_are_known(cls, script: list[tuple[str, float]]) -> list[tuple[str, float]]:
        # Checked at start: a misspelt status would otherwise fail each incident's script when it is accepted.
        for action, _ in script:
            _check_step(action)
        return script

    @field_validator("webhook_keys")
    @classmethod
    def _webhook_keys_are_secrets(cls, keys: dict[str, str]) -> dict[str, str]:
        webhooks.check_keys(keys)
        return keys

    def secret_fields(self) -> dict[str, str]:
        return {
            **super().secret_fields(),
            **webhooks.secret_fields("webhook_keys", self.webhook_keys),
            "admin_token": self.admin_token,
        }


@lru_cache
def get_settings() -> MeldkamerSettings:
    return MeldkamerSettings()
