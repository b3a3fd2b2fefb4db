"""Intake checks for a reported event (随手拍, 网格员上报, a 12345 file's row): fields, photo, duplicates,
submission keys and the anonymous channel's rate limits.

Pure: bytes and plain values in, Chinese messages out; the service stores what passes. Distances are
handed in, in metres (the services measure with :func:`geo.crs.distance_m`). A photo's pixel count is
read here from its header (:func:`image_size`), before anything decodes it.
"""

from __future__ import annotations

import re
import struct
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from domain.access import is_mobile
from domain.errors import FieldProblems
from domain.vocabulary import EventCategory

#: What one uploaded photo may weigh: a 48–108 Mpx phone camera writes 10–25 MB JPEGs. It is stored
#: re-encoded, at most 4,096 pixels on its long edge (services.intake), far below :data:`MAX_STORED_BYTES`.
MAX_PHOTO_BYTES = 30 * 1024 * 1024
MAX_PHOTO_MB = MAX_PHOTO_BYTES // (1024 * 1024)
#: What a stored (re-encoded) photo may weigh.
MAX_STORED_BYTES = 10 * 1024 * 1024
#: PNG and WebP above this many pixels are refused from their header, before any decode: they decode
#: whole (a 40 Mpx RGBA image is 160 MB decoded).
MAX_PHOTO_PIXELS = 40_000_000
#: A JPEG decodes at 1/2, 1/4 or 1/8 of its size (the stored size is all it needs), so a phone's full
#: resolution is taken: a 108 Mpx photo decodes at 27 Mpx (~80 MB).
MAX_JPEG_PIXELS = 120_000_000
#: What the upload widgets offer: JPEG, PNG and WebP are kept as they are; HEIC/HEIF (an iPhone's own
#: format) is converted to JPEG (decision 0055).
PHOTO_UPLOAD_TYPES = ["jpg", "jpeg", "png", "webp", "heic", "heif"]
#: A HEIC/HEIF photo, by its signature; stored as a JPEG (:func:`stored_mime`).
HEIF_MIME = "image/heif"
#: ISO-BMFF brands of HEIC/HEIF photos (the 4 bytes after "ftyp"); AVIF's are not among them.
HEIF_BRANDS = {b"heic", b"heix", b"hevc", b"hevx", b"heim", b"heis", b"mif1", b"msf1"}
#: AVIF (the same container with AV1 inside): refused in words.
AVIF_BRANDS = {b"avif", b"avis"}
#: A HEIC/HEIF photo decodes whole; 50 Mpx takes an iPhone's 48 Mpx photos (~150 MB decoded).
MAX_HEIF_PIXELS = 50_000_000
#: Said under every photo upload: what it takes, and how a photo the widget refused looks.
PHOTO_HELP = (
    f"支持 JPEG、PNG、WebP 和苹果手机的 HEIC，单张不超过 {MAX_PHOTO_MB} MB。照片名旁出现红色“!”表示该照片"
    "未被接收，提交时不会带上，请删除后换一张。"
)
AVIF_REFUSED = "暂不支持 AVIF 格式的照片：请截图后上传，或在手机中导出为 JPEG"
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


class InvalidReport(FieldProblems):
    """The report cannot be accepted; ``problems`` maps each field to its Chinese message."""


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
    """The image type by its signature, or None if it is not a JPEG, PNG, WebP or HEIC/HEIF."""
    for magic, offset, mime in SIGNATURES:
        if data[offset : offset + len(magic)] == magic and (mime != "image/webp" or data[:4] == b"RIFF"):
            return mime
    if data[4:8] == b"ftyp" and data[8:12] in HEIF_BRANDS:
        return HEIF_MIME
    return None


def stored_mime(mime: str) -> str:
    """The type a photo of type ``mime`` is stored as: a HEIC/HEIF photo becomes a JPEG (every browser
    shows one), the others keep theirs."""
    return "image/jpeg" if mime == HEIF_MIME else mime


