"""Evidence packages for the prosecutor (OM), and their offline check.

A package is one ZIP file: the originals of an incident's photos exactly as they arrived, their sanitised
copies, the reports, the verification results with reasons, each report's chain of custody and the audit
entries behind it (ISO/IEC 27037: identify, collect, preserve). `manifest.json` lists every file with its
SHA-256 and size (and, for a photo, the hash recorded when it arrived); `manifest.sig.json` signs the exact
bytes of the manifest with the bridge's Ed25519 key, by key id. The check needs none of our systems:

    python -m burgermelding_shared.evidence verify package.zip --trusted-keys keys.json

A signature shows who made a package only to someone who holds the signer's public key from elsewhere. The
package carries its signer's public key too, but whoever alters a package can sign it again with a key of
their own and put that one in. So the check says OK only for a package signed by a key the checker trusts:
`--trusted-keys`, a JWK Set (RFC 7517, `{"keys": [JWK, ...]}`) of the keys the police publish, which a
prosecutor's office keeps (`trusted-key` prints a key's entry or adds it to such a file), or `--public-key
'<JWK>'`. Without one it names the key that signed (its id, and its RFC 7638 thumbprint to compare with the
published one) and says that the package is not proven.

The archive itself is checked before anything in it is believed: a ZIP may hold two members with one name
(Python reads the last, a viewer may show the first), paths that lead out of the folder it is unpacked in,
symbolic links, directories, devices and encrypted members. Each of these is refused and named, as is every
member the manifest does not list, and every listed one that is missing.

It says exactly what does not match (which file, which hash was expected and which was found) and never stops
at the first damage: a court needs to know what of the package can still be relied on. `verify` exits with
0: intact, and signed by a trusted key; 1: it does not verify (damaged, altered, refused members, or signed
by a key that is not trusted); 2: the command was used wrongly (arguments, an unreadable key or key file);
3: intact, but no trusted key was given, so nothing is proven about who made it.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import lzma
import os
import re
import stat
import sys
import unicodedata
import zipfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from burgermelding_shared import auditchain
from burgermelding_shared.service_auth import ServiceKey, TrustedKeys, load_service_key
from burgermelding_shared.timeutil import utcnow

FORMAT = "burgermelding-evidence-package/1"
MANIFEST = "manifest.json"
SIGNATURE = "manifest.sig.json"
CHUNK = 1024 * 1024

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_UNPROVEN = 0, 1, 2, 3  # 2 is also what argparse exits with
EXIT_CODES = {"ok": EXIT_OK, "failed": EXIT_FAILED, "unproven": EXIT_UNPROVEN}

# Why a member is refused before its bytes are looked at, by reason code.
REFUSALS = {
    "duplicate_member": "{count} members have this name, or one that differs only in case or Unicode form: Python "
    "reads the last, an unzip tool or viewer may show another",
    "absolute_path": "an absolute path: unpacked, it would be written outside the package's folder",
    "parent_path": "a path with '..': unpacked, it would be written outside the package's folder",
    "unsafe_name": "a name that tools read differently (a backslash, a control or invisible character, an empty or "
    "'.' part, or a trailing '/')",
    "symlink_member": "a symbolic link: unpacked, it would be a pointer to some other file, whatever its bytes hash to",
    "directory_member": "a directory entry: a package holds files only",
    "special_member": "not a regular file (a device, pipe or socket)",
    "encrypted_member": "encrypted: it cannot be read without a password",
}
# What reading a member can raise once it is known to be a plain file (lzma's errors are not OSErrors).
_UNREADABLE = (zipfile.BadZipFile, zlib.error, lzma.LZMAError, OSError, EOFError, NotImplementedError)
_DRIVE = re.compile(r"[A-Za-z]:")
_MSDOS_DIRECTORY = 0x10  # the directory bit of a member's MS-DOS attributes
_ENCRYPTED = 0x1  # general purpose flag bit 0


def _canonical(document: Any) -> bytes:
    return json.dumps(document, sort_keys=True, indent=2, ensure_ascii=False, default=str).encode()


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def audit_lines(entries: list[dict[str, Any]]) -> bytes:
    """Audit entries (as `auditchain.as_json` gives them) as JSON lines, each checkable on its own."""
    return b"".join(json.dumps(e, sort_keys=True, ensure_ascii=False, default=str).encode() + b"\n" for e in entries)


def name_problem(name: str) -> str | None:
    """Why `name` may not name a member (a reason code of REFUSALS), None if it may: only a plain relative path
    is unpacked by every tool as the same file inside the package's folder. The writer and the check share it."""
    parts = re.split(r"[/\\]", name)
    if name.startswith(("/", "\\")) or _DRIVE.match(name):
        return "absolute_path"
    if ".." in parts:
        return "parent_path"
    # Windows tools split at a backslash; a control or bidi character makes a name look like another one (or
    # breaks the lines of the report); some tools drop empty and "." parts, others do not.
    if "\\" in name or not name.isprintable() or any(part in ("", ".") for part in parts):
        return "unsafe_name"
    return None


