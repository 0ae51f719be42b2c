"""Photo storage behind a small interface, content-addressed by SHA-256.

Two stores with the same methods: a local folder (the embedded default, for one machine) and an S3-compatible
bucket (MinIO, Ceph RGW, a cloud bucket) when `S3_BUCKET` is set, so that services on several machines share the
photos without any of them reading another's disk. Writes are atomic either way: locally a temporary file in the
same folder, fsync, then rename, so a reader never sees half a photo and a crash leaves at most a stray temporary
file; in S3 an object appears whole or not at all (large ones as a multipart upload). Every read that matters is
checked against the key, the SHA-256 of the bytes.
"""

from __future__ import annotations

import contextlib
import dataclasses
import errno
import functools
import hashlib
import io
import os
import re
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import BinaryIO, Protocol

import obstore
import obstore.exceptions as s3_errors
import obstore.store

_DIGEST = re.compile(r"^[0-9a-f]{64}$")
CHUNK = 1024 * 1024


class BlobNotFound(LookupError):
    pass


class BlobCorrupted(ValueError):
    """The stored bytes no longer hash to their key."""


class BlobStoreUnavailable(RuntimeError):
    """The store cannot be reached or refuses us (an S3 outage, a missing bucket, wrong credentials): the
    request is answered 503 and stores nothing."""


class BlobStore(Protocol):
    def put_file(self, path: Path) -> str: ...
    def adopt_file(self, path: Path, digest: str) -> str: ...
    def put_bytes(self, data: bytes) -> str: ...
    def open(self, digest: str) -> BinaryIO: ...
    def exists(self, digest: str) -> bool: ...
    def read_verified(self, digest: str) -> bytes: ...
    def delete(self, digest: str) -> None: ...
    def ping(self) -> None: ...


@dataclass(frozen=True)
class BlobStoreConfig:
    """Where the photos are: plain data, so a worker process can open the same store."""

    local_dir: str
    s3_bucket: str = ""
    s3_endpoint_url: str = ""
    s3_region: str = "us-east-1"
    s3_access_key_id: str = ""
    s3_secret_access_key: str = field(default="", repr=False)
    s3_prefix: str = "photos/"

    def open(self) -> BlobStore:
        if self.s3_bucket:
            return S3BlobStore(self)
        return LocalBlobStore(Path(self.local_dir))

    def published(self) -> BlobStoreConfig:
        """The store of what was published for the public (a Burgernet photo, sanitised): apart from the
        evidence, so that a public route reading only here cannot serve a citizen's original whatever digest it
        is given. A folder of its own beside the two-level digest folders, or a key prefix of its own."""
        return dataclasses.replace(
            self, local_dir=str(Path(self.local_dir) / "published"), s3_prefix=f"{self.s3_prefix}published/"
        )


@functools.cache
def store_for(config: BlobStoreConfig) -> BlobStore:
    """One store per configuration and process (a worker process opens its own once, not once a photo)."""
    return config.open()


def published_store(config: BlobStoreConfig) -> BlobStore:
    """The store of what was published for the public, beside `config`'s: see `BlobStoreConfig.published`."""
    return store_for(config.published())


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while chunk := fh.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _fsync_folder(folder: Path) -> None:
    """Make a rename in `folder` durable."""
    dir_fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


# What a disk says when it cannot take more: full, over quota, read-only, failing, or out of file handles.
DISK_FAULTS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EIO, errno.EMFILE, errno.ENFILE})


@contextmanager
def disk_faults(root: Path) -> Iterator[None]:
    """A photo folder that cannot be written (full, over quota, read-only, failing) is a store that is
    unavailable, as an S3 outage is: the request is answered 503 with Retry-After and stores nothing, and
    background work tries again later. Never a 500, and never a photo judged unreadable for the disk's fault."""
    try:
        yield
    except BlobStoreUnavailable:
        raise
    except OSError as exc:
        if exc.errno not in DISK_FAULTS:  # a bug (a missing path), or a library's own error: stays what it is
            raise
        reason = errno.errorcode.get(exc.errno, type(exc).__name__)
        raise BlobStoreUnavailable(f"the photo folder {root} cannot be written ({reason})") from exc


def check_digest(digest: str) -> str:
    """A key is a lower-case SHA-256 hex digest and nothing else: no path can be smuggled in."""
    if not _DIGEST.match(digest):
        raise BlobNotFound(digest)
    return digest