def looks_swapped(lon: float, lat: float) -> bool:
    """Whether a latitude out of range with a longitude that would be a latitude says the two were
    filled the other way round (China: a 纬度 of 121 and a 经度 of 29)."""
    return abs(lat) > 90 and abs(lat) <= 180 and abs(lon) <= 90


def check_photo(data: bytes | None) -> str | None:
    """The photo's MIME type, or :class:`InvalidReport` (too large in bytes or in pixels, empty, not an
    image, a header that cannot be read)."""
    if data is None:
        return None
    if len(data) == 0:
        raise InvalidReport({"照片": "文件为空"})
    if len(data) > MAX_PHOTO_BYTES:
        raise InvalidReport({"照片": f"文件过大（{len(data) / 1048576:.1f} MB），上限 {MAX_PHOTO_MB} MB"})
    mime = photo_mime(data)
    if mime is None and data[4:8] == b"ftyp" and data[8:12] in AVIF_BRANDS:
        raise InvalidReport({"照片": AVIF_REFUSED})
    if mime is None:
        raise InvalidReport({"照片": "不是有效的图片文件（仅支持 JPEG、PNG、WebP、HEIC）"})
    size = image_size(data, mime)
    if size is None:
        raise InvalidReport({"照片": "图片已损坏或不完整，无法读取尺寸"})
    if (problem := pixel_problem(*size, mime=mime)) is not None:
        raise InvalidReport({"照片": problem})
    return mime


def pixel_problem(width: int, height: int, mime: str = "image/png") -> str | None:
    """Why an image of ``width`` × ``height`` pixels is refused (None when it is acceptable): a JPEG up to
    :data:`MAX_JPEG_PIXELS` (it decodes at a reduced scale), another type up to :data:`MAX_PHOTO_PIXELS`."""
    if width <= 0 or height <= 0:
        return "图片已损坏或不完整，无法读取尺寸"
    most = {"image/jpeg": MAX_JPEG_PIXELS, HEIF_MIME: MAX_HEIF_PIXELS}.get(mime, MAX_PHOTO_PIXELS)
    if width * height > most:
        return (
            f"图片像素过大（{width}×{height}，约 {width * height / 1e6:.0f} 百万像素），"
            f"上限 {most // 1_000_000} 百万像素，请缩小后重试"
        )
    return None


#: JPEG start-of-frame markers (SOF0–SOF15 but DHT C4, JPG C8 and DAC CC): they carry the size.
_SOF = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}


def image_size(data: bytes, mime: str) -> tuple[int, int] | None:
    """(width, height) as the image's header declares them, without decoding it; None when the header
    cannot be read (cut short, or not the format it claims)."""
    try:
        if mime == "image/png":
            return _png_size(data)
        if mime == "image/jpeg":
            return _jpeg_size(data)
        if mime == "image/webp":
            return _webp_size(data)
        if mime == HEIF_MIME:
            return _heif_size(data)
    except (struct.error, IndexError):
        return None
    return None


#: How far into a HEIC/HEIF file its item properties are looked for (they sit in the "meta" box, which
#: a phone writes before the image data).
HEIF_HEADER_BYTES = 256 * 1024


def _heif_size(data: bytes) -> tuple[int, int] | None:
    # Every image item's size is an "ispe" property (box size 4, b"ispe", version and flags 4, width 4,
    # height 4, big-endian); a photo cut into tiles has one for the tiles and one for the whole: the
    # largest is the photo's size, as coded (a clean-aperture property may crop a few pixels off it:
    # an upper bound, as a limit wants). The decoder checks the size it really finds again.
    head = data[:HEIF_HEADER_BYTES]
    sizes = []
    at = head.find(b"ispe")
    while at >= 4:
        width, height = struct.unpack(">II", head[at + 8 : at + 16])
        sizes.append((int(width), int(height)))
        at = head.find(b"ispe", at + 4)
    return max(sizes, key=lambda s: s[0] * s[1]) if sizes else None


