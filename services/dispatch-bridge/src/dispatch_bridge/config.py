from __future__ import annotations

import re
from functools import lru_cache

from pydantic import Field, field_validator
from pydantic_settings import SettingsConfigDict

from burgermelding_shared import webhooks
from burgermelding_shared.geocoding import GeocoderKind
from burgermelding_shared.settings import (
    PLACEHOLDER_PREFIX,
    ServiceSettings,
    geocoder_setting,
    pdok_locatieserver_setting,
)


class BridgeSettings(ServiceSettings):
    """Settings of dispatch-bridge; environment variables start with `BM_BRIDGE_`."""

    model_config = SettingsConfigDict(env_prefix="BM_BRIDGE_", extra="ignore")

    service_name: str = "dispatch-bridge"
    port: int = Field(8003, description="Port to listen on.")
    public_url: str = Field(
        "http://127.0.0.1:8003", description="How the meldkamer reaches this bridge (callback and photo URLs)."
    )
    intake_url: str = Field("http://127.0.0.1:8001", description="Base URL of report-intake.")
    verification_url: str = Field(
        "http://127.0.0.1:8002",
        description="Base URL of verification (its dead jobs are listed and replayed through the dispatchers' API).",
    )
    meldkamer_url: str = Field("http://127.0.0.1:8004", description="Base URL of the meldkamer API.")
    meldkamer_webhook_keys: dict[str, str] = Field(
        default_factory=webhooks.development_keys,
        description="The keys that verify the meldkamer's signed "
        'callbacks, by key id, as JSON: `{"<kid>": "whsec_<base64>"}`. A rotation lists the old and the new '
        "key until `bm_meldkamer_callbacks_total` shows no more callbacks signed by the old one.",
    )
    media_url_secret: str = Field(
        PLACEHOLDER_PREFIX + "media-url-secret-change-me",
        description="Signs the expiring photo URLs given to the meldkamer.",
    )
    media_url_ttl_seconds: int = Field(3600, description="How long a photo URL for the meldkamer stays valid.")
    caller_link_minutes: float = Field(
        30.0, gt=0, le=24 * 60, description="How long a link sent to a caller for their photos and video stays valid."
    )
    caller_link_base_url: str = Field(
        "http://127.0.0.1:8001",
        description="Intake's public address, as a caller's phone reaches it: the one-time links are "
        "`<this>/c/<token>` (keep it short: it goes in an SMS).",
    )
    caller_phone_key: str = Field(
        PLACEHOLDER_PREFIX + "caller-phone-key-change-me",
        description="Keys the hash under which a caller's phone number is kept while their link lives (never "
        "the number itself).",
    )
    sms_url: str = Field(
        "http://127.0.0.1:8005",
        description="The SMS gateway, speaking CM.com's Business Messaging API (`POST <this>/v1.0/message`): "
        "`https://gw.messaging.cm.com` in production, the simulated gateway (infra/sms-sim) elsewhere.",
    )
    sms_product_token: str = Field(
        "dev-only-sms-product-token-change-me", description="The SMS gateway's product token (CM.com's)."
    )
    sms_sender: str = Field("Politie", max_length=11, description="The SMS's sender name (at most 11 characters).")
    dispatcher_token_secret: str = Field(
        PLACEHOLDER_PREFIX + "dispatcher-token-secret-change-me", description="Signs dispatchers' bearer tokens."
    )
    dispatcher_token_minutes: int = Field(480, description="How long a dispatcher's token is valid (a shift).")
    login_free_failures: int = Field(
        3,
        description="Wrong passwords in a row (per user name and source, and per "
        "source) before each next try must wait: 1 s, then 2, 4, ... up to "
        "login_max_delay_seconds. A source is an address, an IPv6 one by its /64.",
    )
    login_max_delay_seconds: float = Field(900, description="The longest wait between login tries.")
    login_failures_forgotten_seconds: float = Field(
        3600, description="A run of wrong passwords is forgotten this long after its last one."
    )
    login_account_ceiling: int = Field(
        20,
        ge=1,
        description="Tries for one user name from sources it has not "
        "logged in from recently, before such tries are refused for "
        "login_account_window_seconds (and a guessing campaign is alerted). Never "
        "refuses a source with a recent good login: it is only delayed.",
    )
    login_account_window_seconds: float = Field(
        900,
        gt=0,
        description="How long the ceiling holds once reached; its count is forgotten this long after the last try.",
    )
    login_ceiling_delay_seconds: float = Field(
        2.0,
        ge=0,
        description="How long a try from a source with a recent good login waits while its user name's ceiling holds.",
    )
    login_known_source_days: float = Field(
        14,
        gt=0,
        description="How long a good login marks its source as the "
        "user's own (exempt from the ceiling and from its source's count).",
    )
    login_hash_threads: int = Field(
        2,
        ge=1,
        description="Threads of their own for checking passwords (argon2id), "
        "so that a flood of guesses cannot take the threads photo reads and exports use.",
    )
    login_hash_queue: int = Field(
        16,
        ge=0,
        description="Password checks that may wait for those threads; past "
        "this, tries from sources without a recent good login are answered 503.",
    )
    call_112_deadline_seconds: float = Field(
        30.0,
        description="An urgent report not accepted by the meldkamer within this time: the citizen is told to call 112.",
    )
    agency: str = Field("burgermelding.politie.nl", description="Our agency reference in EIDO messages.")
    burgernet_default_minutes: int = Field(
        60,
        ge=5,
        description="How long a Burgernet action stays open when "
        "its dispatcher names no duration; at the end it closes itself with "
        "the standard closing message if nobody closed it.",
    )
    burgernet_max_minutes: int = Field(240, ge=5, description="The longest a live Burgernet action may run.")
    witness_call_max_days: int = Field(30, ge=1, description="The longest a witness call may stay open.")
    burgernet_deadline_poll_seconds: float = Field(
        5.0, gt=0, description="How often the deadline watch looks for actions past their closing time."
    )
    console_idle_minutes: float = Field(
        15,
        gt=0,
        description="The console's session ends after this long without "
        "the dispatcher pressing a key or clicking (the live feed alone does not "
        "keep it on).",
    )
    console_session_hours: float = Field(
        12,
        gt=0,
        description="The longest a console session lasts, however "
        "active (a shift and a half): then the dispatcher logs in again.",
    )
    console_tile_url: str = Field(
        "https://service.pdok.nl/brt/achtergrondkaart/wmts/v2_0/standaard/EPSG:3857/{z}/{x}/{y}.png",
        description="The console map's tile server (XYZ template; PDOK's BRT-Achtergrondkaart by default). Empty: "
        "no background map, the markers still show. Its host is allowed in the console's Content-Security-Policy.",
    )
    console_tile_attribution: str = Field(
        "Kaartgegevens © Kadaster (PDOK, BRT-Achtergrondkaart)",
        description="The credit shown on the console map for its tiles.",
    )
    geocoder: GeocoderKind = geocoder_setting(
        'Names an incident\'s place for the dispatchers ("Domplein 29, Utrecht"; the nearest address), asked in '
        "the background once the incident has a place, never on the way to the meldkamer:"
    )
    pdok_locatieserver_url: str = pdok_locatieserver_setting()

    @field_validator("console_tile_url")
    @classmethod
    def _tiles_from_a_real_address(cls, url: str) -> str:
        if url and not re.fullmatch(r"https?://[A-Za-z0-9.{}-]+(:\d+)?/\S*", url):
            raise ValueError(
                "console_tile_url must be an http(s) XYZ template such as "
                "https://tiles.example.nl/{z}/{x}/{y}.png, or empty"
            )
        return url

    @field_validator("meldkamer_webhook_keys")
    @classmethod
    def _webhook_keys_are_secrets(cls, keys: dict[str, str]) -> dict[str, str]:
        webhooks.check_keys(keys)
        return keys

    def secret_fields(self) -> dict[str, str]:
        return {
            **super().secret_fields(),
            **webhooks.secret_fields("meldkamer_webhook_keys", self.meldkamer_webhook_keys),
            "media_url_secret": self.media_url_secret,
            "dispatcher_token_secret": self.dispatcher_token_secret,
            "caller_phone_key": self.caller_phone_key,
            "sms_product_token": self.sms_product_token,
        }


@lru_cache
def get_settings() -> BridgeSettings:
    return BridgeSettings()