class LocalBlobStore:
    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)

    def path_for(self, digest: str) -> Path:
        check_digest(digest)
        return self.root / digest[:2] / digest[2:4] / digest

    @contextmanager
    def _atomic_target(self, digest: str) -> Iterator[BinaryIO]:
        target = self.path_for(digest)
        with disk_faults(self.root):
            target.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp_name = tempfile.mkstemp(dir=target.parent, prefix=".incoming-")
        try:
            with disk_faults(self.root), os.fdopen(fd, "wb") as fh:
                yield fh
                fh.flush()
                os.fsync(fh.fileno())
            with disk_faults(self.root):
                os.replace(tmp_name, target)
                _fsync_folder(target.parent)
        except BaseException:
            Path(tmp_name).unlink(missing_ok=True)
            raise

    def put_file(self, path: Path) -> str:
        """Store a copy of a file's bytes; returns their SHA-256, which is also the key."""
        digest = sha256_file(path)
        if not self.exists(digest):
            self._copy_in(path, digest)
        return digest

    def _copy_in(self, path: Path, digest: str) -> None:
        with self._atomic_target(digest) as out, Path(path).open("rb") as src:
            while chunk := src.read(CHUNK):
                out.write(chunk)

    def adopt_file(self, path: Path, digest: str) -> str:
        """Store a file that is the caller's own and that it has hashed already (a checked upload): it is made
        durable and moved into place, not hashed and copied again. `digest` must be the SHA-256 of its bytes,
        which only the caller can vouch for. The file is gone from `path` afterwards unless the store already
        held it (or lies on another filesystem, where it is copied)."""
        check_digest(digest)
        if self.exists(digest):
            return digest
        target = self.path_for(digest)
        with disk_faults(self.root):
            target.parent.mkdir(parents=True, exist_ok=True)
            with Path(path).open("rb") as fh:
                os.fsync(fh.fileno())
            try:
                os.replace(path, target)
            except OSError as exc:
                if exc.errno != errno.EXDEV:
                    raise
                self._copy_in(path, digest)
                return digest
            _fsync_folder(target.parent)
        return digest

    def put_bytes(self, data: bytes) -> str:
        digest = hashlib.sha256(data).hexdigest()
        if not self.exists(digest):
            with self._atomic_target(digest) as out:
                out.write(data)
        return digest

    def exists(self, digest: str) -> bool:
        return self.path_for(digest).is_file()

    def open(self, digest: str) -> BinaryIO:
        try:
            return self.path_for(digest).open("rb")
        except FileNotFoundError as exc:
            raise BlobNotFound(digest) from exc

    def read_verified(self, digest: str) -> bytes:
        """The blob's bytes, checked against its key (evidence must be what it claims to be)."""
        with self.open(digest) as fh:
            return verified(fh.read(), digest)

    def delete(self, digest: str) -> None:
        self.path_for(digest).unlink(missing_ok=True)

    def ping(self) -> None:
        if not self.root.is_dir():
            raise BlobStoreUnavailable(f"the photo folder {self.root} is missing")


def copy_verified(store: BlobStore, digest: str, target: Path) -> None:
    """Copy a blob to a file, checked against its key on the way: a video of hundreds of MB is never held in
    memory whole (from S3 the store's `open` still is; a streaming read is left for when that matters)."""
    hasher = hashlib.sha256()
    with store.open(digest) as source, target.open("wb") as out:
        while chunk := source.read(1024 * 1024):
            hasher.update(chunk)
            out.write(chunk)
    if hasher.hexdigest() != digest:
        target.unlink(missing_ok=True)
        raise BlobCorrupted(digest)


def verified_file(store: BlobStore, digest: str, cache_dir: Path, verified: set[str]) -> Path:
    """A blob as a file to serve in ranges (a video a browser seeks in): the local store's own file, or a copy of
    an S3 object in `cache_dir`. Checked against its key the first time this process serves it (`verified`
    remembers which); hashing hundreds of MB at every range request of a player would cost more than the video.
    Raises BlobNotFound or BlobCorrupted. Blocking: run it in a worker thread."""
    if isinstance(store, LocalBlobStore):
        path = store.path_for(digest)
        if not path.exists():
            raise BlobNotFound(digest)
    else:
        path = cache_dir / check_digest(digest)
        if path.exists():
            os.utime(path)  # in use: `purge_cache` leaves it
        else:
            cache_dir.mkdir(parents=True, exist_ok=True)
            partial = path.with_name(f"{digest}.{os.getpid()}.part")
            copy_verified(store, digest, partial)
            partial.replace(path)
            verified.add(digest)
    if digest not in verified:
        if sha256_file(path) != digest:
            raise BlobCorrupted(digest)
        verified.add(digest)
    return path


