"""Per-photo analysis on real JPEGs written by Pillow with real EXIF."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from burgermelding_shared.blobstore import BlobStoreConfig, LocalBlobStore
from tests.helpers import exif_time, gps_tags, make_jpeg
from verification.analysis import PhotoJob, analyse_photo
from verification.checks import Claim
from verification.phash import hamming

CLAIM_LAT, CLAIM_LON = 52.0907, 5.1214


def analyse(tmp_path: Path, data: bytes, observed_at: datetime | None = None) -> dict:
    store = LocalBlobStore(tmp_path)
    digest = store.put_bytes(data)
    now = datetime.now(UTC)
    claim = Claim(observed_at=observed_at or now, received_at=now, lat=CLAIM_LAT, lon=CLAIM_LON, accuracy_m=20)
    return analyse_photo(PhotoJob(BlobStoreConfig(str(tmp_path)), "photo-1", digest, claim, 50_000_000, 24.0, 500.0))


def codes(result: dict) -> dict[str, str]:
    return {c["code"]: c["outcome"] for c in result["checks"]}


def now_exif(moment: datetime | None = None) -> dict[int, str]:
    return {0x9003: exif_time(moment or datetime.now(UTC)), 0x9011: "+00:00"}


def test_a_genuine_phone_photo_passes(tmp_path: Path) -> None:
    result = analyse(
        tmp_path,
        make_jpeg(
            exif={0x010F: "Apple", 0x0110: "iPhone 15", 0x0131: "17.1"},
            exif_ifd=now_exif(),
            gps=gps_tags(CLAIM_LAT + 0.001, CLAIM_LON),
        ),
    )
    found = codes(result)
    assert found["photo_decodes"] == "pass"
    assert found["capture_time_plausible"] == "pass" and found["gps_matches_claim"] == "pass"
    assert not [c for c in result["checks"] if c["outcome"] in ("warn", "fail")]
    assert result["make"] == "Apple" and len(result["phash"]) == 16


@pytest.mark.parametrize(
    ("label", "kwargs", "code"),
    [
        ("editor in Software", {"exif": {0x0131: "Adobe Photoshop 25.0"}, "exif_ifd": now_exif()}, "editing_software"),
        ("a year old", {"exif_ifd": now_exif(datetime.now(UTC) - timedelta(days=365))}, "old_photo"),
        ("future date", {"exif_ifd": now_exif(datetime.now(UTC) + timedelta(days=3))}, "future_capture_time"),
        ("GPS 20 km away", {"gps": gps_tags(CLAIM_LAT + 0.18, CLAIM_LON)}, "gps_far_from_claim"),
        ("GPS at (0,0)", {"gps": gps_tags(0.0, 0.0)}, "gps_impossible"),
    ],
)
def test_suspicious_metadata_is_flagged(tmp_path: Path, label: str, kwargs: dict, code: str) -> None:
    found = codes(analyse(tmp_path, make_jpeg(**kwargs)))
    assert found.get(code) == "warn", (label, found)


def test_firmware_in_software_is_not_an_editor(tmp_path: Path) -> None:
    found = codes(analyse(tmp_path, make_jpeg(exif={0x0131: "HDR+ 1.0.6 Pixel"}, exif_ifd=now_exif())))
    assert "editing_software" not in found


def test_no_metadata_is_informational_only(tmp_path: Path) -> None:
    result = analyse(tmp_path, make_jpeg())
    assert codes(result)["metadata_missing"] == "not_applicable"
    assert all(c["weight"] == 0 for c in result["checks"])


def test_garbage_exif_values_do_not_break_analysis(tmp_path: Path) -> None:
    data = make_jpeg(
        exif={0x0110: "\x00" * 5000, 0x0131: "x" * 10000},
        exif_ifd={0x9003: "not a date at all", 0x9011: "+99:99", 0xA002: 2**32 - 1},
        gps={1: "Q", 2: (999.0, 61.0, 4000.0), 3: "E", 4: (5.0, 0.0, 0.0), 31: 4294967295.0},
    )
    result = analyse(tmp_path, data)
    found = codes(result)
    assert found["photo_decodes"] == "pass"
    assert found["gps_impossible"] == "warn"  # latitude 999 degrees
    assert "capture_time_plausible" not in found  # an unreadable date is no date
    assert len(result["software"]) <= 200


def test_undecodable_content_fails(tmp_path: Path) -> None:
    result = analyse(tmp_path, make_jpeg()[:500])
    assert codes(result)["photo_undecodable"] == "fail"


def test_phash_survives_recompression_and_resize_but_not_unrelated_content(tmp_path: Path) -> None:
    import io

    from PIL import Image

    original = make_jpeg(1600, 1200, pattern=3)
    image = Image.open(io.BytesIO(original))
    smaller = io.BytesIO()
    image.resize((800, 600)).save(smaller, "JPEG", quality=60)
    base = int(analyse(tmp_path, original)["phash"], 16)
    resized = int(analyse(tmp_path / "b", smaller.getvalue())["phash"], 16)
    unrelated = int(analyse(tmp_path / "c", make_jpeg(1600, 1200, color=(200, 30, 10), pattern=11))["phash"], 16)
    assert hamming(base, resized) <= 6
    assert hamming(base, unrelated) > 12


def test_content_credentials_valid_tampered_and_absent(tmp_path: Path) -> None:
    # A comment segment lies outside the manifest but inside what it signs: changing it is a real edit.
    import io

    from PIL import Image

    from tests.helpers import sign_with_content_credentials

    buffer = io.BytesIO()
    Image.open(io.BytesIO(make_jpeg(pattern=5))).save(buffer, "JPEG", quality=90, comment=b"original capture")
    signed = sign_with_content_credentials(buffer.getvalue())

    valid = analyse(tmp_path / "valid", signed)
    assert codes(valid)["c2pa_valid"] == "pass"
    assert valid["content_credentials"] == "valid" and "Test camera" in valid["content_credentials_signer"]

    tampered = signed.replace(b"original capture", b"edited  capture!")
    assert len(tampered) == len(signed) and tampered != signed
    result = analyse(tmp_path / "tampered", tampered)
    assert codes(result)["c2pa_invalid"] == "warn" and result["content_credentials"] == "invalid"
    assert (
        "assertion.dataHash.mismatch" in next(c for c in result["checks"] if c["code"] == "c2pa_invalid")["detail_en"]
    )

    absent = analyse(tmp_path / "absent", buffer.getvalue())
    assert codes(absent)["c2pa_absent"] == "not_applicable" and absent["content_credentials"] == "absent"
