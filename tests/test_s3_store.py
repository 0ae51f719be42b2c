"""Photos in an S3-compatible bucket, against a real S3 protocol server (moto's, as its own process)."""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from burgermelding_shared.blobstore import (
    BlobCorrupted,
    BlobNotFound,
    BlobStoreConfig,
    BlobStoreUnavailable,
    S3BlobStore,
    purge_cache,
    verified_file,
)
from report_intake.config import IntakeSettings
from tests.e2e.test_happy_path import camera_photo
from tests.helpers import report_json
from tests.intake_support import post_report, stored_counts
from tests.s3 import ACCESS_KEY, REGION, SECRET_KEY, S3Server, start_s3_server
from tests.suite import free_port


@pytest.fixture(scope="module")
def s3() -> Iterator[S3Server]:
    server = start_s3_server()
    yield server
    server.stop()


def store_in(s3: S3Server, bucket: str, **changes: str) -> S3BlobStore:
    values = {
        "local_dir": "/nonexistent",
        "s3_bucket": bucket,
        "s3_endpoint_url": s3.url,
        "s3_region": REGION,
        "s3_access_key_id": ACCESS_KEY,
        "s3_secret_access_key": SECRET_KEY,
        **changes,
    }
    store = BlobStoreConfig(**values).open()
    assert isinstance(store, S3BlobStore)
    return store


def objects(s3: S3Server, bucket: str) -> dict[str, int]:
    listed = s3.client().list_objects_v2(Bucket=bucket)  # type: ignore[attr-defined]
    return {item["Key"]: item["Size"] for item in listed.get("Contents", [])}


def test_photos_are_stored_by_their_sha256_and_checked_when_read(s3: S3Server, tmp_path: Path) -> None:
    bucket = s3.new_bucket()
    store = store_in(s3, bucket)
    store.ping()
    digest = store.put_bytes(b"a small photo")
    assert digest == hashlib.sha256(b"a small photo").hexdigest()
    assert store.exists(digest) and store.read_verified(digest) == b"a small photo"
    assert store.put_bytes(b"a small photo") == digest  # the same bytes, the same object: written once

    # A large upload streams from its file in parts (S3 multipart), and the upload file is taken, as locally.
    large = tmp_path / "large.jpg"
    large.write_bytes(os.urandom(S3BlobStore.MULTIPART_CHUNK * 2 + 12345))
    large_digest = hashlib.sha256(large.read_bytes()).hexdigest()
    size = large.stat().st_size
    assert store.adopt_file(large, large_digest) == large_digest
    assert not large.exists()
    assert objects(s3, bucket)[f"photos/{large_digest}"] == size
    assert hashlib.sha256(store.read_verified(large_digest)).hexdigest() == large_digest

    # Bytes that no longer match their key are refused, not served as evidence.
    s3.client().put_object(Bucket=bucket, Key=f"photos/{digest}", Body=b"something else")  # type: ignore[attr-defined]
    with pytest.raises(BlobCorrupted):
        store.read_verified(digest)
    store.delete(digest)
    assert not store.exists(digest)
    with pytest.raises(BlobNotFound):
        store.read_verified(digest)
    with pytest.raises(BlobNotFound):
        store.exists("../../etc/passwd")  # a key is a digest and nothing else


def test_a_video_served_in_ranges_is_a_checked_local_copy_that_goes_when_unplayed(s3: S3Server, tmp_path: Path) -> None:
    """An S3 object a player seeks in is copied to the cache, checked once; it goes an hour after its last use,
    and one retention deleted from the bucket is not served again from the cache after the purge."""
    store = store_in(s3, s3.new_bucket())
    video, other = os.urandom(300_000), os.urandom(1000)
    digest, other_digest = store.put_bytes(video), store.put_bytes(other)
    cache, seen = tmp_path / "media-cache", set[str]()
    path = verified_file(store, digest, cache, seen)
    assert path.read_bytes() == video and digest in seen
    assert verified_file(store, other_digest, cache, seen).read_bytes() == other
    hour_ago = path.stat().st_mtime - 3700
    for cached in cache.iterdir():
        os.utime(cached, (hour_ago, hour_ago))
    verified_file(store, other_digest, cache, seen)  # played again: in use
    store.delete(digest)  # retention
    assert purge_cache(cache, 3600) == 1
    assert sorted(p.name for p in cache.iterdir()) == [other_digest]
    with pytest.raises(BlobNotFound):
        verified_file(store, digest, cache, seen)
    assert purge_cache(tmp_path / "nothing-here", 3600) == 0


def test_a_missing_bucket_or_a_store_that_is_down_is_an_error_not_a_hang(s3: S3Server) -> None:
    with pytest.raises(BlobStoreUnavailable):
        store_in(s3, "no-such-bucket").ping()
    with pytest.raises(BlobStoreUnavailable):
        store_in(s3, "no-such-bucket").put_bytes(b"x")
    down = store_in(s3, "photos", s3_endpoint_url=f"http://127.0.0.1:{free_port()}")
    with pytest.raises(BlobStoreUnavailable):
        down.ping()


