"""Intake checks for a report (随手拍 / 网格员上报): fields, photo signature, and possible duplicates.

Pure: bytes and plain values in, Chinese messages out; the service stores what passes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta

from domain.vocabulary import EventCategory

MAX_PHOTO_BYTES = 10 * 1024 * 1024
DUPLICATE_RADIUS_M = 50.0
DUPLICATE_WINDOW = timedelta(hours=24)
MAX_TITLE = 100
MAX_TEXT = 2000

# File signatures (magic numbers): what a photo really is, whatever its name says.
SIGNATURES: list[tuple[bytes, int, str]] = [
    (b"\xff\xd8\xff", 0, "image/jpeg"),
    (b"\x89PNG\r\n\x1a\n", 0, "image/png"),
    (b"WEBP", 8, "image/webp"),  # RIFF....WEBP
]


class InvalidReport(ValueError):
    """The report cannot be accepted; ``problems`` maps each field to its Chinese message."""

    def __init__(self, problems: dict[str, str]):
        self.problems = problems
        super().__init__("；".join(f"{k}：{v}" for k, v in problems.items()))


@dataclass(frozen=True)
class ReportForm:
    category: str
    title: str
    description: str
    lon: float | None
    lat: float | None
    reporter_name: str = ""
    reporter_phone: str = ""


def photo_mime(data: bytes) -> str | None:
    """The image type by its signature, or None if it is not a JPEG, PNG or WebP."""
    for magic, offset, mime in SIGNATURES:
        if data[offset : offset + len(magic)] == magic and (mime != "image/webp" or data[:4] == b"RIFF"):
            return mime
    return None


def check_photo(data: bytes | None) -> str | None:
    """The photo's MIME type, or :class:`InvalidReport` (too large, empty, not an image)."""
    if data is None:
        return None
    if len(data) == 0:
        raise InvalidReport({"照片": "文件为空"})
    if len(data) > MAX_PHOTO_BYTES:
        raise InvalidReport({"照片": f"文件过大（{len(data) / 1048576:.1f} MB），上限 10 MB"})
    mime = photo_mime(data)
    if mime is None:
        raise InvalidReport({"照片": "不是有效的图片文件（仅支持 JPEG、PNG、WebP）"})
    return mime


def check_form(form: ReportForm) -> dict[str, str]:
    """Every field problem of the form (empty when it is acceptable)."""
    problems: dict[str, str] = {}
    if form.category not in {c.value for c in EventCategory}:
        problems["事项类别"] = "请选择事项类别"
    if not form.title.strip():
        problems["标题"] = "请填写标题"
    elif len(form.title) > MAX_TITLE:
        problems["标题"] = f"标题不能超过 {MAX_TITLE} 字"
    if len(form.description) > MAX_TEXT:
        problems["描述"] = f"描述不能超过 {MAX_TEXT} 字"
    if form.lon is None or form.lat is None:
        problems["位置"] = "请在地图上选择位置或填写经纬度"
    elif not (-180 <= form.lon <= 180 and -90 <= form.lat <= 90):
        problems["位置"] = "经纬度超出范围"
    phone = form.reporter_phone.strip()
    if phone and not (phone.isdigit() and len(phone) == 11 and phone.startswith("1")):
        problems["联系电话"] = "请填写 11 位手机号码"
    return problems


def distance_m(lon1: float, lat1: float, lon2: float, lat2: float) -> float:
    """Great-circle distance in metres (haversine, mean Earth radius)."""
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * 6_371_008.8 * math.asin(math.sqrt(a))


@dataclass(frozen=True)
class OpenEvent:
    id: int
    category: str
    lon: float
    lat: float
    reported_at: datetime
    title: str
    reporter_count: int = 1


def possible_duplicates(
    category: str, lon: float, lat: float, now: datetime, open_events: list[OpenEvent]
) -> list[tuple[OpenEvent, float]]:
    """Open events of the same category within 50 m and 24 h, nearest first, with their distance."""
    hits = [
        (e, distance_m(lon, lat, e.lon, e.lat))
        for e in open_events
        if e.category == category and timedelta(0) <= now - e.reported_at <= DUPLICATE_WINDOW
    ]
    return sorted(((e, d) for e, d in hits if d <= DUPLICATE_RADIUS_M), key=lambda x: (x[1], x[0].id))
