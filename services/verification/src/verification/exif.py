"""Reading photo metadata defensively: any tag may be missing, of the wrong type, absurd or hostile."""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

from PIL import Image

TAG_MAKE, TAG_MODEL, TAG_SOFTWARE, TAG_DATETIME = 0x010F, 0x0110, 0x0131, 0x0132
IFD_EXIF, IFD_GPS = 0x8769, 0x8825
TAG_DATETIME_ORIGINAL, TAG_OFFSET_ORIGINAL = 0x9003, 0x9011
TAG_PIXEL_X, TAG_PIXEL_Y = 0xA002, 0xA003
GPS_LAT_REF, GPS_LAT, GPS_LON_REF, GPS_LON = 1, 2, 3, 4
GPS_TIMESTAMP, GPS_DATESTAMP, GPS_H_ERROR = 7, 29, 31
MAX_TEXT = 200


@dataclass
class PhotoMetadata:
    has_exif: bool = False
    make: str | None = None
    model: str | None = None
    software: str | None = None
    captured_at: datetime | None = None  # aware when an offset tag exists, else naive local time
    modified_at: datetime | None = None
    gps_lat: float | None = None
    gps_lon: float | None = None
    gps_refs_present: bool = True
    gps_error_m: float | None = None
    gps_time: datetime | None = None
    exif_width: int | None = None
    exif_height: int | None = None


def _text(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, bytes):
        value = value.decode("utf-8", "replace")
    text = str(value).replace("\x00", "").strip()
    return text[:MAX_TEXT] or None


def _number(value: Any) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError, ZeroDivisionError, OverflowError):
        return None
    return number if math.isfinite(number) else None


def _exif_datetime(value: Any, offset: Any = None) -> datetime | None:
    text = _text(value)
    if not text:
        return None
    try:
        moment = datetime.strptime(text[:19], "%Y:%m:%d %H:%M:%S")
    except ValueError:
        return None
    if not 1 < moment.year < 9999:  # where datetime ends: no camera's clock, and the checks' 14 h slack overflows
        return None
    off = _text(offset)
    if off and len(off) == 6 and off[0] in "+-" and off[3] == ":":
        try:
            hours, minutes = int(off[1:3]), int(off[4:6])
        except ValueError:
            return moment
        if hours <= 14 and minutes < 60:
            sign = 1 if off[0] == "+" else -1
            return moment.replace(tzinfo=timezone(sign * timedelta(hours=hours, minutes=minutes)))
    return moment


def _dms(value: Any) -> float | None:
    try:
        degrees, minutes, seconds = (_number(v) for v in value)
    except (TypeError, ValueError):
        return None
    if degrees is None or minutes is None or seconds is None:
        return None
    return degrees + minutes / 60 + seconds / 3600


def read_metadata(image: Image.Image) -> PhotoMetadata:
    meta = PhotoMetadata()
    try:
        exif = image.getexif()
    except Exception:  # a broken EXIF block is just missing metadata
        return meta
    if not exif:
        return meta
    meta.has_exif = True
    meta.make, meta.model = _text(exif.get(TAG_MAKE)), _text(exif.get(TAG_MODEL))
    meta.software = _text(exif.get(TAG_SOFTWARE))
    try:
        sub = exif.get_ifd(IFD_EXIF)
    except Exception:
        sub = {}
    meta.captured_at = _exif_datetime(sub.get(TAG_DATETIME_ORIGINAL), sub.get(TAG_OFFSET_ORIGINAL))
    meta.modified_at = _exif_datetime(exif.get(TAG_DATETIME), sub.get(TAG_OFFSET_ORIGINAL))
    width, height = _number(sub.get(TAG_PIXEL_X)), _number(sub.get(TAG_PIXEL_Y))
    meta.exif_width = int(width) if width and 0 < width < 1e6 else None
    meta.exif_height = int(height) if height and 0 < height < 1e6 else None
    try:
        gps = exif.get_ifd(IFD_GPS)
    except Exception:
        gps = {}
    if gps:
        lat, lon = _dms(gps.get(GPS_LAT)), _dms(gps.get(GPS_LON))
        lat_ref, lon_ref = _text(gps.get(GPS_LAT_REF)), _text(gps.get(GPS_LON_REF))
        if lat is not None and lon is not None:
            meta.gps_refs_present = bool(lat_ref) and bool(lon_ref)
            meta.gps_lat = -lat if lat_ref == "S" else lat
            meta.gps_lon = -lon if lon_ref == "W" else lon
        meta.gps_error_m = _number(gps.get(GPS_H_ERROR))
        stamp, date = gps.get(GPS_TIMESTAMP), _text(gps.get(GPS_DATESTAMP))
        try:
            h, m, s = (_number(v) for v in stamp or ())  # no stamp: ValueError, as for a stamp of two numbers
            day = datetime.strptime(date or "", "%Y:%m:%d")
            if h is not None and m is not None and s is not None:
                meta.gps_time = (day + timedelta(hours=h, minutes=m, seconds=s)).replace(tzinfo=UTC)
        except (TypeError, ValueError, OverflowError):
            pass
    return meta
