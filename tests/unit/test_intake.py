"""Intake checks: what a photo really is, every bad field at once, and duplicates within 50 m and 24 h."""

import io
from datetime import datetime, timedelta

import pillow_heif
import pytest
from PIL import Image

from domain.intake import (
    HEIF_MIME,
    InvalidReport,
    OpenEvent,
    RateLimit,
    ReportForm,
    check_form,
    check_photo,
    image_size,
    key_problem,
    photo_mime,
    pixel_problem,
    possible_duplicates,
    retry_at,
    stored_mime,
    too_often,
    window_label,
)

pillow_heif.register_heif_opener()

NOW = datetime(2026, 11, 21, 12, 0)


def test_a_photo_is_recognised_by_its_signature_not_its_name():
    assert photo_mime(b"\xff\xd8\xff\xe0" + b"0" * 10) == "image/jpeg"
    assert photo_mime(b"\x89PNG\r\n\x1a\n" + b"0" * 10) == "image/png"
    assert photo_mime(b"RIFF\x00\x00\x00\x00WEBPVP8 ") == "image/webp"
    assert photo_mime(b"MZ\x90\x00 this is an exe") is None


def test_a_photo_over_thirty_megabytes_is_refused():
    with pytest.raises(InvalidReport, match="上限 30 MB"):
        check_photo(b"\xff\xd8\xff" + b"0" * (30 * 1024 * 1024))


def _heic(width: int, height: int) -> bytes:
    img = Image.new("RGB", (width, height), (200, 30, 30))
    out = io.BytesIO()
    img.save(out, "HEIF", quality=50)
    return out.getvalue()


def test_an_iphone_heic_photo_is_taken_with_its_size_read_from_its_header_and_stored_as_jpeg():
    heic = _heic(640, 480)
    assert photo_mime(heic) == HEIF_MIME and check_photo(heic) == HEIF_MIME
    assert image_size(heic, HEIF_MIME) == (640, 480)
    # the coded size, which a clean aperture may crop by a few pixels: never less than the photo's
    assert image_size(_heic(100, 75), HEIF_MIME) == (100, 76)
    assert stored_mime(HEIF_MIME) == "image/jpeg" and stored_mime("image/png") == "image/png"
    assert pixel_problem(8064, 6048, mime=HEIF_MIME) is None  # an iPhone's 48 Mpx photo
    assert "上限 50 百万像素" in (pixel_problem(9000, 6000, mime=HEIF_MIME) or "")


def test_a_heic_photo_whose_header_is_cut_short_is_refused_as_unreadable():
    heic = _heic(64, 48)
    cut = heic[: heic.index(b"ispe") + 10]
    with pytest.raises(InvalidReport, match="无法读取尺寸"):
        check_photo(cut)


def test_an_avif_photo_is_refused_with_what_to_do():
    avif = b"\x00\x00\x00\x1cftypavif\x00\x00\x00\x00avifmif1miaf" + b"\x00" * 64
    with pytest.raises(InvalidReport, match=r"暂不支持 AVIF.*截图"):
        check_photo(avif)


def test_every_bad_field_is_reported_at_once():
    problems = check_form(
        ReportForm(category="x", title=" ", description="", lon=None, lat=None, reporter_phone="123")
    )
    assert set(problems) == {"事项类别", "标题", "位置", "联系电话"}


def test_a_good_form_has_no_problems():
    assert check_form(ReportForm("urban", "占道经营", "门口堆物", 118.87, 28.94, "王", "13812345678")) == {}


@pytest.mark.parametrize("pasted", ["\x00", "\x1b[31m", "\x0b", "\x0c", "\x1f", "\ufffe", "\ud800"])
def test_a_control_character_no_xml_answer_may_carry_is_refused_and_tabs_and_new_lines_are_not(pasted):
    problems = check_form(ReportForm("urban", "占道经营", f"门口{pasted}堆物", 118.87, 28.94))
    assert set(problems) == {"描述"} and "控制字符" in problems["描述"]
    assert check_form(ReportForm("urban", "占道经营", "门口\t堆物\r\n第二行", 118.87, 28.94)) == {}