def _one_file(name: str) -> str:
    """The file a name becomes on a file system that ignores case or Unicode form (Windows, macOS): two names
    with the same result are one file there, so a package may hold only one of them."""
    return unicodedata.normalize("NFD", unicodedata.normalize("NFD", name).casefold())


def member_problem(info: zipfile.ZipInfo) -> str | None:
    """Why a member is refused whatever its bytes (a reason code of REFUSALS), None for a plain file."""
    kind = stat.S_IFMT(info.external_attr >> 16)  # the Unix file type, 0 when the tool did not record one
    if kind == stat.S_IFLNK:
        return "symlink_member"
    if info.is_dir() or kind == stat.S_IFDIR or info.external_attr & _MSDOS_DIRECTORY:
        return "directory_member"
    if kind not in (0, stat.S_IFREG):
        return "special_member"
    if info.flag_bits & _ENCRYPTED:
        return "encrypted_member"
    # The name as stored: zipfile cuts `filename` at a NUL byte, other tools may not.
    return name_problem(info.orig_filename)


class PackageWriter:
    """Writes a package member by member (an original is never held twice in memory), then signs it."""

    def __init__(self, path: Path, *, about: dict[str, Any]) -> None:
        self.path = path
        self._zip = zipfile.ZipFile(path, "w")
        self._about = about
        self._files: list[dict[str, Any]] = []
        self._taken = {_one_file(MANIFEST), _one_file(SIGNATURE)}

    def _check_name(self, name: str) -> None:
        # Never write what the check would refuse.
        if name_problem(name) or _one_file(name) in self._taken:
            raise ValueError(f"not a member name a package may have: {name!r}")

    def _listed(self, name: str, kind: str, digest: str, size: int, claimed: str | None) -> None:
        if claimed is not None and claimed != digest:
            # Never package a photo that no longer is what arrived: that is a finding, not an exhibit.
            raise ValueError(f"{name}: its bytes hash to {digest}, not to the recorded {claimed}")
        entry: dict[str, Any] = {"name": name, "kind": kind, "sha256": digest, "size_bytes": size}
        if claimed is not None:
            entry["sha256_claimed"] = claimed
        self._files.append(entry)
        self._taken.add(_one_file(name))

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
        manifest = _canonical(
            {"format": FORMAT, "about": self._about, "files": self._files, "created_at": utcnow().isoformat()}
        )
        manifest_sha256 = hashlib.sha256(manifest).hexdigest()
        signature = {
            "algorithm": "Ed25519",
            "key_id": key.kid,
            "public_key": key.public_jwk(),
            "manifest_sha256": manifest_sha256,
            "signature": _b64(key.private_key.sign(manifest)),
        }
        self._zip.writestr(MANIFEST, manifest, compress_type=zipfile.ZIP_DEFLATED)
        self._zip.writestr(SIGNATURE, _canonical(signature), compress_type=zipfile.ZIP_DEFLATED)
        self._zip.close()
        package = hashlib.sha256()
        with self.path.open("rb") as fh:
            while chunk := fh.read(CHUNK):
                package.update(chunk)
        return {
            "manifest_sha256": manifest_sha256,
            "files": len(self._files),
            "package_sha256": package.hexdigest(),
            "size_bytes": self.path.stat().st_size,
            "key_id": key.kid,
        }


