"""Per-photo checks. Each gives an outcome, a stable reason code, Dutch and English text and a weight.

None of them is a verdict alone (see ../shared/reference/photo-verification.md): missing metadata in
particular is only informational, because messengers and browsers strip it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Literal
from zoneinfo import ZoneInfo

from burgermelding_shared.burgernet import EDGE_SLACK_M, AppealLink
from burgermelding_shared.contracts import AppealMatch, CheckResult, PhotoVerification
from burgermelding_shared.events import distance_m
from verification.exif import PhotoMetadata
from verification.provenance import ContentCredentials

# Editors, not firmware: phones write their own version into Software, so presence alone means nothing.
EDITORS = re.compile(
    r"photoshop|gimp|snapseed|lightroom|affinity|pixelmator|picsart|facetune|canva|paint\.net|krita|"
    r"luminar|capture one|darktable|rawtherapee|photopea|fotor|vsco|meitu|airbrush",
    re.IGNORECASE,
)

WEIGHTS = {
    "photo_undecodable": 1.0,
    "video_undecodable": 1.0,
    "editing_software": 0.25,
    "resaved_after_capture": 0.1,
    "old_photo": 0.35,
    "future_capture_time": 0.3,
    "gps_far_from_claim": 0.3,
    "gps_impossible": 0.2,
    "dimensions_mismatch": 0.1,
    "metadata_missing": 0.0,
    "exact_duplicate": 0.5,
    "thumbnail_mismatch": 0.3,
    "gps_time_mismatch": 0.2,
    "recycled_image": 0.4,
    "near_duplicate": 0.0,
    "possible_duplicate": 0.2,
    "text_meaningless": 0.3,
    "repeated_text": 0.3,
    "flooding": 0.4,
    "c2pa_invalid": 0.35,
    # A bonus, not a penalty: for each other app installation that reported the same event, up to
    # CORROBORATION_CAP of them.
    "corroborated": 0.1,
}
CORROBORATION_CAP = 3
THUMBNAIL_MAX_DISTANCE = 12
GPS_TIME_MAX_DRIFT = timedelta(minutes=5)


def configure_weights(overrides: dict[str, float]) -> None:
    """Weights are configurable (settings); unknown codes are refused so a typo cannot silently do nothing."""
    unknown = set(overrides) - set(WEIGHTS)
    if unknown:
        raise ValueError(f"unknown check codes in weights: {', '.join(sorted(unknown))}")
    WEIGHTS.update(overrides)


@dataclass(frozen=True)
class Medium:
    """How the time and place checks speak of the picture: a photo is taken, a video recorded. The reason
    codes are the same for both (a client acts on the code, a dispatcher reads the words)."""

    en: str
    nl: str
    made_en: str
    made_nl: str


PHOTO = Medium("photo", "foto", "taken", "gemaakt")
VIDEO = Medium("video", "video", "recorded", "opgenomen")


@dataclass
class Claim:
    observed_at: datetime
    received_at: datetime
    lat: float
    lon: float
    accuracy_m: float | None


Outcome = Literal["pass", "warn", "fail", "not_applicable"]  # CheckResult.outcome


def check(code: str, outcome: Outcome, en: str, nl: str) -> CheckResult:
    weight = WEIGHTS.get(code, 0.0) if outcome in ("warn", "fail") else 0.0
    return CheckResult(code=code, outcome=outcome, detail_en=en, detail_nl=nl, weight=weight)


def metadata_checks(
    meta: PhotoMetadata, claim: Claim, *, width: int, height: int, old_photo_hours: float, gps_min_distance_m: float
) -> list[CheckResult]:
    """A photo's EXIF against the report (a video's container metadata: video_metadata_checks)."""
    results: list[CheckResult] = []
    if not meta.has_exif or not (meta.make or meta.model or meta.captured_at):
        results.append(
            check(
                "metadata_missing",
                "not_applicable",
                "The photo carries no camera metadata; common for photos sent through messengers.",
                "De foto bevat geen cameragegevens; dat is gewoon bij foto's uit berichtenapps.",
            )
        )
    if meta.software and EDITORS.search(meta.software):
        results.append(
            check(
                "editing_software",
                "warn",
                f"Saved by an image editor ({meta.software}).",
                f"Opgeslagen door een fotobewerkingsprogramma ({meta.software}).",
            )
        )
    if meta.captured_at and meta.modified_at and meta.modified_at - meta.captured_at > timedelta(minutes=1):
        results.append(
            check(
                "resaved_after_capture",
                "warn",
                "The file was saved again after it was taken.",
                "Het bestand is na het maken opnieuw opgeslagen.",
            )
        )
    results.extend(_time_checks(meta, claim, old_photo_hours))
    results.extend(_gps_time_check(meta))
    results.extend(_gps_checks(meta, claim, gps_min_distance_m))
    if meta.exif_width and meta.exif_height and {meta.exif_width, meta.exif_height} != {width, height}:
        results.append(
            check(
                "dimensions_mismatch",
                "warn",
                f"The metadata says {meta.exif_width}x{meta.exif_height} pixels; the image has "
                f"{width}x{height}: resized or cropped.",
                f"Volgens de metadata {meta.exif_width}x{meta.exif_height} pixels; de afbeelding "
                f"heeft {width}x{height}: verkleind of bijgesneden.",
            )
        )
    return results


def thumbnail_check(distance: int | None) -> list[CheckResult]:
    if distance is None:
        return []
    if distance > THUMBNAIL_MAX_DISTANCE:
        return [
            check(
                "thumbnail_mismatch",
                "warn",
                "The embedded thumbnail shows something else than the photo: "
                "the picture was changed after it was taken.",
                "De ingebouwde miniatuur toont iets anders dan de foto: de foto is na het maken veranderd.",
            )
        ]
    return [
        check(
            "thumbnail_matches",
            "pass",
            "The embedded thumbnail matches the photo.",
            "De ingebouwde miniatuur past bij de foto.",
        )
    ]


def provenance_check(credentials: ContentCredentials) -> list[CheckResult]:
    """C2PA content credentials. Absence means nothing (few phones sign yet); a valid manifest is a good sign
    (its signer is named, though not checked against a trust list); an invalid one means the picture changed
    after it was signed, or the credentials are forged: a warning for a person to weigh, not a rejection."""
    signer = credentials.signer or "unknown signer"
    if credentials.state == "valid":
        return [
            check(
                "c2pa_valid",
                "pass",
                f"Valid C2PA content credentials, signed by {signer} (signer not checked against a trust "
                "list); the picture is unchanged since signing.",
                f"Geldige C2PA-herkomstgegevens, ondertekend door {signer} (ondertekenaar niet getoetst aan "
                "een vertrouwenslijst); de afbeelding is sinds het ondertekenen niet veranderd.",
            )
        ]
    if credentials.state == "invalid":
        codes = ", ".join(credentials.failures) or "unknown"
        return [
            check(
                "c2pa_invalid",
                "warn",
                f"The C2PA content credentials do not hold ({codes}): the picture was changed after "
                "signing, or the credentials are broken or forged.",
                f"De C2PA-herkomstgegevens kloppen niet ({codes}): de afbeelding is na het ondertekenen "
                "veranderd, of de gegevens zijn beschadigd of vervalst.",
            )
        ]
    if credentials.state == "unchecked":
        return [
            check(
                "c2pa_unchecked",
                "not_applicable",
                "The C2PA content credentials could not be checked.",
                "De C2PA-herkomstgegevens konden niet worden gecontroleerd.",
            )
        ]
    return [
        check(
            "c2pa_absent",
            "not_applicable",
            "No C2PA content credentials (common; means nothing).",
            "Geen C2PA-herkomstgegevens (gewoon; zegt niets).",
        )
    ]


def _gps_time_check(meta: PhotoMetadata) -> list[CheckResult]:
    captured = meta.captured_at
    if captured is None or captured.tzinfo is None or meta.gps_time is None:
        return []
    drift = abs(captured.astimezone(UTC) - meta.gps_time)
    if drift > GPS_TIME_MAX_DRIFT:
        minutes = drift.total_seconds() / 60
        return [
            check(
                "gps_time_mismatch",
                "warn",
                f"The capture time and the GPS time differ by {minutes:.0f} minutes: the date may have been edited.",
                f"Opnametijd en GPS-tijd verschillen {minutes:.0f} minuten: de datum is mogelijk aangepast.",
            )
        ]
    return [
        check(
            "gps_time_matches",
            "pass",
            "The capture time agrees with the GPS time.",
            "De opnametijd klopt met de GPS-tijd.",
        )
    ]


def video_metadata_checks(
    meta: PhotoMetadata, claim: Claim, *, old_photo_hours: float, gps_min_distance_m: float
) -> list[CheckResult]:
    """A video's container time and place against the report, by the photos' rules. `meta.captured_at` is when
    recording started (see video_worker.recorded_when for which field says so, and the Android assumption)."""
    results: list[CheckResult] = []
    if meta.captured_at is None and meta.gps_lat is None:
        results.append(
            check(
                "metadata_missing",
                "not_applicable",
                "The video carries no recording time or place; common for videos sent through messengers.",
                "De video bevat geen opnametijd of -plaats; dat is gewoon bij video's uit berichtenapps.",
            )
        )
    results.extend(_time_checks(meta, claim, old_photo_hours, VIDEO))
    results.extend(_gps_checks(meta, claim, gps_min_distance_m, VIDEO))
    return results


def _time_checks(
    meta: PhotoMetadata, claim: Claim, old_photo_hours: float, medium: Medium = PHOTO
) -> list[CheckResult]:
    captured = meta.captured_at
    if captured is None:
        return []
    # Without an offset tag the capture time is local camera time: allow the widest time-zone spread (14 h).
    slack = timedelta(0) if captured.tzinfo else timedelta(hours=14)
    captured_utc = captured.astimezone(UTC) if captured.tzinfo else captured.replace(tzinfo=UTC)
    if captured_utc - slack > claim.received_at + timedelta(minutes=5):
        return [
            check(
                "future_capture_time",
                "warn",
                "The capture time lies after the report arrived.",
                "Het opnametijdstip ligt na het binnenkomen van de melding.",
            )
        ]
    if captured_utc + slack < claim.observed_at - timedelta(hours=old_photo_hours):
        days = (claim.observed_at - captured_utc).total_seconds() / 86400
        return [
            check(
                "old_photo",
                "warn",
                f"The {medium.en} was {medium.made_en} about {days:.0f} days before the reported time.",
                f"De {medium.nl} is ongeveer {days:.0f} dagen voor het gemelde tijdstip {medium.made_nl}.",
            )
        ]
    return [
        check(
            "capture_time_plausible",
            "pass",
            "The capture time fits the reported time.",
            "Het opnametijdstip past bij het gemelde tijdstip.",
        )
    ]


def _gps_checks(
    meta: PhotoMetadata, claim: Claim, gps_min_distance_m: float, medium: Medium = PHOTO
) -> list[CheckResult]:
    lat, lon = meta.gps_lat, meta.gps_lon
    if lat is None or lon is None:
        return []
    if (
        (abs(lat) < 1e-6 and abs(lon) < 1e-6)
        or not (-90 <= lat <= 90 and -180 <= lon <= 180)
        or not meta.gps_refs_present
    ):
        return [
            check(
                "gps_impossible",
                "warn",
                f"The {medium.en}'s GPS position is impossible or incomplete.",
                f"De GPS-positie van de {medium.nl} is onmogelijk of onvolledig.",
            )
        ]
    distance = distance_m(lat, lon, claim.lat, claim.lon)
    allowed = max(gps_min_distance_m, meta.gps_error_m or 0.0, claim.accuracy_m or 0.0)
    if distance > allowed:
        return [
            check(
                "gps_far_from_claim",
                "warn",
                f"The {medium.en} was {medium.made_en} {distance / 1000:.1f} km from the reported place.",
                f"De {medium.nl} is {distance / 1000:.1f} km van de gemelde plaats {medium.made_nl}.",
            )
        ]
    return [
        check(
            "gps_matches_claim",
            "pass",
            f"The {medium.en}'s position fits the reported place.",
            f"De positie van de {medium.nl} past bij de gemelde plaats.",
        )
    ]


def corroboration_check(independent_others: int) -> CheckResult | None:
    """Independent witnesses of one event raise each other's score. Counted per installation, so one phone
    sending many reports corroborates nothing; installations registered together from one address count as one
    (burgermelding_shared.witnesses), so fresh credentials made for the purpose corroborate nothing either; and
    capped, so that a few witnesses cannot turn a doubtful report into a certain one (the other checks still
    weigh in full)."""
    if independent_others <= 0:
        return None
    counted = min(independent_others, CORROBORATION_CAP)
    return CheckResult(
        code="corroborated",
        outcome="pass",
        weight=-round(counted * WEIGHTS["corroborated"], 3),
        detail_en=f"{independent_others} other independent witness(es) reported the same event close by (app "
        "installations; new ones from one network address count as one).",
        detail_nl=f"{independent_others} andere onafhankelijke getuige(n) meldden hetzelfde voorval vlakbij "
        "(app-installaties; nieuwe vanaf één netwerkadres tellen als één).",
    )


# ---- answers to a Burgernet action or witness call: do their time and place fit what was asked? ----

APPEAL_TIME_SLACK = timedelta(minutes=15)  # camera clocks drift; a witness's "about 22:00" is not exact
DUTCH_TIME = ZoneInfo("Europe/Amsterdam")  # a capture time without offset, from a phone in the Netherlands


def _when(moment: datetime) -> str:
    return moment.astimezone(DUTCH_TIME).strftime("%Y-%m-%d %H:%M")


def _off_by(moment: datetime, start: datetime, end: datetime) -> tuple[str, str]:
    """How far outside the window, in words: (English, Dutch)."""
    gap = start - moment if moment < start else moment - end
    hours = gap.total_seconds() / 3600
    if hours >= 24:
        en, nl = f"{hours / 24:.0f} day(s)", f"{hours / 24:.0f} dag(en)"
    elif hours >= 1:
        en, nl = f"{hours:.1f} hours", f"{hours:.1f} uur"
    else:
        en = nl = f"{gap.total_seconds() / 60:.0f} min"
    return (f"{en} before", f"{nl} ervoor") if moment < start else (f"{en} after", f"{nl} erna")


def _in_window(moment: datetime, appeal: AppealLink) -> bool:
    return appeal.window_start - APPEAL_TIME_SLACK <= moment <= appeal.window_end + APPEAL_TIME_SLACK


def _photo_time(photo: PhotoVerification) -> tuple[datetime | None, bool]:
    """The photo's capture time in UTC, and whether it had to be read as Dutch time (no offset in the file)."""
    if photo.captured_at is not None:
        return photo.captured_at.astimezone(UTC), False
    if photo.captured_local is not None:
        return photo.captured_local.replace(tzinfo=DUTCH_TIME).astimezone(UTC), True
    return None, False


