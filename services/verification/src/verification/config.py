from __future__ import annotations

from functools import lru_cache

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from burgermelding_shared.settings import ServiceSettings
from verification.nearindex import Thresholds


class VerificationSettings(ServiceSettings):
    """Settings of verification; environment variables start with `BM_VERIFICATION_`."""

    model_config = SettingsConfigDict(env_prefix="BM_VERIFICATION_", extra="ignore")

    service_name: str = "verification"
    port: int = Field(8002, description="Port to listen on.")
    bridge_url: str = Field("http://127.0.0.1:8003", description="Base URL of dispatch-bridge.")
    workers: int = Field(0, description="Processes for image work; 0 = one per core.")
    max_image_pixels: int = Field(50_000_000, description="Images with more pixels are not decoded.")
    max_video_seconds: float = Field(300.0, gt=0, description="Videos longer than this are not read.")
    video_match_days: float = Field(
        30.0, gt=0, description="Videos of this many days back are searched for a re-upload."
    )
    video_match_limit: int = Field(2000, gt=0, description="...at most this many of them, the newest first.")
    old_photo_hours: float = Field(24.0, description="Capture this long before the claimed time: 'old photo'.")
    gps_min_distance_m: float = Field(500.0, description="GPS further than max(this, GPS error) from the claim.")
    recycled_distance_m: float = Field(1000.0, description="The same picture reported this far away: recycled.")
    recycled_after_hours: float = Field(24.0, description="The same picture reported this much earlier: recycled.")
    phash_same_max: int = Field(6, description="pHash distance up to which two photos are the same image.")
    phash_candidate_max: int = Field(12, description="pHash distance up to which a photo is a candidate for review.")
    pdq_same_max: int = Field(31, description="PDQ distance up to which two photos are the same image.")
    pdq_candidate_max: int = Field(50, description="PDQ distance up to which a photo is a candidate for review.")
    pdq_min_quality: int = Field(50, description="PDQ hashes of lower quality (0-100) are not indexed.")
    check_weights: dict[str, float] = Field({}, description="Overrides of check weights by reason code, as JSON.")
    flood_warn: int = Field(5, description="Reports from one (daily pseudonymous) sender in 10 minutes: warn.")
    flood_spam: int = Field(20, description="...and this many: spam, rejected.")
    group_merge_seconds: float = Field(30.0, description="How often the pass that merges group fragments runs.")
    job_max_attempts: int = Field(
        5,
        description="Tries of a verification job (a failure, or a worker that died "
        "holding it) before it is given up on: a dead job, listed for supervisors with "
        "its reason and replayable. The photo store being down does not count.",
    )
    job_lease_seconds: float = Field(
        120.0,
        description="How long a replica holds a job it took; a job held by a "
        "replica that died is taken by another after this (a job takes seconds).",
    )

    def near_duplicate_thresholds(self) -> Thresholds:
        return Thresholds(
            phash_same=self.phash_same_max,
            phash_candidate=self.phash_candidate_max,
            pdq_same=self.pdq_same_max,
            pdq_candidate=self.pdq_candidate_max,
            pdq_min_quality=self.pdq_min_quality,
        )


@lru_cache
def get_settings() -> VerificationSettings:
    return VerificationSettings()