@dataclass(frozen=True)
class Finding:
    name: str  # the member concerned, "" for the package as a whole
    problem: str
    text: str


def _shown(text: str) -> str:
    # A forger's name or key id may hold line breaks or direction marks: escaped, it cannot forge the report.
    return text if text.isprintable() else ascii(text)


@dataclass
class PackageCheck:
    findings: list[Finding] = field(default_factory=list)
    files_checked: int = 0
    key_id: str | None = None  # the key that signed the manifest, as the package names it
    key_fingerprint: str | None = None  # the RFC 7638 thumbprint of the public key the package carries
    about: dict[str, Any] | None = None
    trust_checked: bool = False  # trusted keys were given
    key_trusted: bool = False  # and the signer is one of them

    @property
    def verdict(self) -> str:
        """ok (intact and signed by a trusted key), failed, or unproven (intact, but no trusted key was given)."""
        if self.findings:
            return "failed"
        return "ok" if self.key_trusted else "unproven"

    @property
    def ok(self) -> bool:
        return self.verdict == "ok"

    @property
    def exit_code(self) -> int:
        return EXIT_CODES[self.verdict]

    def summary(self) -> str:
        signer = f"key {_shown(self.key_id or '')} (fingerprint {self.key_fingerprint})"
        if self.verdict == "ok":
            return f"package OK: {self.files_checked} files match the manifest, signed by trusted {signer}"
        if self.verdict == "unproven":
            return "\n".join(
                [
                    f"package NOT PROVEN [no_trusted_key]: signed by {signer}, "
                    "but no trusted key was given to check it.",
                    f"  The {self.files_checked} files match the manifest and the manifest matches its signature, but "
                    "the key that signature was checked with came inside the package.",
                    "  Whoever alters a package can sign it again with a key of their own, and it then looks just like "
                    "this: this proves nothing about who made the package.",
                    "  To check who made it: give the keys the police publish "
                    "(--trusted-keys FILE or --public-key JWK), "
                    "or compare the fingerprint above with the published one.",
                ]
            )
        lines = ["package does NOT verify:"] + [
            f"  {_shown(f.name) or '(package)'}: [{f.problem}] {_shown(f.text)}" for f in self.findings
        ]
        if self.key_id is not None and not self.trust_checked:
            lines.append(
                f"the signature names {signer}; no trusted key was given, so who signed it was not checked either"
            )
        return "\n".join(lines)


def _raw(key: Ed25519PublicKey) -> bytes:
    return key.public_bytes(Encoding.Raw, PublicFormat.Raw)


def fingerprint(key: Ed25519PublicKey) -> str:
    """The key's RFC 7638 thumbprint (base64url SHA-256 of its JWK's required members): the same for the same
    key however its JWK is written, so it can be compared with the one the police publish."""
    required = json.dumps({"crv": "Ed25519", "kty": "OKP", "x": _b64(_raw(key))}, separators=(",", ":"))
    return _b64(hashlib.sha256(required.encode()).digest())


def public_jwk(kid: str, key: Ed25519PublicKey) -> dict[str, str]:
    """A public key as an entry of a trusted-keys file."""
    return {"kty": "OKP", "crv": "Ed25519", "x": _b64(_raw(key)), "kid": kid}


def _public_keys(jwks: Any, whose: str) -> dict[str, Ed25519PublicKey]:
    """Ed25519 public keys by key id, under the rules the services apply to the keys they trust (no private key,
    every key with an id, no id twice); ValueError otherwise."""
    if not isinstance(jwks, list) or not jwks or not all(isinstance(jwk, dict) for jwk in jwks):
        raise ValueError(f"{whose}: expected one or more JWKs")
    return {kid: key for kid, (_, key) in TrustedKeys.load({whose: jwks}).by_kid.items()}


def load_trusted_keys(document: Any) -> dict[str, Ed25519PublicKey]:
    """The keys of a trusted-keys file: a JWK Set (RFC 7517), `{"keys": [{"kty": "OKP", "crv": "Ed25519",
    "x": ..., "kid": ...}, ...]}`, as `trusted-key` writes it."""
    if not isinstance(document, dict) or "keys" not in document:
        raise ValueError('a trusted-keys file is a JWK Set: {"keys": [JWK, ...]}')
    return _public_keys(document["keys"], "the trusted keys")


