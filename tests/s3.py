"""A real S3 protocol server for tests: moto's standalone server, started as its own process on a free port."""

from __future__ import annotations

import subprocess
import sys
import time
import uuid
from contextlib import suppress
from dataclasses import dataclass

import httpx

from tests.suite import die_with_parent, free_port, stop_process

ACCESS_KEY, SECRET_KEY, REGION = "burgermelding-test", "burgermelding-test-secret-key", "eu-west-1"


@dataclass
class S3Server:
    url: str
    process: subprocess.Popen[bytes]

    def client(self) -> object:
        return self.boto("s3")

    def boto(self, service: str, s3_access_key_id: str = ACCESS_KEY, s3_secret_access_key: str = SECRET_KEY) -> object:
        """A boto3 client of this server (for setting up tests, never used by the services)."""
        import boto3

        return boto3.client(
            service,
            endpoint_url=self.url,
            region_name=REGION,
            aws_access_key_id=s3_access_key_id,
            aws_secret_access_key=s3_secret_access_key,
        )

    def new_bucket(self) -> str:
        bucket = f"photos-{uuid.uuid4().hex[:12]}"
        self.client().create_bucket(
            Bucket=bucket,  # type: ignore[attr-defined]
            CreateBucketConfiguration={"LocationConstraint": REGION},
        )
        return bucket

    def settings(self, bucket: str) -> dict[str, str]:
        """The store's settings, as keyword arguments of a service's settings class."""
        return {
            "s3_bucket": bucket,
            "s3_endpoint_url": self.url,
            "s3_region": REGION,
            "s3_access_key_id": ACCESS_KEY,
            "s3_secret_access_key": SECRET_KEY,
        }

    def env(self, prefix: str, bucket: str) -> dict[str, str]:
        return {f"{prefix}{name.upper()}": value for name, value in self.settings(bucket).items()}

    def stop(self) -> None:
        stop_process(self.process)


def start_s3_server() -> S3Server:
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        preexec_fn=die_with_parent,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"moto's S3 server exited with code {process.returncode}")
        with suppress(httpx.HTTPError):
            httpx.get(url, timeout=1)
            return S3Server(url, process)
        time.sleep(0.1)
    process.kill()
    raise RuntimeError("moto's S3 server did not start")
