from __future__ import annotations

from functools import lru_cache
from typing import ClassVar

from pydantic import Field, field_validator
from pydantic_settings import SettingsConfigDict

from burgermelding_shared import webhooks
from burgermelding_shared.settings import PLACEHOLDER_PREFIX, ServiceSettings
from meldkamer_sim.faults import Faults


class MeldkamerSettings(ServiceSettings):
    """Settings of the simulated meldkamer; environment variables start with `BM_MELDKAMER_`."""

    model_config = SettingsConfigDict(env_prefix="BM_MELDKAMER_", extra="ignore")

    service_name: str = "meldkamer"
    # It calls the bridge with signed webhooks, not credentials: it holds only the bridge's public key (in
    # trusted_service_keys), which lets it check the bridge's calls and make none of its own.
    issues_service_credentials: ClassVar[bool] = False
    port: int = Field(8004, description="Port to listen on.")
    bridge_url: str = Field("http://127.0.0.1:8003", description="Where callbacks go (the path comes from the "
                                                               "EIDO callback URI; the host never does).")
    webhook_keys: dict[str, str] = Field(
        default_factory=webhooks.development_keys, description="Sign the callbacks, by key id, as JSON "
        "(`{\"<kid>\": \"whsec_<base64>\"}`); each is one of the bridge's meldkamer_webhook_keys. Every key listed "
        "signs each callback, so a rotation lists the old and the new key for a while.")
    script: list[tuple[str, float]] = Field(
        [("Active", 2.0), ("ResourcesAssigned", 10.0), ("ask:Can you describe the person you saw?", 15.0),
         ("Closed", 60.0)],
        description="The dispatcher's script as JSON: (action, seconds after acceptance); an action is an EIDO "
        "status, `ask:<question for the citizen>`, or `burgernet:<person|vehicle|missing_child>:<radius m>:"
        "<minutes>:<description>` (a Burgernet action around the incident's place).",
    )
    faults: Faults = Field(default_factory=Faults, description="Faults from the start, as JSON (see Faults).")
    admin_token: str = Field(PLACEHOLDER_PREFIX + "meldkamer-admin-token-change-me",
                             description="Bearer token for the /admin endpoints (faults at run time).")
    fetch_photos: bool = Field(True, description="Fetch every photo by its URL and check its SHA-256.")

    @field_validator("webhook_keys")
    @classmethod
    def _webhook_keys_are_secrets(cls, keys: dict[str, str]) -> dict[str, str]:
        webhooks.check_keys(keys)
        return keys

    def secret_fields(self) -> dict[str, str]:
        return {**super().secret_fields(), **webhooks.secret_fields("webhook_keys", self.webhook_keys),
                "admin_token": self.admin_token}


@lru_cache
def get_settings() -> MeldkamerSettings:
    return MeldkamerSettings()
