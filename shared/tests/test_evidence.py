"""Evidence packages: a package verifies offline, and every kind of damage is named, never raised."""

from __future__ import annotations

import base64
import hashlib
import io
import json
import stat
import subprocess
import sys
import warnings
import zipfile
from pathlib import Path

import pytest
from PIL import Image

from burgermelding_shared import auditchain, evidence
from burgermelding_shared.service_auth import ServiceKey, new_key

KEY = new_key("dispatch-bridge", "bridge-evidence-test")
TRUSTED = {KEY.kid: KEY.private_key.public_key()}
FINGERPRINT = evidence.fingerprint(KEY.private_key.public_key())
MALLORY = new_key("dispatch-bridge", "mallory-2026")
PHOTO = "reports/BM-1/originals/p1.jpg"
REPORT = "reports/BM-1/report.json"


def jpeg(seed: int) -> bytes:
    image = Image.effect_noise((320, 240), 40 + seed).convert("RGB")
    exif = image.getexif()
    exif[0x010F] = "Google"
    out = io.BytesIO()
    image.save(out, "JPEG", quality=90, exif=exif)
    return out.getvalue()


def entries() -> list[dict]:
    prev, rows = auditchain.GENESIS, []
    for seq in (1, 2):
        row = {
            "seq": seq,
            "at": auditchain.timestamp(),
            "service": "report-intake",
            "actor": "report-intake",
            "role": "service",
            "action": "photo.received",
            "target_type": "photo",
            "target_id": f"p{seq}",
            "report_id": "r1",
            "detail": auditchain.canonical({"sha256": "ab" * 32}),
            "prev_hash": prev,
        }
        row["entry_hash"] = prev = auditchain.entry_hash(row)
        rows.append(auditchain.as_json(row))
    return rows


def package(tmp_path: Path) -> tuple[Path, bytes]:
    original = jpeg(1)
    writer = evidence.PackageWriter(tmp_path / "p.zip", about={"incident_id": "i1"})
    writer.add_bytes(
        "reports/BM-1/originals/p1.jpg", original, kind="original", sha256_claimed=hashlib.sha256(original).hexdigest()
    )
    writer.add_json("reports/BM-1/report.json", {"description": "één"}, kind="report")
    writer.add_bytes("reports/BM-1/audit/report-intake.jsonl", evidence.audit_lines(entries()), kind="audit")
    signed = writer.finish(KEY)
    assert signed["files"] == 3 and signed["key_id"] == KEY.kid
    return tmp_path / "p.zip", original


def rewrite(path: Path, target: Path, change: dict[str, bytes | None], add: dict[str, bytes] | None = None) -> Path:
    with zipfile.ZipFile(path) as source, zipfile.ZipFile(target, "w") as out:
        for name in source.namelist():
            data = change.get(name, source.read(name))
            if data is not None:
                out.writestr(name, data)
        for name, data in (add or {}).items():
            out.writestr(name, data)
    return target


def test_a_package_is_ok_only_against_a_trusted_key(tmp_path: Path) -> None:
    path, _ = package(tmp_path)
    trusted = evidence.verify_package(path, TRUSTED)
    assert trusted.ok and trusted.exit_code == evidence.EXIT_OK and "package OK" in trusted.summary()
    # Intact, but checked only with the key it carries: nothing is proven about who made it.
    alone = evidence.verify_package(path)
    assert not alone.ok and alone.findings == [] and alone.exit_code == evidence.EXIT_UNPROVEN
    assert KEY.kid in alone.summary() and FINGERPRINT in alone.summary() and "package OK" not in alone.summary()
    assert "proves nothing about who made the package" in alone.summary()
    other = new_key("dispatch-bridge", KEY.kid)  # the same key id, another key
    untrusted = evidence.verify_package(path, {KEY.kid: other.private_key.public_key()})
    assert [f.problem for f in untrusted.findings] == ["key_mismatch"]
    assert untrusted.exit_code == evidence.EXIT_FAILED