def _png_size(data: bytes) -> tuple[int, int] | None:
    # Signature (8 bytes), then the IHDR chunk: length (4), b"IHDR", width (4), height (4), big-endian.
    if data[12:16] != b"IHDR":
        return None
    width, height = struct.unpack(">II", data[16:24])
    return int(width), int(height)


def _jpeg_size(data: bytes) -> tuple[int, int] | None:
    # Walk the marker segments after SOI up to the first frame header (SOFn: precision, height, width).
    i = 2
    while i + 4 <= len(data):
        if data[i] != 0xFF:
            return None
        marker = data[i + 1]
        if marker == 0xFF:  # fill byte
            i += 1
            continue
        if marker in (0x01, *range(0xD0, 0xD8)):  # standalone markers: no length
            i += 2
            continue
        if marker in (0xD9, 0xDA):  # end of image, start of scan: no frame header before them
            return None
        (length,) = struct.unpack(">H", data[i + 2 : i + 4])
        if length < 2:
            return None
        if marker in _SOF:
            height, width = struct.unpack(">HH", data[i + 5 : i + 9])
            return int(width), int(height)
        i += 2 + length
    return None


def _webp_size(data: bytes) -> tuple[int, int] | None:
    # RIFF container: the first chunk is VP8 (lossy), VP8L (lossless) or VP8X (extended, canvas size).
    chunk = data[12:16]
    if chunk == b"VP8 ":
        if data[23:26] != b"\x9d\x01\x2a":
            return None
        width, height = struct.unpack("<HH", data[26:30])
        return int(width & 0x3FFF), int(height & 0x3FFF)
    if chunk == b"VP8L":
        if data[20] != 0x2F:
            return None
        (bits,) = struct.unpack("<I", data[21:25])
        return int((bits & 0x3FFF) + 1), int(((bits >> 14) & 0x3FFF) + 1)
    if chunk == b"VP8X":
        if len(data) < 30:
            return None
        return int.from_bytes(data[24:27], "little") + 1, int.from_bytes(data[27:30], "little") + 1
    return None


#: Characters no one types and no XML answer may carry (all C0 controls but tab, line feed and carriage
#: return; lone surrogates; the non-characters U+FFFE and U+FFFF): pasted or sent by a program, they would
#: make every XML answer that lists the event unreadable (Open311's .xml, which leaves them out).
CONTROL_CHARACTERS = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


def unstorable(text: str) -> bool:
    """Text no store keeps as typed: a NUL character (PostgreSQL refuses it in any text column), another
    control character (:data:`CONTROL_CHARACTERS`) or a lone surrogate (not UTF-8); none can be typed, only pasted
    or sent by a program."""
    if CONTROL_CHARACTERS.search(text):
        return True
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


#: The message for :func:`unstorable` text, after the field's name.
UNSTORABLE = "含有无法保存的控制字符（如空字符），请删除后重新输入"


def blank(text: str) -> bool:
    """Whether ``text`` shows nothing: only spaces (any, the ideographic one too) and format characters
    (zero-width spaces and joiners, direction marks, the BOM), which str.strip keeps."""
    return all(ch.isspace() or unicodedata.category(ch) == "Cf" for ch in text)