def test_only_same_category_open_events_within_50_m_and_24_h_are_duplicates():
    near = OpenEvent(1, "urban", 118.8700, 28.9400, NOW - timedelta(hours=2), "占道")
    far = OpenEvent(2, "urban", 118.8710, 28.9400, NOW - timedelta(hours=2), "占道")
    old = OpenEvent(3, "urban", 118.8700, 28.9400, NOW - timedelta(hours=25), "占道")
    other = OpenEvent(4, "dispute", 118.8700, 28.9400, NOW, "纠纷")
    edge = OpenEvent(5, "urban", 118.8700, 28.9400, NOW - timedelta(hours=24), "占道")
    nearby = [(far, 97.4), (old, 19.5), (other, 19.5), (near, 19.5), (edge, 50.0)]  # metres from the report
    hits = possible_duplicates("urban", NOW, nearby)
    assert [(e.id, d) for e, d in hits] == [(1, 19.5), (5, 50.0)]


def test_a_phone_must_be_one_mainland_mobile_number():
    def phone_problem(phone):
        return check_form(ReportForm("urban", "占道经营", "", 118.87, 28.94, "王", phone)).get("联系电话")

    assert phone_problem("") is None and phone_problem("13812345678") is None
    for bad in ("123", "0570-1234567", "12812345678", "138123456789", "1381234567a"):
        assert phone_problem(bad) == "请填写 11 位手机号码", bad


# -- a photo's size from its header, before any decode ---------------------------------------------


def _encoded(fmt: str, size=(123, 45), **kw) -> bytes:
    import io

    from PIL import Image

    out = io.BytesIO()
    Image.new("RGB", size, (9, 99, 199)).save(out, fmt, **kw)
    return out.getvalue()


@pytest.mark.parametrize(
    ("fmt", "kw"),
    [("JPEG", {}), ("JPEG", {"progressive": True}), ("PNG", {}), ("WEBP", {}), ("WEBP", {"lossless": True})],
)
def test_the_pixel_size_is_read_from_the_header_of_every_accepted_type(fmt, kw):
    data = _encoded(fmt, **kw)
    assert image_size(data, photo_mime(data) or "") == (123, 45)


def test_a_header_cut_short_or_lying_about_its_type_has_no_size():
    jpeg = _encoded("JPEG")
    assert image_size(jpeg[:30], "image/jpeg") is None
    assert image_size(b"\x89PNG\r\n\x1a\n" + b"\x00" * 20, "image/png") is None
    assert image_size(jpeg, "image/png") is None


def test_a_phone_cameras_full_resolution_jpeg_is_taken_and_a_huge_png_is_not():
    assert pixel_problem(8000, 6000, mime="image/jpeg") is None  # 48 Mpx
    assert pixel_problem(12000, 9000, mime="image/jpeg") is None  # 108 Mpx
    assert "上限 120 百万像素" in (pixel_problem(12000, 10001, mime="image/jpeg") or "")
    assert "上限 40 百万像素" in (pixel_problem(8000, 6000, mime="image/png") or "")


def test_more_than_40_megapixels_is_refused_in_chinese_and_up_to_40_is_not():
    assert pixel_problem(8000, 5000) is None
    assert (
        pixel_problem(8000, 5001)
        == "图片像素过大（8000×5001，约 40 百万像素），上限 40 百万像素，请缩小后重试"
    )
    assert pixel_problem(0, 10) is not None


# -- submission keys and rate limits ------------------------------------------------------------------


def test_a_submission_key_is_16_to_64_letters_digits_dashes_or_underscores():
    assert key_problem(None) is None and key_problem("a" * 16) is None and key_problem("A-_9" * 16) is None
    for bad in ("a" * 15, "a" * 65, "a" * 15 + "/", "键" * 20, "a" * 15 + " "):
        assert key_problem(bad) is not None, bad


def test_the_next_report_is_allowed_when_the_oldest_counted_one_leaves_the_window():
    limit = RateLimit(3, timedelta(minutes=10))
    times = [NOW - timedelta(minutes=m) for m in (1, 4, 9, 30)]
    assert retry_at(times, limit, NOW) == NOW - timedelta(minutes=9) + timedelta(minutes=10)
    assert retry_at(times[:2], limit, NOW) is None
    assert retry_at(times, limit, NOW + timedelta(minutes=1)) is None  # the 9-minute one left the window


def test_the_refusal_says_who_how_often_and_when_in_chinese():
    refusal = too_often("同一手机号", RateLimit(20, timedelta(hours=24)), datetime(2026, 11, 22, 8, 0), NOW)
    assert refusal.problems == {
        "提交": "提交过于频繁：同一手机号 24 小时内最多上报 20 次，请于 2026-11-22 08:00 后再试"
    }
    assert window_label(timedelta(days=2)) == "2 天" and window_label(timedelta(minutes=90)) == "90 分钟"
