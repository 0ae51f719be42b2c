"""Settings common to every service; each service subclasses with its own environment prefix."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, ClassVar, Literal

from pydantic import Field, PrivateAttr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from burgermelding_shared.blobstore import BlobStoreConfig
from burgermelding_shared.geocoding import PDOK_LOCATIESERVER
from burgermelding_shared.service_auth import (
    DEVELOPMENT_KEY_PREFIX,
    ServiceKey,
    TrustedKeys,
    development_key,
    is_published,
    load_service_key,
)

# Placeholder secrets make a local run work without any setup; they are refused outside development so a
# deployment can never run on a value that is published in this repository.
PLACEHOLDER_PREFIX = "dev-only-"
DEFAULT_VAR_DIR = Path("var")


# The two settings of a service that uses a geocoder (burgermelding_shared.geocoding): defined once here, each
# service saying what it uses the geocoder for. Not on ServiceSettings: most services have no use for them.
def geocoder_setting(purpose: str) -> Any:
    """The `geocoder` field (a `GeocoderKind`), described by what the service uses it for."""
    return Field(
        "offline",
        description=f"{purpose} `pdok` asks PDOK's Locatieserver (needs internet access); `offline` knows only a "
        "small fixed list of addresses (burgermelding_shared/geocoding.py) and gives the same answer every time.",
    )


def pdok_locatieserver_setting() -> Any:
    """The `pdok_locatieserver_url` field."""
    return Field(PDOK_LOCATIESERVER, description="PDOK Locatieserver's base URL (with `geocoder` = `pdok`).")


class ServiceSettings(BaseSettings):
    """Base settings. Field names become environment variables with the service's prefix."""

    model_config = SettingsConfigDict(extra="ignore", env_file=None)

    environment: Literal["development", "production"] = Field(
        "development", description="`development` allows placeholder secrets; `production` refuses them."
    )
    host: str = Field("127.0.0.1", description="Address to listen on.")
    port: int = Field(8000, description="Port to listen on (each service has its own default).")
    database_url: str = Field(
        "", description="SQLAlchemy async URL. Empty: a SQLite file under `var/` named after the service."
    )
    blob_dir: Path = Field(
        DEFAULT_VAR_DIR / "blobs", description="Folder of the local photo store (used when no S3 bucket is set)."
    )
    s3_bucket: str = Field(
        "",
        description="S3-compatible bucket for the photos (MinIO, Ceph RGW, a cloud bucket); "
        "empty: the local folder. Every service of a deployment must name the same one.",
    )
    s3_endpoint_url: str = Field("", description="The S3 endpoint, e.g. https://minio.internal:9000 (empty: AWS).")
    s3_region: str = Field("us-east-1", description="The bucket's region.")
    s3_access_key_id: str = Field("", description="S3 access key (empty: the environment's credentials).")
    s3_secret_access_key: str = Field("", description="S3 secret key.")
    s3_prefix: str = Field("photos/", description="Key prefix of the photos in the bucket.")
    redis_url: str = Field(
        "",
        description="Redis for the state that replicas share (rate limits, the daily "
        "address salt, circuit states), e.g. redis://redis:6379/0; empty: this process's memory. "
        "Every replica of a service must name the same one.",
    )
    redis_timeout_seconds: float = Field(
        0.5,
        gt=0,
        description="How long a call to Redis may take before this replica uses its own memory for a while (a "
        "limit check is on the path of every report: a slow Redis must not hold it up).",
    )
    redis_key_prefix: str = Field(
        "bm",
        description="Prefix of this deployment's keys in Redis (so that several "
        "deployments, or test runs, can share one Redis).",
    )
    service_key: str = Field(
        "",
        description="This service's own Ed25519 private key, a JWK with a key id (JSON), which signs its "
        "credentials to the other services; `python -m burgermelding_shared.service_auth <service> <kid>` makes "
        "one. Empty: a published development key (refused in production).",
    )
    trusted_service_keys: dict[str, list[dict[str, str]]] = Field(
        {},
        description="The public keys (JWKs with a key id) of the services that may call this one, by service "
        'name, as JSON: `{"dispatch-bridge": [{...}]}`. A rotation lists a service\'s old and new key until it '
        "signs with the new one. Empty: the published development keys (refused in production).",
    )
    trusted_proxies: list[str] = Field(
        [],
        description="Addresses of reverse proxies whose X-Forwarded-For is believed (JSON list). Behind a "
        "proxy, without this every client would share the proxy's address for rate limits and flood checks.",
    )
    cors_origins: list[str] = Field(
        [],
        description="Origins of the browser clients that may call the API from their own pages (JSON list, e.g. "
        '`["https://melden.politie.nl"]`): exact origins, no wildcard. Empty: no cross-origin access (the app '
        "and server-side clients need none).",
    )
    log_level: str = Field("INFO", description="Python log level.")
    otlp_endpoint: str = Field(
        "",
        description="OpenTelemetry collector to export traces to over OTLP/HTTP, e.g. "
        "http://otel-collector:4318 (spans go to /v1/traces); empty: no export.",
    )
    max_body_bytes: int = Field(
        1024 * 1024, description="Largest request body (photo uploads have limits of their own)."
    )
    body_idle_seconds: float = Field(
        15.0, description="A request body that sends nothing for this long is answered 408 and its connection closed."
    )
    body_min_bytes_per_second: float = Field(
        2048.0,
        description="...and one that arrives slower than this on average after body_grace_seconds (a "
        "phone on poor 2G sends 30 KB/s; a slow-sending attacker a byte now and then).",
    )
    body_grace_seconds: float = Field(10.0, description="How long a body may start slowly before its pace counts.")
    header_timeout_seconds: float = Field(
        10.0,
        description="A connection whose request line and headers have not "
        "all arrived this long after they began is answered 408 and closed.",
    )
    sqlite_busy_timeout_ms: int = Field(
        10_000,
        description="SQLite only: how long a write waits for its turn (this process's earlier writes, "
        "another process's write lock) before the request is answered 503 with Retry-After (busy), never 500.",
    )
    relay_poll_seconds: float = Field(
        2.0, description="Outbox relay fallback poll; the relay is normally woken on commit."
    )
    relay_backoff_base_seconds: float = Field(0.5, description="Outbox retry backoff base.")
    relay_backoff_cap_seconds: float = Field(60.0, description="Outbox retry backoff cap.")
    relay_lease_seconds: float = Field(
        30.0, description="How long a relay holds a message it is sending; a relay that dies frees it after this."
    )
    relay_request_timeout_seconds: float = Field(10.0, description="Timeout of one delivery attempt.")
    relay_max_attempts: int = Field(
        40, description="Attempts before a message is dead-lettered (kept, visible and replayable)."
    )

    audit_checkpoint_seconds: float = Field(
        300.0,
        description="How often the head of the audit chain is signed (a checkpoint, also written to the "
        "log); a rewritten chain no longer matches the checkpoints signed before it.",
    )
    audit_checkpoint_keys: list[dict[str, str]] = Field(
        [],
        description="Public halves (JWKs with a key id) of this service's earlier keys, so that checkpoints "
        "signed before a key rotation still verify (JSON list). The current key is always trusted.",
    )

    settled_messages_days: float = Field(
        7.0,
        description="Delivered messages between the services (copies of reports) and the inbox's record of "
        "them are deleted this many days after delivery (retention).",
    )

    service_name: str = "service"
    # Whether this service calls the others with credentials of its own (the meldkamer does not: it holds only
    # the public key of the bridge that calls it, and signs its callbacks as webhooks).
    issues_service_credentials: ClassVar[bool] = True
    _service_key: ServiceKey = PrivateAttr()
    _trusted_keys: TrustedKeys = PrivateAttr()

    def secret_fields(self) -> dict[str, str]:
        """Secrets that must not keep a placeholder value outside development; subclasses add theirs."""
        return {}

    @property
    def signing_key(self) -> ServiceKey:
        """This service's key for the credentials it calls the other services with."""
        return self._service_key

    @property
    def trusted_keys(self) -> TrustedKeys:
        """The public keys of the services that may call this one."""
        return self._trusted_keys

    @model_validator(mode="after")
    def _load_keys(self) -> ServiceSettings:
        # Loaded here, so that a malformed key stops the service at start-up rather than at its first call.
        self._service_key = (
            load_service_key(self.service_name, _json_object(self.service_key, "service_key"))
            if self.service_key
            else development_key(self.service_name)
        )
        self._trusted_keys = (
            TrustedKeys.load(self.trusted_service_keys) if self.trusted_service_keys else TrustedKeys.development()
        )
        return self

    @model_validator(mode="after")
    def _refuse_placeholder_secrets(self) -> ServiceSettings:
        if self.environment != "development":
            weak = [
                name
                for name, value in self.secret_fields().items()
                if value.startswith(PLACEHOLDER_PREFIX) or len(value) < 32
            ]
            # By key material, not only by id: a development key given another id is still published.
            if self.issues_service_credentials and is_published(self._service_key.private_key):
                weak.append("service_key")
            if any(
                kid.startswith(DEVELOPMENT_KEY_PREFIX) or is_published(key)
                for kid, (_issuer, key) in self._trusted_keys.by_kid.items()
            ):
                weak.append("trusted_service_keys")
            if weak:
                raise ValueError(f"placeholder or short secrets are refused outside development: {', '.join(weak)}")
        return self

    def blob_config(self) -> BlobStoreConfig:
        return BlobStoreConfig(
            local_dir=str(self.blob_dir),
            s3_bucket=self.s3_bucket,
            s3_endpoint_url=self.s3_endpoint_url,
            s3_region=self.s3_region,
            s3_access_key_id=self.s3_access_key_id,
            s3_secret_access_key=self.s3_secret_access_key,
            s3_prefix=self.s3_prefix,
        )

    @property
    def effective_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite+aiosqlite:///{DEFAULT_VAR_DIR / (self.service_name + '.db')}"


def _json_object(value: str, name: str) -> dict[str, Any]:
    try:
        parsed = json.loads(value)
    except ValueError as exc:
        raise ValueError(f"{name} is not JSON") from exc
    if not isinstance(parsed, dict):
        raise ValueError(f"{name} must be a JSON object")
    return parsed
