"""Evidence packages for the prosecutor (OM), and their offline check.

A package is one ZIP file: the originals of an incident's photos exactly as they arrived, their sanitised
copies, the reports, the verification results with reasons, each report's chain of custody and the audit
entries behind it (ISO/IEC 27037: identify, collect, preserve). `manifest.json` lists every file with its
SHA-256 and size (and, for a photo, the hash recorded when it arrived); `manifest.sig.json` signs the exact
bytes of the manifest with the bridge's Ed25519 key, by key id. The check needs none of our systems:

    python -m burgermelding_shared.evidence verify package.zip --public-key '<JWK>'

It says exactly what does not match (which file, which hash was expected and which was found) and never stops
at the first damage: a court needs to know what of the package can still be relied on.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import sys
import zipfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from burgermelding_shared import auditchain
from burgermelding_shared.service_auth import ServiceKey
from burgermelding_shared.timeutil import utcnow

FORMAT = "burgermelding-evidence-package/1"
MANIFEST = "manifest.json"
SIGNATURE = "manifest.sig.json"
CHUNK = 1024 * 1024


def _canonical(document: Any) -> bytes:
    return json.dumps(document, sort_keys=True, indent=2, ensure_ascii=False, default=str).encode()


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def audit_lines(entries: list[dict[str, Any]]) -> bytes:
    """Audit entries (as `auditchain.as_json` gives them) as JSON lines, each checkable on its own."""
    return b"".join(json.dumps(e, sort_keys=True, ensure_ascii=False, default=str).encode() + b"\n"
                    for e in entries)


class PackageWriter:
    """Writes a package member by member (an original is never held twice in memory), then signs it."""

    def __init__(self, path: Path, *, about: dict[str, Any]) -> None:
        self.path = path
        self._zip = zipfile.ZipFile(path, "w")
        self._about = about
        self._files: list[dict[str, Any]] = []

    def _check_name(self, name: str) -> None:
        pure = PurePosixPath(name)
        if (not name or "\\" in name or pure.is_absolute() or ".." in pure.parts
                or name in (MANIFEST, SIGNATURE) or any(f["name"] == name for f in self._files)):
            raise ValueError(f"not a member name a package may have: {name!r}")

    def _listed(self, name: str, kind: str, digest: str, size: int, claimed: str | None) -> None:
        if claimed is not None and claimed != digest:
            # Never package a photo that no longer is what arrived: that is a finding, not an exhibit.
            raise ValueError(f"{name}: its bytes hash to {digest}, not to the recorded {claimed}")
        entry: dict[str, Any] = {"name": name, "kind": kind, "sha256": digest, "size_bytes": size}
        if claimed is not None:
            entry["sha256_claimed"] = claimed
        self._files.append(entry)

    def add_bytes(self, name: str, data: bytes, *, kind: str, sha256_claimed: str | None = None) -> None:
        self._check_name(name)
        self._listed(name, kind, hashlib.sha256(data).hexdigest(), len(data), sha256_claimed)
        # Photos are compressed already; JSON is not.
        compression = zipfile.ZIP_DEFLATED if name.endswith((".json", ".jsonl")) else zipfile.ZIP_STORED
        self._zip.writestr(name, data, compress_type=compression)

    def add_file(self, name: str, source: Path, *, kind: str, sha256_claimed: str | None = None) -> None:
        self._check_name(name)
        digest, size = hashlib.sha256(), 0
        with source.open("rb") as fh, self._zip.open(name, "w") as out:
            while chunk := fh.read(CHUNK):
                digest.update(chunk)
                size += len(chunk)
                out.write(chunk)
        try:
            self._listed(name, kind, digest.hexdigest(), size, sha256_claimed)
        except ValueError:
            self._zip.close()
            raise

    def add_json(self, name: str, document: Any, *, kind: str) -> None:
        self.add_bytes(name, _canonical(document), kind=kind)

    def finish(self, key: ServiceKey) -> dict[str, Any]:
        manifest = _canonical({"format": FORMAT, "about": self._about, "files": self._files,
                               "created_at": utcnow().isoformat()})
        manifest_sha256 = hashlib.sha256(manifest).hexdigest()
        signature = {"algorithm": "Ed25519", "key_id": key.kid, "public_key": key.public_jwk(),
                     "manifest_sha256": manifest_sha256, "signature": _b64(key.private_key.sign(manifest))}
        self._zip.writestr(MANIFEST, manifest, compress_type=zipfile.ZIP_DEFLATED)
        self._zip.writestr(SIGNATURE, _canonical(signature), compress_type=zipfile.ZIP_DEFLATED)
        self._zip.close()
        package = hashlib.sha256()
        with self.path.open("rb") as fh:
            while chunk := fh.read(CHUNK):
                package.update(chunk)
        return {"manifest_sha256": manifest_sha256, "files": len(self._files), "package_sha256": package.hexdigest(),
                "size_bytes": self.path.stat().st_size, "key_id": key.kid}


@dataclass(frozen=True)
class Finding:
    name: str  # the member concerned, "" for the package as a whole
    problem: str
    text: str


@dataclass
class PackageCheck:
    findings: list[Finding] = field(default_factory=list)
    files_checked: int = 0
    key_id: str | None = None
    about: dict[str, Any] | None = None
    key_trusted: bool = False

    @property
    def ok(self) -> bool:
        return not self.findings

    def summary(self) -> str:
        if self.ok:
            lines = [f"package OK: {self.files_checked} files match the manifest, signed by key {self.key_id}"]
            if not self.key_trusted:
                lines.append("note: signature checked with the key inside the package only; pass --public-key to "
                             "check who signed it")
            return "\n".join(lines)
        return "\n".join(["package does NOT verify:"] +
                         [f"  {f.name or '(package)'}: [{f.problem}] {f.text}" for f in self.findings])


def _raw(key: Ed25519PublicKey) -> bytes:
    return key.public_bytes(Encoding.Raw, PublicFormat.Raw)


def _read(archive: zipfile.ZipFile, name: str) -> tuple[str, int] | str:
    """(sha256, size) of a member, or the reason it cannot be read."""
    digest, size = hashlib.sha256(), 0
    try:
        with archive.open(name) as fh:
            while chunk := fh.read(CHUNK):
                digest.update(chunk)
                size += len(chunk)
    except (zipfile.BadZipFile, zlib.error, OSError, EOFError) as exc:
        return f"{type(exc).__name__}: {exc}"
    return digest.hexdigest(), size


def verify_package(path: Path, trusted_keys: dict[str, Ed25519PublicKey] | None = None) -> PackageCheck:
    check = PackageCheck()
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as exc:
        check.findings.append(Finding("", "unreadable_package", f"not a readable ZIP file: {exc}"))
        return check
    with archive:
        names = set(archive.namelist())
        if MANIFEST not in names:
            check.findings.append(Finding(MANIFEST, "missing_manifest", "the package has no manifest"))
            return check
        try:
            manifest_bytes = archive.read(MANIFEST)
            manifest = json.loads(manifest_bytes)
        except (zipfile.BadZipFile, zlib.error, ValueError) as exc:
            check.findings.append(Finding(MANIFEST, "damaged_member", f"the manifest cannot be read: {exc}"))
            return check
        check.about = manifest.get("about")
        _check_signature(archive, names, manifest_bytes, trusted_keys, check)
        listed = {f["name"]: f for f in manifest.get("files", [])}
        for name in sorted(names - set(listed) - {MANIFEST, SIGNATURE}):
            check.findings.append(Finding(name, "extra_file", "in the package but not in the manifest"))
        for name, entry in listed.items():
            if name not in names:
                check.findings.append(Finding(name, "missing_file", f"listed in the manifest (sha256 "
                                              f"{entry['sha256']}) but not in the package"))
                continue
            read = _read(archive, name)
            if isinstance(read, str):
                check.findings.append(Finding(name, "damaged_member", f"cannot be read: {read}"))
                continue
            digest, size = read
            check.files_checked += 1
            if digest != entry["sha256"]:
                check.findings.append(Finding(name, "hash_mismatch", f"sha256 is {digest}, the manifest says "
                                              f"{entry['sha256']}"))
            elif size != entry["size_bytes"]:
                check.findings.append(Finding(name, "size_mismatch", f"{size} bytes, the manifest says "
                                              f"{entry['size_bytes']}"))
            if entry.get("sha256_claimed") not in (None, entry["sha256"]):
                check.findings.append(Finding(name, "claimed_hash_mismatch", f"the hash recorded on arrival was "
                                              f"{entry['sha256_claimed']}, the file's is {entry['sha256']}"))
            if name.endswith(".jsonl") and entry.get("kind") == "audit" and digest == entry["sha256"]:
                _check_audit_lines(archive.read(name), name, check)
    return check


def _check_signature(archive: zipfile.ZipFile, names: set[str], manifest: bytes,
                     trusted_keys: dict[str, Ed25519PublicKey] | None, check: PackageCheck) -> None:
    if SIGNATURE not in names:
        check.findings.append(Finding(SIGNATURE, "missing_signature", "the manifest is not signed"))
        return
    try:
        signed = json.loads(archive.read(SIGNATURE))
        kid, embedded = auditchain.public_key_of(signed["public_key"])
        check.key_id = signed["key_id"]
        embedded.verify(_unb64(signed["signature"]), manifest)
    except InvalidSignature:
        check.findings.append(Finding(MANIFEST, "bad_signature", f"the manifest (sha256 "
                                      f"{hashlib.sha256(manifest).hexdigest()}) is not the one key "
                                      f"{check.key_id} signed: it was changed"))
        return
    except (zipfile.BadZipFile, zlib.error, ValueError, KeyError, TypeError) as exc:
        check.findings.append(Finding(SIGNATURE, "bad_signature", f"the signature cannot be read: {exc}"))
        return
    if signed.get("manifest_sha256") != hashlib.sha256(manifest).hexdigest():
        check.findings.append(Finding(MANIFEST, "manifest_hash_mismatch", "the signature names another manifest"))
    if trusted_keys is not None:
        trusted = trusted_keys.get(signed["key_id"])
        if trusted is None or _raw(trusted) != _raw(embedded) or kid != signed["key_id"]:
            check.findings.append(Finding(SIGNATURE, "untrusted_key", f"signed with key {signed['key_id']}, "
                                          "which is not (or not equal to) the key given to check it with"))
        else:
            check.key_trusted = True


def _check_audit_lines(data: bytes, name: str, check: PackageCheck) -> None:
    for number, line in enumerate(data.splitlines(), start=1):
        try:
            entry = json.loads(line)
            intact = auditchain.check_entry(entry)
        except (ValueError, KeyError, TypeError):
            intact, entry = False, {"seq": f"line {number}"}
        if not intact:
            check.findings.append(Finding(name, "audit_entry_changed", f"audit entry {entry.get('seq')} no longer "
                                          "matches its hash"))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m burgermelding_shared.evidence")
    sub = parser.add_subparsers(dest="command", required=True)
    verify = sub.add_parser("verify", help="check an evidence package offline")
    verify.add_argument("package", type=Path)
    verify.add_argument("--public-key", action="append", default=[], metavar="JWK",
                        help="the signer's public key (a JWK with kid), as published by the force; repeatable")
    args = parser.parse_args(argv)
    keys = dict(auditchain.public_key_of(json.loads(jwk)) for jwk in args.public_key) if args.public_key else None
    result = verify_package(args.package, keys)
    print(result.summary())
    return 0 if result.ok else 1


if __name__ == "__main__":
    sys.exit(main())