def purge_cache(cache_dir: Path, unused_seconds: float) -> int:
    """Remove the cached copies (`verified_file`) not served for `unused_seconds`, and copies left half-made: the
    cache stays the size of what is being watched, and a video retention deleted from the store does not live on
    here. Returns how many files went. Blocking: run it in a worker thread."""
    if not cache_dir.is_dir():
        return 0
    cutoff = time.time() - unused_seconds
    removed = 0
    for path in cache_dir.iterdir():
        with contextlib.suppress(FileNotFoundError):
            if path.is_file() and path.stat().st_mtime < cutoff:
                path.unlink()
                removed += 1
    return removed


def verified(data: bytes, digest: str) -> bytes:
    if hashlib.sha256(data).hexdigest() != digest:
        raise BlobCorrupted(digest)
    return data


class S3BlobStore:
    """Photos in an S3-compatible bucket (obstore: a small, fast client with multipart uploads). Keys are
    `<prefix><sha256>`; an object is written only once, as the same key always holds the same bytes."""

    MULTIPART_CHUNK = 8 * 1024 * 1024  # uploads larger than this go in parts, streamed from the file

    def __init__(self, config: BlobStoreConfig) -> None:
        options: obstore.store.S3Config = {"endpoint": config.s3_endpoint_url} if config.s3_endpoint_url else {}
        self.prefix = config.s3_prefix
        self.store = obstore.store.S3Store(
            config.s3_bucket,
            region=config.s3_region,
            access_key_id=config.s3_access_key_id or None,
            secret_access_key=config.s3_secret_access_key or None,
            client_options={
                "allow_http": config.s3_endpoint_url.startswith("http://"),
                "timeout": "30s",
                "connect_timeout": "5s",
            },
            retry_config={
                "max_retries": 2,
                "retry_timeout": timedelta(seconds=20),
                "backoff": {"init_backoff": timedelta(milliseconds=100)},
            },
            config=options,
        )

    def key(self, digest: str) -> str:
        return self.prefix + check_digest(digest)

    @contextmanager
    def _calls(self, digest: str = "") -> Iterator[None]:
        """obstore's errors as ours: a missing object (when `digest` names one) is BlobNotFound, anything else
        (a missing bucket, refused credentials, no answer) is the store failing."""
        try:
            yield
        except (s3_errors.NotFoundError, FileNotFoundError) as exc:  # obstore answers a 404 with either
            if not digest or "NoSuchBucket" in str(exc):  # not a missing photo: the bucket itself is missing
                raise BlobStoreUnavailable("the photo bucket does not exist") from exc
            raise BlobNotFound(digest) from exc
        except (s3_errors.BaseError, OSError) as exc:
            raise BlobStoreUnavailable(f"the photo store failed: {type(exc).__name__}") from exc

    def put_file(self, path: Path) -> str:
        digest = sha256_file(path)
        return self.adopt_file(path, digest, keep=True)

    def adopt_file(self, path: Path, digest: str, keep: bool = False) -> str:
        """Upload a file whose SHA-256 the caller has (a checked upload), streamed in parts when large; the
        local file is removed afterwards (unless `keep`), as the local store moves it."""
        if not self.exists(digest):
            with self._calls(), Path(path).open("rb") as fh:  # a 404 on a write: the bucket is missing
                obstore.put(
                    self.store,
                    self.key(digest),
                    fh,
                    chunk_size=self.MULTIPART_CHUNK,
                    use_multipart=Path(path).stat().st_size > self.MULTIPART_CHUNK,
                )
        if not keep:
            Path(path).unlink(missing_ok=True)
        return digest

    def put_bytes(self, data: bytes) -> str:
        digest = hashlib.sha256(data).hexdigest()
        if not self.exists(digest):
            with self._calls():
                obstore.put(self.store, self.key(digest), data, use_multipart=False)
        return digest

    def exists(self, digest: str) -> bool:
        key = self.key(digest)  # not a digest: BlobNotFound, as from the local store
        try:
            with self._calls(digest):
                obstore.head(self.store, key)
        except BlobNotFound:
            return False
        return True

    def open(self, digest: str) -> BinaryIO:
        return io.BytesIO(self._get(digest))

    def _get(self, digest: str) -> bytes:
        with self._calls(digest):
            return bytes(obstore.get(self.store, self.key(digest)).bytes())

    def read_verified(self, digest: str) -> bytes:
        return verified(self._get(digest), digest)

    def delete(self, digest: str) -> None:
        with self._calls(digest):
            obstore.delete(self.store, self.key(digest))

    def ping(self) -> None:
        """The bucket answers and lets us in (a missing bucket or wrong credentials fail here, at readiness)."""
        with self._calls():
            next(iter(obstore.list(self.store, prefix=self.prefix, chunk_size=1)), None)  # one page, not all
