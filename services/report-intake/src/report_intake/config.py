from __future__ import annotations

from functools import lru_cache

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from burgermelding_shared.geocoding import GeocoderKind
from burgermelding_shared.retention import DEFAULT_RULES, RetentionRule
from burgermelding_shared.settings import (
    PLACEHOLDER_PREFIX,
    ServiceSettings,
    geocoder_setting,
    pdok_locatieserver_setting,
)


class IntakeSettings(ServiceSettings):
    """Settings of report-intake; environment variables start with `BM_INTAKE_`."""

    model_config = SettingsConfigDict(env_prefix="BM_INTAKE_", extra="ignore")

    service_name: str = "report-intake"
    idempotency_claim_seconds: float = Field(
        120.0,
        description="A request with an Idempotency-Key claims it while it is stored; a retry with that key is "
        "answered 409 (in progress, Retry-After) until the claim is this old, and then takes it over: the first "
        "request's process is taken to have died. Keep it well above the longest database write.",
    )
    port: int = Field(8001, description="Port to listen on.")
    verification_url: str = Field("http://127.0.0.1:8002", description="Base URL of verification.")
    bridge_url: str = Field("http://127.0.0.1:8003", description="Base URL of dispatch-bridge.")
    token_secret: str = Field(
        PLACEHOLDER_PREFIX + "intake-token-secret-change-me",
        description="Seals a new report's access token in its idempotency record, so a client's retry can "
        "be shown the token again; the database alone cannot open it.",
    )
    max_photo_bytes: int = Field(20 * 1024 * 1024, description="Largest accepted photo, in bytes.")
    max_photos_per_report: int = Field(10, description="Most files (photos and videos) on one report.")
    max_video_bytes: int = Field(200 * 1024 * 1024, description="Largest accepted video, in bytes.")
    max_videos_per_report: int = Field(3, description="Most videos on one report (0: no videos).")
    max_video_seconds: float = Field(300.0, gt=0, description="Longest accepted video, in seconds.")
    max_image_pixels: int = Field(50_000_000, description="Larger images are refused (decompression bombs).")
    max_report_json_bytes: int = Field(64 * 1024, description="Largest `report` JSON part.")
    display_max_side: int = Field(2048, description="Longest side of the sanitised display copy.")
    service_area: tuple[float, float, float, float] = Field(
        (50.70, 3.20, 53.60, 7.30), description="Accepted locations: south, west, north, east (default NL)."
    )
    max_report_age_days: int = Field(30, description="Oldest accepted observation time.")
    public_url: str = Field(
        "http://127.0.0.1:8001",
        description="How the apps reach this service (the links in the Burgernet feed and CAP alerts).",
    )
    burgernet_sender: str = Field("burgernet@politie.nl", description="The CAP `sender` of Burgernet alerts.")
    burgernet_feed_max_age_seconds: int = Field(
        15,
        ge=1,
        description="How long a phone, a proxy or a CDN may "
        "keep the Burgernet feed before asking again (Cache-Control).",
    )
    burgernet_feed_refresh_seconds: float = Field(
        1.0,
        gt=0,
        description="How often a replica rebuilds the feed "
        "from the database (changes it receives itself show at once).",
    )
    burgernet_closed_visible_hours: int = Field(
        24, ge=1, description="How long an ended action stays in the feed with its closing message."
    )
    clock_skew_seconds: int = Field(300, description="How far in the future an observation time may lie.")
    reports_per_client: int = Field(
        10,
        description="Reports one client may create in a burst (an installation, "
        "or an address for clients without a credential)...",
    )
    reports_per_seconds: float = Field(600.0, description="...refilled over this many seconds.")
    token_uses_per_client: int = Field(120, description="Requests with an access token per client per minute.")
    reports_per_address_guard: int = Field(
        3000,
        description="Coarse guard: reports from one address by clients with a credential, per "
        "`REPORTS_PER_SECONDS` (sized for thousands of phones behind carrier-grade NAT).",
    )
    token_uses_per_address_guard: int = Field(
        30000,
        description="Coarse guard: requests with an access token from one address per minute, by clients "
        "with a credential.",
    )
    installation_pow_bits: int = Field(
        20,
        ge=0,
        le=32,
        description="Proof of work to register an installation: leading zero bits of SHA-256 "
        "(20: about a million hashes, a second on a phone).",
    )
    installations_per_address: int = Field(
        1000, description="Installations one address may register per hour (carrier-grade NAT sized)."
    )
    wrong_tokens_per_report: int = Field(10, description="Wrong tokens for one report per 10 minutes before 429.")
    retention_rules: list[RetentionRule] = Field(
        DEFAULT_RULES,
        description="What is removed from reports, and when, by outcome and category (JSON list; "
        "see the Evidence and records page, docs/records.md). Reports under legal hold are left alone.",
    )
    retention_interval_seconds: float = Field(3600.0, description="How often the retention job runs.")
    sse_max_seconds: float = Field(300.0, description="A live-update stream ends after this; the app reconnects.")
    geocoder: GeocoderKind = geocoder_setting(
        "Places a report named by its address only (Open311 `address_string`), refusing an address it cannot find:"
    )
    pdok_locatieserver_url: str = pdok_locatieserver_setting()
    open311_media_hosts: list[str] = Field(
        [],
        description="Hosts an Open311 `media_url` may point at (`host` or `host:port`, JSON list). Empty: every "
        "`media_url` is refused with a reason (the photo can still be sent to `POST /v1/reports/{id}/photos`).",
    )
    open311_media_max_seconds: float = Field(10.0, gt=0, description="Time limit for fetching one `media_url`.")
    open311_media_private_addresses: bool = Field(
        False,
        description="Let `open311_media_hosts` resolve to private, loopback or link-local addresses (a photo "
        "host inside the deployment's own network). Off: such an address is refused, whatever the name.",
    )
    open311_reports_per_hour: int = Field(
        600, ge=1, description="Reports per hour of a new Open311 integrator's api_key, unless the command says."
    )

    def secret_fields(self) -> dict[str, str]:
        return {**super().secret_fields(), "token_secret": self.token_secret}


@lru_cache
def get_settings() -> IntakeSettings:
    return IntakeSettings()
