"""Intake checks: what a photo really is, every bad field at once, and duplicates within 50 m and 24 h."""

from datetime import datetime, timedelta

import pytest

from domain.intake import (
    InvalidReport,
    OpenEvent,
    ReportForm,
    check_form,
    check_photo,
    distance_m,
    photo_mime,
    possible_duplicates,
)

NOW = datetime(2026, 11, 21, 12, 0)


def test_a_photo_is_recognised_by_its_signature_not_its_name():
    assert photo_mime(b"\xff\xd8\xff\xe0" + b"0" * 10) == "image/jpeg"
    assert photo_mime(b"\x89PNG\r\n\x1a\n" + b"0" * 10) == "image/png"
    assert photo_mime(b"RIFF\x00\x00\x00\x00WEBPVP8 ") == "image/webp"
    assert photo_mime(b"MZ\x90\x00 this is an exe") is None


def test_a_photo_over_ten_megabytes_is_refused():
    with pytest.raises(InvalidReport, match="上限 10 MB"):
        check_photo(b"\xff\xd8\xff" + b"0" * (10 * 1024 * 1024))


def test_every_bad_field_is_reported_at_once():
    problems = check_form(ReportForm(category="x", title=" ", description="", lon=None, lat=None, reporter_phone="123"))
    assert set(problems) == {"事项类别", "标题", "位置", "联系电话"}


def test_a_good_form_has_no_problems():
    assert check_form(ReportForm("urban", "占道经营", "门口堆物", 118.87, 28.94, "王", "13812345678")) == {}


def test_distance_is_in_metres():
    assert abs(distance_m(118.87, 28.94, 118.87, 28.94 + 0.001) - 111.2) < 0.5


def test_only_same_category_open_events_within_50_m_and_24_h_are_duplicates():
    near = OpenEvent(1, "urban", 118.8700, 28.9400, NOW - timedelta(hours=2), "占道")
    far = OpenEvent(2, "urban", 118.8710, 28.9400, NOW - timedelta(hours=2), "占道")  # ~97 m east
    old = OpenEvent(3, "urban", 118.8700, 28.9400, NOW - timedelta(hours=25), "占道")
    other = OpenEvent(4, "dispute", 118.8700, 28.9400, NOW, "纠纷")
    hits = possible_duplicates("urban", 118.8702, 28.9400, NOW, [far, old, other, near])
    assert [e.id for e, _ in hits] == [1]
    assert hits[0][1] < 50