def check_form(form: ReportForm) -> dict[str, str]:
    """Every field problem of a reported event (empty when it is acceptable), keyed by the form's fields
    (事项类别, 标题, 描述, 位置, 联系电话): the one checker of the 随手拍 form and of an imported file's rows."""
    problems: dict[str, str] = {}
    if form.category not in {c.value for c in EventCategory}:
        problems["事项类别"] = "请选择事项类别"
    if blank(form.title):
        problems["标题"] = "请填写标题"
    elif len(form.title) > MAX_TITLE:
        problems["标题"] = f"标题不能超过 {MAX_TITLE} 字"
    if len(form.description) > MAX_TEXT:
        problems["描述"] = f"描述不能超过 {MAX_TEXT} 字"
    if form.lon is None or form.lat is None:
        problems["位置"] = "请在地图上选择位置或填写经纬度"
    elif not (-180 <= form.lon <= 180 and -90 <= form.lat <= 90):
        problems["位置"] = "经纬度超出范围" + (
            "：纬度和经度可能填反了" if looks_swapped(form.lon, form.lat) else ""
        )
    phone = form.reporter_phone.strip()
    if phone and not is_mobile(phone):
        problems["联系电话"] = "请填写 11 位手机号码"
    for field, text in (("标题", form.title), ("描述", form.description), ("姓名", form.reporter_name)):
        if field not in problems and unstorable(text):
            problems[field] = UNSTORABLE
    return problems


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
    category: str, now: datetime, nearby: Iterable[tuple[OpenEvent, float]]
) -> list[tuple[OpenEvent, float]]:
    """Of open events with their distance from the report (metres), those of the same category within
    50 m and 24 h: nearest first."""
    hits = (
        (e, d)
        for e, d in nearby
        if e.category == category
        and d <= DUPLICATE_RADIUS_M
        and timedelta(0) <= now - e.reported_at <= DUPLICATE_WINDOW
    )
    return sorted(hits, key=lambda x: (x[1], x[0].id))


# -- submission keys (提交编号) ---------------------------------------------------------------------

#: A client's submission key: what a form makes once per display (a uuid4's hex) or an API's
#: Idempotency-Key; letters, digits, - and _ only, so it is never markup or a path.
SUBMISSION_KEY = re.compile(r"^[A-Za-z0-9_-]{16,64}$")


def key_problem(key: str | None) -> str | None:
    """Why ``key`` cannot be a submission key (None when it can, or when there is none)."""
    if key is None or SUBMISSION_KEY.fullmatch(key):
        return None
    return "提交编号无效（16–64 位字母、数字、- 或 _），请刷新页面后重新提交"


# -- the anonymous channel's rate limits (随手拍) ----------------------------------------------------


@dataclass(frozen=True)
class RateLimit:
    """At most ``count`` reports within ``window``."""

    count: int
    window: timedelta


@dataclass(frozen=True)
class RateLimits:
    """The 随手拍 limits per browser session and per phone number (each a list of windows)."""

    session: tuple[RateLimit, ...] = (RateLimit(5, timedelta(minutes=10)),)
    phone: tuple[RateLimit, ...] = (
        RateLimit(5, timedelta(minutes=10)),
        RateLimit(20, timedelta(hours=24)),
    )


class RateLimited(InvalidReport):
    """Too many reports from one browser session or one phone number; ``retry_at`` says when to try."""

    def __init__(self, message: str, retry_at: datetime):
        super().__init__({"提交": message})
        self.retry_at = retry_at


def retry_at(times: Sequence[datetime], limit: RateLimit, now: datetime) -> datetime | None:
    """When one more report is allowed under ``limit`` given the earlier ones at ``times`` (None: now).

    With ``count`` reports inside the window, the next may come once the ``count``-th most recent of them
    has left the window.
    """
    recent = sorted((t for t in times if now - limit.window < t <= now), reverse=True)
    if len(recent) < limit.count:
        return None
    return recent[limit.count - 1] + limit.window


def window_label(window: timedelta) -> str:
    """A window in words: 10 分钟, 1 小时, 24 小时, 2 天."""
    minutes = int(window.total_seconds() // 60)
    if minutes % (24 * 60) == 0 and minutes >= 48 * 60:
        return f"{minutes // (24 * 60)} 天"
    if minutes % 60 == 0:
        return f"{minutes // 60} 小时"
    return f"{minutes} 分钟"


def too_often(who: str, limit: RateLimit, when: datetime, now: datetime) -> RateLimited:
    """The refusal: who (本设备 / 同一手机号) reported how often, and when to try again."""
    at = f"{when:%H:%M}" if when.date() == now.date() else f"{when:%Y-%m-%d %H:%M}"
    return RateLimited(
        f"提交过于频繁：{who} {window_label(limit.window)}内最多上报 {limit.count} 次，请于 {at} 后再试",
        when,
    )