def _read(archive: zipfile.ZipFile, name: str) -> tuple[str, int] | str:
    """(sha256, size) of a member, or the reason it cannot be read."""
    digest, size = hashlib.sha256(), 0
    try:
        with archive.open(name) as fh:
            while chunk := fh.read(CHUNK):
                digest.update(chunk)
                size += len(chunk)
    except _UNREADABLE as exc:
        return f"{type(exc).__name__}: {exc}"
    return digest.hexdigest(), size


def _plain_members(archive: zipfile.ZipFile, check: PackageCheck) -> tuple[set[str], set[str]]:
    """The names of the members that may be read, and of those refused (each named in a finding)."""
    by_file: dict[str, list[zipfile.ZipInfo]] = {}
    for info in archive.infolist():
        by_file.setdefault(_one_file(info.filename), []).append(info)
    plain: set[str] = set()
    refused: set[str] = set()
    for infos in by_file.values():
        for info in infos:
            if info.filename in refused:
                continue
            problem = "duplicate_member" if len(infos) > 1 else member_problem(info)
            if problem is None:
                plain.add(info.filename)
            else:
                refused.add(info.filename)
                check.findings.append(Finding(info.orig_filename, problem, REFUSALS[problem].format(count=len(infos))))
    return plain, refused


def _listing(manifest: Any) -> dict[str, dict[str, Any]] | str:
    """The manifest's files by name, or what is wrong with it: a manifest is read before anyone knows who wrote
    it, so it is not assumed to be the one the writer makes."""
    files = manifest.get("files") if isinstance(manifest, dict) else None
    if not isinstance(files, list):
        return "it has no list of files"
    listed: dict[str, dict[str, Any]] = {}
    for entry in files:
        if not (
            isinstance(entry, dict)
            and isinstance(entry.get("name"), str)
            and isinstance(entry.get("sha256"), str)
            and isinstance(entry.get("size_bytes"), int)
        ):
            return f"an entry is not a file with a name, sha256 and size_bytes: {ascii(entry)[:120]}"
        if entry["name"] in listed:
            return f"it lists {entry['name']!a} twice"
        listed[entry["name"]] = entry
    return listed


def verify_package(path: Path, trusted_keys: dict[str, Ed25519PublicKey] | None = None) -> PackageCheck:
    """Check a package; with `trusted_keys` (by key id), also that one of them signed it. Never raises on a
    damaged or forged package: every problem is a finding."""
    check = PackageCheck(trust_checked=trusted_keys is not None)
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as exc:
        check.findings.append(Finding("", "unreadable_package", f"not a readable ZIP file: {exc}"))
        return check
    with archive:
        plain, refused = _plain_members(archive, check)
        if MANIFEST not in plain:
            # A refused manifest (two of them, say) is named already; which one would be meant is unknowable.
            if MANIFEST not in refused:
                check.findings.append(Finding(MANIFEST, "missing_manifest", "the package has no manifest"))
            return check
        try:
            manifest_bytes = archive.read(MANIFEST)
            manifest = json.loads(manifest_bytes)
        except (*_UNREADABLE, ValueError) as exc:
            check.findings.append(Finding(MANIFEST, "damaged_member", f"the manifest cannot be read: {exc}"))
            return check
        _check_signature(archive, plain, refused, manifest_bytes, trusted_keys, check)
        listed = _listing(manifest)
        if isinstance(listed, str):
            check.findings.append(Finding(MANIFEST, "bad_manifest", f"the manifest is not a package's: {listed}"))
            return check
        about = manifest.get("about")
        check.about = about if isinstance(about, dict) else None
        for name in sorted(plain - set(listed) - {MANIFEST, SIGNATURE}):
            check.findings.append(Finding(name, "extra_file", "in the package but not in the manifest"))
        for name, entry in listed.items():
            if name in refused:
                continue  # named already, and its bytes mean nothing
            if name not in plain:
                check.findings.append(
                    Finding(
                        name,
                        "missing_file",
                        f"listed in the manifest (sha256 {entry['sha256']}) but not in the package",
                    )
                )
                continue
            read = _read(archive, name)
            if isinstance(read, str):
                check.findings.append(Finding(name, "damaged_member", f"cannot be read: {read}"))
                continue
            digest, size = read
            check.files_checked += 1
            if digest != entry["sha256"]:
                check.findings.append(
                    Finding(name, "hash_mismatch", f"sha256 is {digest}, the manifest says {entry['sha256']}")
                )
            elif size != entry["size_bytes"]:
                check.findings.append(
                    Finding(name, "size_mismatch", f"{size} bytes, the manifest says {entry['size_bytes']}")
                )
            if entry.get("sha256_claimed") not in (None, entry["sha256"]):
                check.findings.append(
                    Finding(
                        name,
                        "claimed_hash_mismatch",
                        f"the hash recorded on arrival was {entry['sha256_claimed']}, the file's is {entry['sha256']}",
                    )
                )
            if name.endswith(".jsonl") and entry.get("kind") == "audit" and digest == entry["sha256"]:
                _check_audit_lines(archive.read(name), name, check)
    return check


