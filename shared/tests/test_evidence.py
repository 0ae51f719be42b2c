"""Evidence packages: a package verifies offline, and every kind of damage is named, never raised."""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path

import pytest
from PIL import Image

from burgermelding_shared import auditchain, evidence
from burgermelding_shared.service_auth import new_key

KEY = new_key("dispatch-bridge", "bridge-evidence-test")
TRUSTED = {KEY.kid: KEY.private_key.public_key()}


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
        row = {"seq": seq, "at": auditchain.timestamp(), "service": "report-intake", "actor": "report-intake",
               "role": "service", "action": "photo.received", "target_type": "photo", "target_id": f"p{seq}",
               "report_id": "r1", "detail": auditchain.canonical({"sha256": "ab" * 32}), "prev_hash": prev}
        row["entry_hash"] = prev = auditchain.entry_hash(row)
        rows.append(auditchain.as_json(row))
    return rows


def package(tmp_path: Path) -> tuple[Path, bytes]:
    import hashlib

    original = jpeg(1)
    writer = evidence.PackageWriter(tmp_path / "p.zip", about={"incident_id": "i1"})
    writer.add_bytes("reports/BM-1/originals/p1.jpg", original, kind="original",
                     sha256_claimed=hashlib.sha256(original).hexdigest())
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


def test_a_package_verifies_with_and_without_the_signers_key(tmp_path: Path) -> None:
    path, _ = package(tmp_path)
    assert evidence.verify_package(path, TRUSTED).ok
    alone = evidence.verify_package(path)
    assert alone.ok and "--public-key" in alone.summary()
    other = new_key("dispatch-bridge", KEY.kid)  # the same key id, another key
    untrusted = evidence.verify_package(path, {KEY.kid: other.private_key.public_key()})
    assert [f.problem for f in untrusted.findings] == ["untrusted_key"]


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
        ("reports/BM-1/note.txt", "extra_file")]
    # An audit entry edited, and the manifest re-signed by someone with another key: both are found.
    entry = json.loads(lines[1])
    entry["actor"] = "mallory"
    writer = evidence.PackageWriter(tmp_path / "a.zip", about={"incident_id": "i1"})
    writer.add_bytes("audit/report-intake.jsonl", lines[0] + b"\n" + json.dumps(entry).encode() + b"\n",
                     kind="audit")
    writer.finish(new_key("dispatch-bridge", "someone-else"))
    findings = evidence.verify_package(tmp_path / "a.zip", TRUSTED).findings
    assert {f.problem for f in findings} == {"untrusted_key", "audit_entry_changed"}
    assert any(f.problem == "audit_entry_changed" and "audit entry 2 " in f.text for f in findings)


def test_the_writer_refuses_what_must_not_be_packed(tmp_path: Path) -> None:
    writer = evidence.PackageWriter(tmp_path / "w.zip", about={})
    with pytest.raises(ValueError):
        writer.add_bytes("x.jpg", b"abc", kind="original", sha256_claimed="0" * 64)
    for name in ("/abs.jpg", "../up.jpg", "a\\\\b.jpg", evidence.MANIFEST):
        with pytest.raises(ValueError):
            writer.add_bytes(name, b"abc", kind="original")
    writer.add_bytes("once.jpg", b"abc", kind="original")
    with pytest.raises(ValueError):
        writer.add_bytes("once.jpg", b"abc", kind="original")


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
