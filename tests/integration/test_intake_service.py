"""Submitting reports: the photo loses its GPS, outside reports are refused, duplicates are merged."""

import io
from datetime import datetime, timedelta

import pytest
from PIL import Image
from sqlalchemy import func, select

from db.engine import session_factory
from db.models import Attachment, Event
from db.uow import UnitOfWork
from domain.intake import InvalidReport, ReportForm
from domain.vocabulary import EventStatus
from services.intake import find_duplicates, submit_report
from services.locate import OutsideArea, forget_index
from tests.builders import grid_centre, make_square_area

NOW = datetime(2026, 11, 21, 12, 0)


def _jpeg_with_gps() -> bytes:
    img = Image.new("RGB", (40, 30), (200, 30, 30))
    exif = Image.Exif()
    exif[0x010F] = "PhoneMaker"  # Make
    exif[0x8825] = {1: "N", 2: (28.0, 56.0, 24.0), 3: "E", 4: (118.0, 52.0, 12.0)}  # GPSInfo
    out = io.BytesIO()
    img.save(out, "JPEG", exif=exif)
    return out.getvalue()


@pytest.fixture
def engine(empty_engine):
    forget_index()
    with empty_engine.begin() as conn:
        make_square_area(conn)
    return empty_engine


def _submit(engine, form, **kw):
    return submit_report(UnitOfWork(engine), form, **kw)


def _form(i=0, **kw):
    lon, lat = grid_centre(i)
    return ReportForm(
        **(
            {
                "category": "urban",
                "title": "占道经营",
                "description": "店门口堆物",
                "lon": lon,
                "lat": lat,
                "reporter_name": "李四",
                "reporter_phone": "13912345678",
            }
            | kw
        )
    )


def _count(engine, model):
    with engine.connect() as conn:
        return conn.execute(select(func.count()).select_from(model)).scalar_one()


def test_a_photo_is_stored_without_its_exif_gps(engine):
    photo = _jpeg_with_gps()
    assert Image.open(io.BytesIO(photo)).getexif().get(0x8825)  # the GPS is really there before
    event = _submit(engine, _form(), now=NOW, photo=photo)
    with engine.connect() as conn:
        stored = conn.execute(select(Attachment.data).where(Attachment.event_id == event.id)).scalar_one()
    exif = Image.open(io.BytesIO(stored)).getexif()
    assert 0x8825 not in exif and 0x010F not in exif


def _iphone_heic() -> bytes:
    """A HEIC photo as an iPhone takes it: wider than tall as the sensor sees it, EXIF saying "turn it a
    quarter to the right" (orientation 6), the GPS of where it was taken and the phone's make."""
    img = Image.new("RGB", (64, 48), (200, 30, 30))
    img.paste((30, 30, 200), (0, 0, 32, 48))  # the left half blue: which way up it ends is visible
    exif = Image.Exif()
    exif[0x0112] = 6
    exif[0x010F] = "Apple"
    exif[0x8825] = {1: "N", 2: (28.0, 56.0, 24.0), 3: "E", 4: (118.0, 52.0, 12.0)}
    out = io.BytesIO()
    img.save(out, "HEIF", quality=90, exif=exif.tobytes())
    return out.getvalue()


def test_an_iphone_heic_photo_is_stored_as_an_upright_jpeg_without_its_exif(engine):
    event = _submit(engine, _form(), now=NOW, photo=_iphone_heic())
    with engine.connect() as conn:
        data, mime = conn.execute(
            select(Attachment.data, Attachment.mime).where(Attachment.event_id == event.id)
        ).one()
    assert mime == "image/jpeg" and data[:3] == b"\xff\xd8\xff"
    stored = Image.open(io.BytesIO(data))
    assert stored.format == "JPEG"
    exif = stored.getexif()
    assert 0x8825 not in exif and 0x010F not in exif
    assert stored.size == (48, 64)  # turned upright, once
    top, bottom = stored.getpixel((24, 4)), stored.getpixel((24, 60))
    assert top[2] > 150 > bottom[2]  # the blue half (the photo's left) is on top after a quarter turn right


def test_a_report_outside_every_grid_is_refused_with_its_photo(engine):
    with pytest.raises(OutsideArea):
        _submit(engine, _form(lon=118.5, lat=28.5), now=NOW, photo=_jpeg_with_gps())
    assert _count(engine, Event) == 0 and _count(engine, Attachment) == 0


def test_a_renamed_executable_is_refused_as_a_photo_and_nothing_is_written(engine):
    with pytest.raises(InvalidReport) as err:
        _submit(engine, _form(title=""), now=NOW, photo=b"MZ\x90\x00fake.jpg")
    assert set(err.value.problems) == {"标题", "照片"}
    assert _count(engine, Event) == 0


def test_a_nul_character_pasted_into_a_report_is_refused_by_field_and_nothing_is_written(engine):
    """PostgreSQL refuses NUL in any text column: the report failed with a store error (an incident id, not
    a field to fix); SQLite stored it. Now both refuse it naming the fields."""
    with pytest.raises(InvalidReport) as err:
        _submit(
            engine, _form(title="占道\x00经营", description="堆物\x00", reporter_name="李\x00四"), now=NOW
        )
    assert set(err.value.problems) == {"标题", "描述", "姓名"}
    assert all("控制字符" in why for why in err.value.problems.values())
    assert _count(engine, Event) == 0


def test_a_duplicate_is_offered_and_merging_counts_its_reporter(engine):
    first = _submit(engine, _form(), now=NOW).id
    later = NOW + timedelta(hours=3)
    with engine.connect() as conn:
        offered = find_duplicates(conn, "urban", *grid_centre(0), later)
    assert [e.id for e, _ in offered] == [first]
    dup = _submit(engine, _form(), now=later, merge_into=first)
    with session_factory(engine)() as s:
        target = s.get(Event, first)
        merged = s.get(Event, dup.id)
        assert target.reporter_count == 2
        assert merged.merged_into_id == first and merged.status is EventStatus.REJECTED


def test_a_merge_target_that_no_longer_qualifies_is_refused(engine):
    first = _submit(engine, _form(), now=NOW).id
    with pytest.raises(InvalidReport, match="合并"):
        _submit(engine, _form(), now=NOW + timedelta(hours=30), merge_into=first)
    assert _count(engine, Event) == 1


def test_a_form_or_a_file_row_with_a_landline_or_a_short_number_is_refused_by_the_one_mobile_rule(engine):
    for phone in ("0570-1234567", "1381234567", "12812345678"):
        with pytest.raises(InvalidReport) as err:
            _submit(engine, _form(reporter_phone=phone), now=NOW)
        assert set(err.value.problems) == {"联系电话"}
    assert _count(engine, Event) == 0