def _check_signature(
    archive: zipfile.ZipFile,
    plain: set[str],
    refused: set[str],
    manifest: bytes,
    trusted_keys: dict[str, Ed25519PublicKey] | None,
    check: PackageCheck,
) -> None:
    if SIGNATURE not in plain:
        if SIGNATURE not in refused:
            check.findings.append(Finding(SIGNATURE, "missing_signature", "the manifest is not signed"))
        return
    try:
        signed = json.loads(archive.read(SIGNATURE))
        ((kid, embedded),) = _public_keys([signed["public_key"]], "the signature's key").items()
        check.key_id, check.key_fingerprint = kid, fingerprint(embedded)
        embedded.verify(_unb64(signed["signature"]), manifest)
    except InvalidSignature:
        check.findings.append(
            Finding(
                MANIFEST,
                "bad_signature",
                f"the manifest (sha256 "
                f"{hashlib.sha256(manifest).hexdigest()}) is not the one key "
                f"{kid} signed: it was changed",
            )
        )
        return
    except (*_UNREADABLE, ValueError, KeyError, TypeError, AttributeError) as exc:
        check.findings.append(Finding(SIGNATURE, "bad_signature", f"the signature cannot be read: {exc}"))
        return
    if signed.get("key_id") != kid:
        check.findings.append(
            Finding(
                SIGNATURE, "bad_signature", f"the signature names key {signed.get('key_id')!a} but carries key {kid}"
            )
        )
        return
    if signed.get("manifest_sha256") != hashlib.sha256(manifest).hexdigest():
        check.findings.append(Finding(MANIFEST, "manifest_hash_mismatch", "the signature names another manifest"))
    if trusted_keys is None:
        return
    trusted = trusted_keys.get(kid)
    if trusted is None:
        check.findings.append(
            Finding(
                SIGNATURE,
                "untrusted_key",
                f"signed with key {kid} (fingerprint "
                f"{check.key_fingerprint}), which is not among the trusted keys "
                f"({', '.join(sorted(trusted_keys))})",
            )
        )
    elif _raw(trusted) != _raw(embedded):
        check.findings.append(
            Finding(
                SIGNATURE,
                "key_mismatch",
                f"signed with a key that calls itself {kid} "
                f"(fingerprint {check.key_fingerprint}), but the trusted key {kid} has "
                f"fingerprint {fingerprint(trusted)}: another key under its id",
            )
        )
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
            check.findings.append(
                Finding(name, "audit_entry_changed", f"audit entry {entry.get('seq')} no longer matches its hash")
            )


