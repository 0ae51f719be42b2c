from __future__ import annotations

from functools import lru_cache

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from burgermelding_shared.settings import ServiceSettings


class VerificationSettings(ServiceSettings):
    """Settings of verification; environment variables start with `BM_VERIFICATION_`."""

    model_config = SettingsConfigDict(env_prefix="BM_VERIFICATION_", extra="ignore")

    service_name: str = "verification"
    port: int = Field(8002, description="Port to listen on.")
    bridge_url: str = Field("http://127.0.0.1:8003", description="Base URL of dispatch-bridge.")
    workers: int = Field(0, description="Processes for image work; 0 = one per core.")
    max_image_pixels: int = Field(50_000_000, description="Images with more pixels are not decoded.")
    old_photo_hours: float = Field(24.0, description="Capture this long before the claimed time: 'old photo'.")
    gps_min_distance_m: float = Field(500.0, description="GPS further than max(this, GPS error) from the claim.")
    recycled_distance_m: float = Field(1000.0, description="The same picture reported this far away: recycled.")
    recycled_after_hours: float = Field(24.0, description="The same picture reported this much earlier: recycled.")
    check_weights: dict[str, float] = Field({}, description="Overrides of check weights by reason code, as JSON.")
    flood_warn: int = Field(5, description="Reports from one (daily pseudonymous) sender in 10 minutes: warn.")
    flood_spam: int = Field(20, description="...and this many: spam, rejected.")
    group_merge_seconds: float = Field(30.0, description="How often the pass that merges group fragments runs.")


@lru_cache
def get_settings() -> VerificationSettings:
    return VerificationSettings()
