"""Photo storage behind a small interface, content-addressed by SHA-256.

The default is a local folder; anything with the same methods (an S3-compatible bucket, say) can take
its place. Writes are atomic: a temporary file in the same folder, fsync, then rename, so a reader never sees
half a photo and a crash leaves at most a stray temporary file.
"""

from __future__ import annotations

import errno
import hashlib
import os
import re
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO, Protocol

_DIGEST = re.compile(r"^[0-9a-f]{64}$")
CHUNK = 1024 * 1024


class BlobNotFound(LookupError):
    pass


class BlobCorrupted(ValueError):
    """The stored bytes no longer hash to their key."""


class BlobStore(Protocol):
    def put_file(self, path: Path) -> str: ...
    def adopt_file(self, path: Path, digest: str) -> str: ...
    def put_bytes(self, data: bytes) -> str: ...
    def open(self, digest: str) -> BinaryIO: ...
    def exists(self, digest: str) -> bool: ...


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
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(dir=target.parent, prefix=".incoming-")
        try:
            with os.fdopen(fd, "wb") as fh:
                yield fh
                fh.flush()
                os.fsync(fh.fileno())
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
            data = fh.read()
        if hashlib.sha256(data).hexdigest() != digest:
            raise BlobCorrupted(digest)
        return data