def _given_keys(jwks: list[str], files: list[Path]) -> dict[str, Ed25519PublicKey] | None:
    """The keys given on the command line (None: none was given); ValueError or OSError if one cannot be used."""
    if not jwks and not files:
        return None
    sources: list[tuple[str, list[str] | Path]] = [("--public-key", jwks)] if jwks else []
    sources += [(str(path), path) for path in files]
    keys: dict[str, Ed25519PublicKey] = {}
    for source, given in sources:
        try:
            loaded = load_trusted_keys(
                {"keys": [json.loads(jwk) for jwk in given]}
                if isinstance(given, list)
                else json.loads(given.read_text(encoding="utf-8"))
            )
        except (ValueError, OSError) as exc:
            raise ValueError(f"{source}: {exc}") from exc
        for kid, key in loaded.items():
            if kid in keys and _raw(keys[kid]) != _raw(key):
                raise ValueError(f"{source}: key id {kid} is given twice, as two different keys")
            keys[kid] = key
    return keys


def _trusted_key(jwk_text: str | None, add_to: Path | None) -> int:
    """Print a key's trusted-keys entry, or add it to a trusted-keys file."""
    jwk = json.loads(sys.stdin.read() if jwk_text is None else jwk_text)
    if isinstance(jwk, dict) and "d" in jwk:
        # A service's own SERVICE_KEY setting: only its public half ever leaves this function.
        own = load_service_key("evidence", jwk)
        kid, key = own.kid, own.private_key.public_key()
    else:
        ((kid, key),) = _public_keys([jwk], "the key given").items()
    entry = public_jwk(kid, key)
    if add_to is None:
        print(json.dumps({"keys": [entry]}, indent=2))
        print(f"key {kid}, fingerprint {fingerprint(key)}", file=sys.stderr)
        return EXIT_OK
    document: dict[str, Any] = {"keys": []}
    if add_to.exists():
        document = json.loads(add_to.read_text(encoding="utf-8"))
        known = load_trusted_keys(document)
        if kid in known and _raw(known[kid]) != _raw(key):
            raise ValueError(
                f"{add_to} holds another key under id {kid} (fingerprint {fingerprint(known[kid])}); "
                "remove that one first if the police replaced it"
            )
        if kid in known:
            print(f"key {kid} (fingerprint {fingerprint(key)}) is in {add_to} already")
            return EXIT_OK
    document["keys"].append(entry)
    partial = add_to.with_name(add_to.name + ".partial")
    partial.write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
    os.replace(partial, add_to)  # a file half written is never read as the list
    print(f"key {kid} (fingerprint {fingerprint(key)}) added to {add_to}, which now holds {len(document['keys'])}")
    return EXIT_OK


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m burgermelding_shared.evidence")
    sub = parser.add_subparsers(dest="command", required=True)
    verify = sub.add_parser(
        "verify",
        help="check an evidence package offline",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="exit codes: 0 intact and signed by a trusted key; 1 does not verify (damaged, "
        "altered, refused\nmembers, or an untrusted signer); 2 wrong use (arguments, "
        "keys); 3 intact, but no trusted\nkey was given, so nothing is proven about who "
        "made it",
    )
    verify.add_argument("package", type=Path)
    verify.add_argument(
        "--trusted-keys",
        action="append",
        default=[],
        type=Path,
        metavar="FILE",
        help='the keys the police publish, as a JWK Set ({"keys": [JWK, ...]}); repeatable',
    )
    verify.add_argument(
        "--public-key",
        action="append",
        default=[],
        metavar="JWK",
        help="a trusted public key (a JWK with kid), as published by the force; repeatable",
    )
    entry = sub.add_parser("trusted-key", help="print a key's entry for a --trusted-keys file, or add it to one")
    entry.add_argument(
        "jwk",
        nargs="?",
        help="the key as a JWK: a public one, or a service's private key (only "
        "its public half is written); read from standard input when left out",
    )
    entry.add_argument(
        "--add-to",
        type=Path,
        metavar="FILE",
        help="add the key to this trusted-keys file (made "
        "if there is none); a key id it holds already for another key is refused",
    )
    args = parser.parse_args(argv)
    try:
        if args.command == "trusted-key":
            return _trusted_key(args.jwk, args.add_to)
        keys = _given_keys(args.public_key, args.trusted_keys)
    except (ValueError, OSError) as exc:
        parser.error(str(exc))  # exits with EXIT_USAGE
    result = verify_package(args.package, keys)
    print(result.summary())
    return result.exit_code


if __name__ == "__main__":
    sys.exit(main())