def appeal_checks(
    appeal: AppealLink, claim: Claim, photos: list[PhotoVerification]
) -> tuple[list[CheckResult], AppealMatch]:
    """An answer against the action's area and time: the photos' own capture time and place first (a witness
    may misremember, the camera does not), the stated time and place when no photo says. Relevance, not
    authenticity: none of these weighs in the score. Returns the reasons and whether the answer matches."""
    results: list[CheckResult] = []
    window = f"{_when(appeal.window_start)} - {_when(appeal.window_end)}"
    photo_verdicts: list[bool | None] = []
    slack = EDGE_SLACK_M
    for number, photo in enumerate(photos, start=1):
        taken, assumed_dutch = _photo_time(photo)
        time_ok: bool | None = None
        if taken is None:
            results.append(
                check(
                    "appeal_photo_time_unknown",
                    "not_applicable",
                    f"Photo {number} carries no capture time.",
                    f"Foto {number} bevat geen opnametijd.",
                )
            )
        else:
            note_en = " (no time zone in the file: read as Dutch time)" if assumed_dutch else ""
            note_nl = " (geen tijdzone in het bestand: gelezen als Nederlandse tijd)" if assumed_dutch else ""
            time_ok = _in_window(taken, appeal)
            if time_ok:
                results.append(
                    check(
                        "appeal_photo_time_matches",
                        "pass",
                        f"Photo {number} was taken at {_when(taken)}{note_en}, inside the asked window ({window}).",
                        f"Foto {number} is gemaakt om {_when(taken)}{note_nl}, binnen de gevraagde periode ({window}).",
                    )
                )
            else:
                off_en, off_nl = _off_by(taken, appeal.window_start, appeal.window_end)
                results.append(
                    check(
                        "appeal_photo_time_outside",
                        "warn",
                        f"Photo {number} was taken at {_when(taken)}{note_en}, {off_en} the asked window ({window}).",
                        f"Foto {number} is gemaakt om {_when(taken)}{note_nl}, "
                        f"buiten de gevraagde periode ({window}): {off_nl}.",
                    )
                )
        gps = photo.gps or {}
        place_ok: bool | None = None
        if "lat" in gps and "lon" in gps:
            place_ok = appeal.area.contains(gps["lat"], gps["lon"], slack + gps.get("accuracy_m", 0.0))
            if place_ok:
                results.append(
                    check(
                        "appeal_photo_place_matches",
                        "pass",
                        f"Photo {number} was taken inside the asked area.",
                        f"Foto {number} is in het gevraagde gebied gemaakt.",
                    )
                )
            else:
                results.append(
                    check(
                        "appeal_photo_place_outside",
                        "warn",
                        f"Photo {number} was taken outside the asked area.",
                        f"Foto {number} is buiten het gevraagde gebied gemaakt.",
                    )
                )
        else:
            results.append(
                check(
                    "appeal_photo_place_unknown",
                    "not_applicable",
                    f"Photo {number} carries no position.",
                    f"Foto {number} bevat geen positie.",
                )
            )
        if time_ok is False or place_ok is False:
            photo_verdicts.append(False)
        elif time_ok:
            photo_verdicts.append(True)
        else:
            photo_verdicts.append(None)
    stated_time_ok = _in_window(claim.observed_at, appeal)
    stated_place_ok = appeal.area.contains(claim.lat, claim.lon, slack + (claim.accuracy_m or 0.0))
    results.append(
        check(
            "appeal_time_matches" if stated_time_ok else "appeal_time_outside",
            "pass" if stated_time_ok else "warn",
            f"The stated time ({_when(claim.observed_at)}) is {'inside' if stated_time_ok else 'outside'}"
            f" the asked window ({window}).",
            f"Het opgegeven tijdstip ({_when(claim.observed_at)}) ligt "
            f"{'binnen' if stated_time_ok else 'buiten'} de gevraagde periode ({window}).",
        )
    )
    results.append(
        check(
            "appeal_place_matches" if stated_place_ok else "appeal_place_outside",
            "pass" if stated_place_ok else "warn",
            f"The stated place is {'inside' if stated_place_ok else 'outside'} the asked area.",
            f"De opgegeven plaats ligt {'binnen' if stated_place_ok else 'buiten'} het gevraagde gebied.",
        )
    )
    match: AppealMatch
    if any(v is True for v in photo_verdicts):
        match = "matching"
    elif any(v is False for v in photo_verdicts):
        match = "not_matching"
    else:
        match = "matching" if stated_time_ok and stated_place_ok else "not_matching"
    return results, match