def test_the_fingerprint_is_the_rfc_7638_thumbprint() -> None:
    # RFC 8037, appendix A.3: the thumbprint of the Ed25519 key of appendix A.2.
    _, key = evidence.load_trusted_keys(
        {
            "keys": [
                {"kty": "OKP", "crv": "Ed25519", "kid": "rfc8037", "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}
            ]
        }
    ).popitem()
    assert evidence.fingerprint(key) == "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k"


def test_one_changed_byte_in_a_photo_is_named(tmp_path: Path) -> None:
    path, original = package(tmp_path)
    changed = bytearray(original)
    changed[len(changed) // 2] ^= 1
    bad = rewrite(path, tmp_path / "bad.zip", {"reports/BM-1/originals/p1.jpg": bytes(changed)})
    findings = evidence.verify_package(bad, TRUSTED).findings
    assert [(f.name, f.problem) for f in findings] == [("reports/BM-1/originals/p1.jpg", "hash_mismatch")]


def test_a_flipped_byte_in_the_file_itself_is_found_without_raising(tmp_path: Path) -> None:
    path, original = package(tmp_path)
    raw = bytearray(path.read_bytes())
    at = raw.find(original[1000:1032])
    raw[at + 5] ^= 0xFF
    damaged = tmp_path / "damaged.zip"
    damaged.write_bytes(bytes(raw))
    check = evidence.verify_package(damaged, TRUSTED)
    assert [(f.name, f.problem) for f in check.findings] == [("reports/BM-1/originals/p1.jpg", "damaged_member")]


def test_manifest_members_and_audit_lines(tmp_path: Path) -> None:
    path, _ = package(tmp_path)
    with zipfile.ZipFile(path) as archive:
        manifest = archive.read(evidence.MANIFEST)
        lines = archive.read("reports/BM-1/audit/report-intake.jsonl").splitlines()
    edited = rewrite(path, tmp_path / "m.zip", {evidence.MANIFEST: manifest.replace(b"i1", b"i2")})
    assert [f.problem for f in evidence.verify_package(edited, TRUSTED).findings] == ["bad_signature"]
    gone = rewrite(path, tmp_path / "g.zip", {"reports/BM-1/report.json": None})
    assert [f.problem for f in evidence.verify_package(gone, TRUSTED).findings] == ["missing_file"]
    extra = rewrite(path, tmp_path / "e.zip", {}, add={"reports/BM-1/note.txt": b"added later"})
    assert [(f.name, f.problem) for f in evidence.verify_package(extra, TRUSTED).findings] == [
        ("reports/BM-1/note.txt", "extra_file")
    ]
    # An audit entry edited, and the manifest re-signed by someone with another key: both are found.
    entry = json.loads(lines[1])
    entry["actor"] = "mallory"
    writer = evidence.PackageWriter(tmp_path / "a.zip", about={"incident_id": "i1"})
    writer.add_bytes("audit/report-intake.jsonl", lines[0] + b"\n" + json.dumps(entry).encode() + b"\n", kind="audit")
    writer.finish(new_key("dispatch-bridge", "someone-else"))
    findings = evidence.verify_package(tmp_path / "a.zip", TRUSTED).findings
    assert {f.problem for f in findings} == {"untrusted_key", "audit_entry_changed"}
    assert any(f.problem == "audit_entry_changed" and "audit entry 2 " in f.text for f in findings)


def test_the_writer_refuses_what_must_not_be_packed(tmp_path: Path) -> None:
    writer = evidence.PackageWriter(tmp_path / "w.zip", about={})
    with pytest.raises(ValueError):
        writer.add_bytes("x.jpg", b"abc", kind="original", sha256_claimed="0" * 64)
    # What the check refuses, the writer never writes: a bridge cannot make a package that fails for its names.
    for name in (
        "/abs.jpg",
        "../up.jpg",
        "a\\\\b.jpg",
        "C:x.jpg",
        "a/./b.jpg",
        "a//b.jpg",
        "dir/",
        "x\u202egpj.exe",
        evidence.MANIFEST,
        "Manifest.JSON",
    ):
        with pytest.raises(ValueError):
            writer.add_bytes(name, b"abc", kind="original")
    writer.add_bytes("once.jpg", b"abc", kind="original")
    for name in ("once.jpg", "ONCE.jpg"):  # one file on Windows and macOS
        with pytest.raises(ValueError):
            writer.add_bytes(name, b"abc", kind="original")


def test_the_command_says_ok_or_not(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path, original = package(tmp_path)
    jwk = json.dumps(KEY.public_jwk())
    assert evidence.main(["verify", str(path), "--public-key", jwk]) == 0
    assert "package OK" in capsys.readouterr().out
    bad = rewrite(path, tmp_path / "bad.zip", {"reports/BM-1/originals/p1.jpg": original[:-1] + b"\x00"})
    assert evidence.main(["verify", str(bad), "--public-key", jwk]) == 1
    assert "hash_mismatch" in capsys.readouterr().out
    (tmp_path / "junk.zip").write_bytes(b"not a zip")
    assert evidence.main(["verify", str(tmp_path / "junk.zip")]) == 1


# ---- forgeries, each made from a genuine package ----


def members_of(path: Path) -> list[tuple[str | zipfile.ZipInfo, bytes]]:
    with zipfile.ZipFile(path) as source:
        return [(info.filename, source.read(info)) for info in source.infolist()]


def forge(target: Path, members: list[tuple[str | zipfile.ZipInfo, bytes]], encrypted: str | None = None) -> Path:
    """A ZIP written by hand, member by member in this order, duplicates and all."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # zipfile warns of a duplicate name, then writes it anyway
        with zipfile.ZipFile(target, "w") as out:
            for name, data in members:
                out.writestr(name, data)
            for info in out.infolist():
                if info.filename == encrypted:
                    info.flag_bits |= 0x1  # in the central directory, which is what readers go by
    return target


def unix(name: str, mode: int) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(name, (2026, 1, 1, 0, 0, 0))
    info.create_system = 3  # Unix: its file type is in the high bits of the external attributes
    info.external_attr = mode << 16
    return info


def resign(path: Path, target: Path, key: ServiceKey, change: dict[str, bytes]) -> Path:
    """The genuine package's files, some changed, under a new manifest signed with `key`: what anyone can make."""
    with zipfile.ZipFile(path) as source:
        manifest = json.loads(source.read(evidence.MANIFEST))
        writer = evidence.PackageWriter(target, about=manifest["about"])
        for entry in manifest["files"]:
            data = change.get(entry["name"], source.read(entry["name"]))
            claimed = hashlib.sha256(data).hexdigest() if "sha256_claimed" in entry else None
            writer.add_bytes(entry["name"], data, kind=entry["kind"], sha256_claimed=claimed)
    writer.finish(key)
    return target


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str]:
    code = evidence.main(list(argv))
    return code, capsys.readouterr().out


def trusted_keys_file(tmp_path: Path, *keys: ServiceKey) -> Path:
    path = tmp_path / "keys.json"
    path.write_text(json.dumps({"keys": [key.public_jwk() for key in keys]}))
    return path


def test_a_package_re_signed_with_another_key_is_not_ok(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path, _ = package(tmp_path)
    swapped = resign(path, tmp_path / "swapped.zip", MALLORY, {PHOTO: jpeg(2)})
    mallory = evidence.fingerprint(MALLORY.private_key.public_key())
    # Against the police's key: refused, naming the key that did sign.
    findings = evidence.verify_package(swapped, TRUSTED).findings
    assert [(f.name, f.problem) for f in findings] == [(evidence.SIGNATURE, "untrusted_key")]
    assert MALLORY.kid in findings[0].text and mallory in findings[0].text
    code, out = run(capsys, "verify", str(swapped), "--trusted-keys", str(trusted_keys_file(tmp_path, KEY)))
    assert code == evidence.EXIT_FAILED and "untrusted_key" in out and "package OK" not in out
    # Without a trusted key: not OK, not "tampered" either, and the signer is named for comparison.
    code, out = run(capsys, "verify", str(swapped))
    assert code == evidence.EXIT_UNPROVEN != evidence.EXIT_FAILED
    assert "package OK" not in out and "NOT PROVEN [no_trusted_key]" in out
    assert MALLORY.kid in out and mallory in out and "proves nothing about who made the package" in out
    # Under the police's key id, with another key: refused as such.
    impostor = resign(path, tmp_path / "impostor.zip", new_key("dispatch-bridge", KEY.kid), {PHOTO: jpeg(2)})
    assert [f.problem for f in evidence.verify_package(impostor, TRUSTED).findings] == ["key_mismatch"]
    # The police's public key copied in, but signed with another: the signature does not hold.
    with zipfile.ZipFile(swapped) as archive:
        signature = json.loads(archive.read(evidence.SIGNATURE))
    signature |= {"key_id": KEY.kid, "public_key": KEY.public_jwk()}
    borrowed = rewrite(swapped, tmp_path / "borrowed.zip", {evidence.SIGNATURE: json.dumps(signature).encode()})
    assert [f.problem for f in evidence.verify_package(borrowed).findings] == ["bad_signature"]


def test_a_duplicate_placed_before_the_genuine_member_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path, _ = package(tmp_path)
    genuine = members_of(path)
    # Python reads the last of two members with one name, so the genuine photo after the forged one would pass;
    # a viewer that opens the first shows the forgery.
    doubled = forge(tmp_path / "doubled.zip", [(PHOTO, jpeg(2)), *genuine])
    check = evidence.verify_package(doubled, TRUSTED)
    assert [(f.name, f.problem) for f in check.findings] == [(PHOTO, "duplicate_member")]
    assert check.files_checked == 2  # the others are still checked
    code, out = run(capsys, "verify", str(doubled), "--public-key", json.dumps(KEY.public_jwk()))
    assert code == evidence.EXIT_FAILED and f"{PHOTO}: [duplicate_member]" in out
    # Two manifests: which one is meant cannot be known, so nothing further is believed.
    manifests = forge(tmp_path / "manifests.zip", [(evidence.MANIFEST, b"{}"), *genuine])
    assert [(f.name, f.problem) for f in evidence.verify_package(manifests, TRUSTED).findings] == [
        (evidence.MANIFEST, "duplicate_member")
    ]


@pytest.mark.parametrize(
    ("member", "data", "expected"),
    [
        ("/etc/cron.d/burgermelding", b"* * * * * root sh /tmp/x", [("/etc/cron.d/burgermelding", "absolute_path")]),
        ("C:/Users/Public/p1.jpg", b"x", [("C:/Users/Public/p1.jpg", "absolute_path")]),
        ("reports/BM-1/../../../outside.jpg", b"x", [("reports/BM-1/../../../outside.jpg", "parent_path")]),
        ("reports\\BM-1\\note.txt", b"x", [("reports\\BM-1\\note.txt", "unsafe_name")]),
        ("reports/BM-1/note.txt\npackage OK", b"x", [("reports/BM-1/note.txt\npackage OK", "unsafe_name")]),
        (
            unix("reports/BM-1/originals/latest.jpg", stat.S_IFLNK | 0o777),
            b"p1.jpg",
            [("reports/BM-1/originals/latest.jpg", "symlink_member")],
        ),
        ("reports/BM-1/", b"", [("reports/BM-1/", "directory_member")]),
        (unix("reports/BM-1/pipe", stat.S_IFIFO | 0o644), b"", [("reports/BM-1/pipe", "special_member")]),
        # Differs from the listed photo in case only: one file on Windows and macOS, so both are refused.
        (
            "reports/BM-1/originals/P1.jpg",
            b"x",
            [(PHOTO, "duplicate_member"), ("reports/BM-1/originals/P1.jpg", "duplicate_member")],
        ),
    ],
    ids=["absolute", "drive", "dotdot", "backslash", "newline", "symlink", "directory", "fifo", "case"],
)
def test_an_odd_member_is_refused_and_named(
    tmp_path: Path, member: str | zipfile.ZipInfo, data: bytes, expected: list[tuple[str, str]]
) -> None:
    path, _ = package(tmp_path)
    odd = forge(tmp_path / "odd.zip", [*members_of(path), (member, data)])
    check = evidence.verify_package(odd, TRUSTED)
    assert [(f.name, f.problem) for f in check.findings] == expected
    assert "\npackage OK" not in check.summary()  # a name cannot forge a line of the report


def test_a_listed_member_turned_into_a_link_or_encrypted_is_refused(tmp_path: Path) -> None:
    path, _ = package(tmp_path)
    genuine = members_of(path)
    # The report's exact bytes as a symbolic link's target: the hashes match, but unpacked it is no report.
    linked = forge(
        tmp_path / "linked.zip",
        [(unix(REPORT, stat.S_IFLNK | 0o777), data) if name == REPORT else (name, data) for name, data in genuine],
    )
    assert [(f.name, f.problem) for f in evidence.verify_package(linked, TRUSTED).findings] == [
        (REPORT, "symlink_member")
    ]
    locked = forge(tmp_path / "locked.zip", genuine, encrypted=PHOTO)
    assert [(f.name, f.problem) for f in evidence.verify_package(locked, TRUSTED).findings] == [
        (PHOTO, "encrypted_member")
    ]


def test_extra_renamed_and_missing_members_are_named(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path, _ = package(tmp_path)
    keys = str(trusted_keys_file(tmp_path, KEY))
    genuine = members_of(path)
    extra = forge(tmp_path / "extra.zip", [*genuine, ("reports/BM-1/originals/p2.jpg", jpeg(2))])
    code, out = run(capsys, "verify", str(extra), "--trusted-keys", keys)
    assert code == evidence.EXIT_FAILED and "reports/BM-1/originals/p2.jpg: [extra_file]" in out
    renamed = forge(
        tmp_path / "renamed.zip",
        [("reports/BM-1/originals/p9.jpg" if name == PHOTO else name, data) for name, data in genuine],
    )
    code, out = run(capsys, "verify", str(renamed), "--trusted-keys", keys)
    assert code == evidence.EXIT_FAILED
    assert "reports/BM-1/originals/p9.jpg: [extra_file]" in out and f"{PHOTO}: [missing_file]" in out
    missing = forge(tmp_path / "missing.zip", [(name, data) for name, data in genuine if name != REPORT])
    code, out = run(capsys, "verify", str(missing), "--trusted-keys", keys)
    assert code == evidence.EXIT_FAILED and f"{REPORT}: [missing_file]" in out


def test_a_manifest_of_the_wrong_shape_is_a_finding(tmp_path: Path) -> None:
    path, _ = package(tmp_path)
    manifest = json.dumps({"format": evidence.FORMAT, "files": [1]}).encode()
    signature = {
        "algorithm": "Ed25519",
        "key_id": MALLORY.kid,
        "public_key": MALLORY.public_jwk(),
        "manifest_sha256": hashlib.sha256(manifest).hexdigest(),
        "signature": base64.urlsafe_b64encode(MALLORY.private_key.sign(manifest)).decode(),
    }
    odd = rewrite(
        path, tmp_path / "odd.zip", {evidence.MANIFEST: manifest, evidence.SIGNATURE: json.dumps(signature).encode()}
    )
    assert [(f.name, f.problem) for f in evidence.verify_package(odd).findings] == [(evidence.MANIFEST, "bad_manifest")]


def test_a_trusted_keys_file_with_several_keys(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    path, _ = package(tmp_path)
    keys = tmp_path / "om-keys.json"
    rotated = new_key("dispatch-bridge", "bridge-2027")
    # The bridge's private setting on standard input: only its public half goes into the file.
    monkeypatch.setattr(sys, "stdin", io.StringIO(json.dumps(KEY.private_jwk())))
    assert run(capsys, "trusted-key", "--add-to", str(keys))[0] == 0
    assert run(capsys, "trusted-key", json.dumps(rotated.public_jwk()), "--add-to", str(keys))[0] == 0
    code, out = run(capsys, "trusted-key", json.dumps(new_key("x", "other-force").public_jwk()), "--add-to", str(keys))
    assert code == 0 and "now holds 3" in out
    written = json.loads(keys.read_text())
    assert [k["kid"] for k in written["keys"]] == [KEY.kid, "bridge-2027", "other-force"]
    assert not any("d" in k for k in written["keys"])
    # Another key under a key id the file holds is refused, and the file is left as it was.
    with pytest.raises(SystemExit) as refused:
        evidence.main(["trusted-key", json.dumps(new_key("x", KEY.kid).public_jwk()), "--add-to", str(keys)])
    assert refused.value.code == evidence.EXIT_USAGE and json.loads(keys.read_text()) == written
    # Printed without a file: a trusted-keys file of one key, its fingerprint beside it.
    code = evidence.main(["trusted-key", json.dumps(KEY.public_jwk())])
    shown = capsys.readouterr()
    assert code == 0 and json.loads(shown.out) == {"keys": [KEY.public_jwk()]} and FINGERPRINT in shown.err

    assert run(capsys, "verify", str(path), "--trusted-keys", str(keys)) == (
        0,
        f"package OK: 3 files match the manifest, signed by trusted key {KEY.kid} (fingerprint {FINGERPRINT})\n",
    )
    by_rotated = resign(path, tmp_path / "rotated.zip", rotated, {})
    assert run(capsys, "verify", str(by_rotated), "--trusted-keys", str(keys))[0] == evidence.EXIT_OK
    by_mallory = resign(path, tmp_path / "mallory.zip", MALLORY, {})
    code, out = run(capsys, "verify", str(by_mallory), "--trusted-keys", str(keys))
    assert code == evidence.EXIT_FAILED and f"[untrusted_key] signed with key {MALLORY.kid}" in out
    impostor = resign(path, tmp_path / "impostor.zip", new_key("x", "bridge-2027"), {})
    code, out = run(capsys, "verify", str(impostor), "--trusted-keys", str(keys))
    assert code == evidence.EXIT_FAILED and "[key_mismatch]" in out and "bridge-2027" in out


def test_keys_that_cannot_be_trusted_are_a_usage_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path, _ = package(tmp_path)
    private = tmp_path / "private.json"
    private.write_text(json.dumps({"keys": [KEY.private_jwk()]}))  # a checker must not hold a private key
    bare = tmp_path / "bare.json"
    bare.write_text(json.dumps([KEY.public_jwk()]))  # not a JWK Set
    twice = tmp_path / "twice.json"
    twice.write_text(json.dumps({"keys": [KEY.public_jwk(), new_key("x", KEY.kid).public_jwk()]}))
    for argv, reason in (
        (["--trusted-keys", str(private)], "is a private key"),
        (["--trusted-keys", str(bare)], "JWK Set"),
        (["--trusted-keys", str(twice)], "used twice"),
        (["--trusted-keys", str(tmp_path / "absent.json")], "No such file"),
        (["--public-key", "{"], "--public-key"),
        (
            [
                "--public-key",
                json.dumps(KEY.public_jwk()),
                "--trusted-keys",
                str(trusted_keys_file(tmp_path, new_key("x", KEY.kid))),
            ],
            "two different keys",
        ),
    ):
        with pytest.raises(SystemExit) as refused:
            evidence.main(["verify", str(path), *argv])
        assert refused.value.code == evidence.EXIT_USAGE
        assert reason in capsys.readouterr().err


def test_the_command_run_as_a_program(tmp_path: Path) -> None:
    path, _ = package(tmp_path)
    swapped = resign(path, tmp_path / "swapped.zip", MALLORY, {PHOTO: jpeg(2)})

    def verify(*argv: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "burgermelding_shared.evidence", "verify", *argv],
            capture_output=True,
            text=True,
            check=False,
        )

    alone = verify(str(swapped))
    assert alone.returncode == evidence.EXIT_UNPROVEN and MALLORY.kid in alone.stdout
    assert "package OK" not in alone.stdout
    checked = verify(str(swapped), "--trusted-keys", str(trusted_keys_file(tmp_path, KEY, new_key("x", "other"))))
    assert checked.returncode == evidence.EXIT_FAILED and "untrusted_key" in checked.stdout