async def test_intake_keeps_originals_in_the_bucket_and_refuses_when_it_is_down(
    s3: S3Server, start_service: Callable[..., Any]
) -> None:
    bucket = s3.new_bucket()
    intake = await start_service("report_intake", IntakeSettings, **s3.settings(bucket))
    assert (await intake.client.get("/readyz")).json() == {"status": "ready", "shared_state": "memory"}
    photo = camera_photo(52.0907, 5.1214, pattern=3)
    response = await post_report(intake, report_json(), [("p.jpg", photo, "image/jpeg")], key="s3-report-0001")
    assert response.status_code == 202, response.text
    stored = objects(s3, bucket)
    assert f"photos/{hashlib.sha256(photo).hexdigest()}" in stored  # the original, byte for byte
    assert len(stored) == 2  # and its display copy
    assert (await stored_counts(intake))["uploads"] == 0  # the upload went to the bucket, none is left here

    # The bucket goes away: readiness says so, and a report is refused with nothing stored, safe to retry.
    s3.client().delete_objects(Bucket=bucket, Delete={"Objects": [{"Key": k} for k in stored]})  # type: ignore[attr-defined]
    s3.client().delete_bucket(Bucket=bucket)  # type: ignore[attr-defined]
    before = await stored_counts(intake)
    not_ready = await intake.client.get("/readyz")
    assert (not_ready.status_code, not_ready.json()["error"]) == (503, "storage_unavailable")
    refused = await post_report(
        intake,
        report_json(description="tweede"),
        [("p.jpg", camera_photo(52.1, 5.1, 4), "image/jpeg")],
        key="s3-report-0002",
    )
    assert (refused.status_code, refused.json()["error"]) == (503, "storage_unavailable"), refused.text
    assert refused.headers["retry-after"]
    after = await stored_counts(intake)
    assert {k: after[k] for k in ("reports", "photos", "outbox", "keys")} == {
        k: before[k] for k in ("reports", "photos", "outbox", "keys")
    }
    assert after["uploads"] == 0  # the upload file is gone too


@pytest.fixture(scope="module")
def s3_with_auth() -> Iterator[tuple[S3Server, str, str]]:
    """A server of its own that checks credentials (moto's IAM authentication): a user with full rights and its
    access key are made first, then authentication is switched on. Yields the server, the key id and secret."""
    server = start_s3_server()
    try:
        iam = server.boto("iam")
        iam.create_user(UserName="photos")  # type: ignore[attr-defined]
        policy = iam.create_policy(
            PolicyName="photos",
            PolicyDocument=json.dumps(
                {  # type: ignore[attr-defined]
                    "Version": "2012-10-17",
                    "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}],
                }
            ),
        )
        iam.attach_user_policy(UserName="photos", PolicyArn=policy["Policy"]["Arn"])  # type: ignore[attr-defined]
        key = iam.create_access_key(UserName="photos")["AccessKey"]  # type: ignore[attr-defined]
        httpx.post(f"{server.url}/moto-api/reset-auth", content=b"0", timeout=10).raise_for_status()
        yield server, key["AccessKeyId"], key["SecretAccessKey"]
    finally:
        server.stop()


async def test_wrong_credentials_are_refused_and_nothing_is_stored(
    s3_with_auth: tuple[S3Server, str, str], start_service: Callable[..., Any]
) -> None:
    server, key_id, secret = s3_with_auth
    right = {"s3_access_key_id": key_id, "s3_secret_access_key": secret}
    bucket = f"photos-{os.urandom(6).hex()}"
    server.boto("s3", **right).create_bucket(  # type: ignore[attr-defined]
        Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": REGION}
    )
    store = store_in(server, bucket, **right)
    store.ping()
    assert store.read_verified(store.put_bytes(b"with the right key")) == b"with the right key"
    for wrong in ({"s3_secret_access_key": "not-the-secret"}, {"s3_access_key_id": "AKIANOBODY00000000000"}):
        refused_store = store_in(server, bucket, **{**right, **wrong})
        with pytest.raises(BlobStoreUnavailable):
            refused_store.ping()
        with pytest.raises(BlobStoreUnavailable):
            refused_store.put_bytes(b"with a wrong key")

    # A service configured with a wrong secret is not ready, and refuses a report with nothing stored.
    intake = await start_service(
        "report_intake",
        IntakeSettings,
        s3_bucket=bucket,
        s3_endpoint_url=server.url,
        s3_region=REGION,
        s3_access_key_id=key_id,
        s3_secret_access_key="not-the-secret",
    )
    not_ready = await intake.client.get("/readyz")
    assert (not_ready.status_code, not_ready.json()["error"]) == (503, "storage_unavailable")
    refused = await post_report(
        intake, report_json(), [("p.jpg", camera_photo(52.1, 5.1, 6), "image/jpeg")], key="s3-wrong-key-0001"
    )
    assert (refused.status_code, refused.json()["error"]) == (503, "storage_unavailable"), refused.text
    counts = await stored_counts(intake)
    assert {k: counts[k] for k in ("reports", "photos", "outbox", "keys", "uploads")} == dict.fromkeys(
        ("reports", "photos", "outbox", "keys", "uploads"), 0
    )
