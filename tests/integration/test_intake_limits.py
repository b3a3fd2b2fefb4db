"""The anonymous channel (随手拍): rate limits per browser session and per phone from stored facts,
near-duplicates flagged for staff (and merged by them), and photos refused from their header."""

import io
import struct
import zlib
from datetime import datetime, timedelta

import pytest
from PIL import Image
from sqlalchemy import func, insert, select

from db.models import AdminUnit, Attachment, AuditLog, Event, Submission, User
from db.uow import UnitOfWork
from domain.access import CurrentUser
from domain.event_flow import Action, IllegalTransition
from domain.intake import InvalidReport, RateLimited, ReportForm
from domain.vocabulary import EventSource, EventStatus, Role
from services.access import OutOfScope
from services.events import ConcurrentChange, act
from services.intake import merge_flagged, save_rate_limits, submit_report
from services.locate import forget_index
from tests.builders import grid_centre, make_square_area

NOW = datetime(2026, 11, 21, 12, 0)
PHONE = "13912345678"


@pytest.fixture
def engine(empty_engine):
    forget_index()
    with empty_engine.begin() as conn:
        make_square_area(conn)
    return empty_engine


def _form(i=0, dx_m=0.0, **kw):
    lon, lat = grid_centre(i)
    lon += dx_m / 97_000  # ~97 km per degree of longitude at 29° N
    fields = {"category": "urban", "title": "占道经营", "description": "", "lon": lon, "lat": lat}
    return ReportForm(**(fields | kw))


def _report(engine, form=None, *, at=NOW, **kw):
    return submit_report(UnitOfWork(engine), form or _form(), now=at, **kw)


def _count(engine, model, *where):
    with engine.connect() as conn:
        return conn.execute(select(func.count()).select_from(model).where(*where)).scalar_one()


# -- rate limits --------------------------------------------------------------------------------------


def test_a_sixth_report_from_one_browser_session_within_ten_minutes_is_refused_saying_when(engine):
    for m in range(5):
        _report(engine, _form(m % 4, title=f"问题{m}"), at=NOW + timedelta(minutes=m), origin="session-a")
    with pytest.raises(RateLimited) as refused:
        _report(engine, _form(title="问题5"), at=NOW + timedelta(minutes=5), origin="session-a")
    message = refused.value.problems["提交"]
    assert message == "提交过于频繁：本设备 10 分钟内最多上报 5 次，请于 12:10 后再试"
    assert refused.value.retry_at == NOW + timedelta(minutes=10)
    assert _count(engine, Event) == 5 and _count(engine, Submission) == 5
    # another browser is not held up, and this one may go on once the first report left the window
    _report(engine, _form(title="别处"), at=NOW + timedelta(minutes=5), origin="session-b")
    _report(engine, _form(title="问题5"), at=NOW + timedelta(minutes=10), origin="session-a")
    assert _count(engine, Event) == 7


def test_one_phone_number_is_limited_across_browser_sessions(engine):
    for m in range(5):
        _report(
            engine,
            _form(title=f"问题{m}", reporter_phone=PHONE),
            at=NOW + timedelta(minutes=m),
            origin=f"s{m}",
        )
    with pytest.raises(RateLimited, match="同一手机号 10 分钟内最多上报 5 次，请于 12:10 后再试"):
        _report(engine, _form(reporter_phone=PHONE), at=NOW + timedelta(minutes=6), origin="fresh")
    assert _count(engine, Event) == 5


def test_a_hundred_reports_in_a_minute_from_one_phone_store_five(engine):
    stored = refused = 0
    for k in range(100):
        try:
            _report(engine, _form(k % 4, reporter_phone=PHONE), at=NOW + timedelta(seconds=k * 0.6))
            stored += 1
        except RateLimited:
            refused += 1
    assert (stored, refused) == (5, 95)
    assert _count(engine, Event) == 5


def test_the_daily_phone_limit_says_the_date_and_time_when_it_is_tomorrow(engine):
    start = datetime(2026, 11, 21, 8, 0)
    for k in range(20):  # 20 reports, 30 minutes apart: inside every 10-minute window, at the daily limit
        _report(engine, _form(k % 4, reporter_phone=PHONE), at=start + timedelta(minutes=30 * k))
    with pytest.raises(RateLimited, match="24 小时内最多上报 20 次，请于 2026-11-22 08:00 后再试"):
        _report(engine, _form(reporter_phone=PHONE), at=datetime(2026, 11, 21, 23, 0))


def test_grid_workers_are_not_held_by_the_anonymous_channels_limits(engine):
    for m in range(8):
        _report(
            engine,
            _form(m % 4),
            source=EventSource.GRID_WORKER,
            origin="worker",
            at=NOW + timedelta(seconds=m),
        )
    assert _count(engine, Event) == 8


def test_an_administrator_sets_the_limits_and_a_bad_value_is_refused(engine):
    save_rate_limits(UnitOfWork(engine), {"session": [[2, 60]], "phone": [[1, 5]]}, now=NOW)
    _report(engine, _form(title="一"), origin="s")
    _report(engine, _form(title="二"), origin="s", at=NOW + timedelta(minutes=1))
    with pytest.raises(RateLimited, match="本设备 1 小时内最多上报 2 次，请于 13:00 后再试"):
        _report(engine, _form(title="三"), origin="s", at=NOW + timedelta(minutes=2))
    with pytest.raises(InvalidReport, match="上报频率限制"):
        save_rate_limits(UnitOfWork(engine), {"session": [[0, 10]]}, now=NOW)
    leader = CurrentUser(1, "l", "领导", Role.TOWNSHIP_LEADER, 1)
    with pytest.raises(OutOfScope):
        save_rate_limits(UnitOfWork(engine), {"session": [[9, 10]]}, now=NOW, user=leader)


def test_a_retry_of_a_stored_report_is_not_counted_against_the_limit(engine):
    for m in range(5):
        _report(engine, _form(title=f"问题{m}"), origin="s", submission_key=f"key-{m:02d}-abcdefghijkl")
    again = _report(engine, _form(title="问题4"), origin="s", submission_key="key-04-abcdefghijkl")
    assert again.title == "问题4" and _count(engine, Event) == 5


# -- near-duplicates flagged for staff ----------------------------------------------------------------


def test_a_report_within_50_m_and_24_h_of_an_open_one_is_flagged_with_the_likely_original(engine):
    first = _report(engine, _form())
    near = _report(engine, _form(dx_m=20), at=NOW + timedelta(hours=3))
    far = _report(engine, _form(dx_m=120), at=NOW + timedelta(hours=3))
    other = _report(engine, _form(category="dispute", title="邻里纠纷"), at=NOW + timedelta(hours=3))
    late = _report(engine, _form(dx_m=10), at=NOW + timedelta(hours=30))
    assert first.duplicate_of_id is None
    assert near.duplicate_of_id == first.id
    assert far.duplicate_of_id is None and other.duplicate_of_id is None
    assert late.duplicate_of_id is None  # 10 m from both, but 27 and 30 hours later
    with engine.connect() as conn:
        flagged = dict(conn.execute(select(Event.id, Event.duplicate_of_id)).all())
    assert flagged == {first.id: None, near.id: first.id, far.id: None, other.id: None, late.id: None}


def _staff(engine, role=Role.TOWNSHIP_LEADER, scope="990001001"):
    with engine.begin() as conn:
        unit = conn.execute(select(AdminUnit.id).where(AdminUnit.code == scope)).scalar_one()
        uid = conn.execute(
            insert(User).returning(User.id),
            {
                "username": f"u{role.value}{scope}",
                "display_name": "某人",
                "role": role,
                "scope_unit_id": unit,
                "created_at": datetime(2026, 1, 1),
            },
        ).scalar_one()
    return CurrentUser(uid, f"u{role.value}", "某人", role, unit)


def test_staff_merge_a_flagged_report_into_its_original_which_counts_the_reporter(engine):
    first = _report(engine, _form())
    dup = _report(engine, _form(dx_m=15), at=NOW + timedelta(minutes=30))
    audited = _count(engine, AuditLog)
    into = merge_flagged(
        UnitOfWork(engine),
        _staff(engine),
        event_id=dup.id,
        now=NOW + timedelta(hours=1),
        expected=EventStatus.REPORTED,
    )
    assert into == first.id
    with engine.connect() as conn:
        rows = {r.id: r for r in conn.execute(select(Event.__table__))}
    assert rows[dup.id].status == EventStatus.REJECTED and rows[dup.id].merged_into_id == first.id
    assert rows[first.id].reporter_count == 2
    assert _count(engine, AuditLog) == audited + 2  # the 退回 of the duplicate, the merge on the original
    with pytest.raises(InvalidReport, match=f"该事件已合并至事件 #{first.id}"):  # nothing happens twice
        merge_flagged(UnitOfWork(engine), _staff(engine, scope="990001"), event_id=dup.id, now=NOW)
    with engine.connect() as conn:
        assert conn.execute(select(Event.reporter_count).where(Event.id == first.id)).scalar_one() == 2


def test_a_flagged_report_someone_accepted_meanwhile_is_not_merged_and_the_staff_member_is_told(engine):
    _report(engine, _form())
    dup = _report(engine, _form(dx_m=15))
    act(UnitOfWork(engine), event_id=dup.id, action=Action.ACCEPT, now=NOW)
    with pytest.raises(ConcurrentChange, match="已受理"):
        merge_flagged(
            UnitOfWork(engine), _staff(engine), event_id=dup.id, now=NOW, expected=EventStatus.REPORTED
        )
    with pytest.raises(IllegalTransition, match="不能执行“退回”"):
        merge_flagged(UnitOfWork(engine), _staff(engine, scope="990001"), event_id=dup.id, now=NOW)


def test_a_merge_is_refused_without_an_original_outside_the_scope_or_for_a_handler(engine):
    lone = _report(engine, _form(3))
    with pytest.raises(InvalidReport, match="没有可合并的原事件"):
        merge_flagged(UnitOfWork(engine), _staff(engine), event_id=lone.id, now=NOW)
    first = _report(engine, _form())
    dup = _report(engine, _form(dx_m=5))
    west_village = _staff(engine, scope="990001001002")  # grid 0 is in the east village
    with pytest.raises(OutOfScope):
        merge_flagged(UnitOfWork(engine), west_village, event_id=dup.id, now=NOW)
    inspector = CurrentUser(99, "i", "网格员", Role.INSPECTOR, 1)
    with pytest.raises(OutOfScope):
        merge_flagged(UnitOfWork(engine), inspector, event_id=dup.id, now=NOW)
    act(UnitOfWork(engine), event_id=first.id, action=Action.REJECT, now=NOW, note="无效")
    with pytest.raises(InvalidReport, match="已办结或已被合并"):
        merge_flagged(UnitOfWork(engine), _staff(engine, scope="990001"), event_id=dup.id, now=NOW)


# -- photos ---------------------------------------------------------------------------------------------


def _png(width: int, height: int) -> bytes:
    """A valid 1-bit PNG of any size, built row by row (a few KB even at 400 Mpx)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    packer, row = zlib.compressobj(9), b"\x00" * (1 + (width + 7) // 8)
    body = b"".join(packer.compress(row) for _ in range(height)) + packer.flush()
    ihdr = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", body) + chunk(b"IEND", b"")


def _heic_noise() -> bytes:
    """A 640×480 HEIC of noise: its image data (mdat) is most of the file, after its header."""
    pixels = bytes((i * 7919) % 251 for i in range(640 * 480 * 3))
    out = io.BytesIO()
    Image.frombytes("RGB", (640, 480), pixels).save(out, "HEIF", quality=50)
    return out.getvalue()


def _jpeg(size=(64, 48)) -> bytes:
    out = io.BytesIO()
    Image.linear_gradient("L").resize(size).convert("RGB").save(out, "JPEG")
    return out.getvalue()


def _refused(engine, photo) -> str:
    with pytest.raises(InvalidReport) as caught:
        _report(engine, photo=photo)
    assert _count(engine, Event) == 0 and _count(engine, Attachment) == 0
    return caught.value.problems["照片"]


def test_a_png_of_a_few_kb_declaring_400_megapixels_is_refused_from_its_header(engine):
    bomb = _png(20_000, 20_000)
    assert len(bomb) < 200_000
    assert (
        _refused(engine, bomb)
        == "图片像素过大（20000×20000，约 400 百万像素），上限 40 百万像素，请缩小后重试"
    )


def test_a_photo_just_over_40_megapixels_is_refused_and_one_under_is_stored_at_most_4096_wide(engine):
    assert "上限 40 百万像素" in _refused(engine, _png(8000, 5001))
    event = _report(engine, photo=_png(8000, 5000))
    with engine.connect() as conn:
        data = conn.execute(select(Attachment.data).where(Attachment.event_id == event.id)).scalar_one()
    assert Image.open(io.BytesIO(data)).size == (4096, 2560)


def test_a_48_megapixel_phone_photo_is_taken_and_stored_at_most_4096_wide(engine):
    """A phone camera's full resolution (8000×6000): no one can shrink a photo on a phone first."""
    event = _report(engine, photo=_jpeg((8000, 6000)))
    with engine.connect() as conn:
        data = conn.execute(select(Attachment.data).where(Attachment.event_id == event.id)).scalar_one()
    assert max(Image.open(io.BytesIO(data)).size) <= 4096


@pytest.mark.parametrize(
    ("photo", "message"),
    [
        (_jpeg()[: len(_jpeg()) // 2], "图片已损坏或不完整，无法读取"),  # cut off in the middle of the scan
        (_jpeg()[:20], "图片已损坏或不完整，无法读取尺寸"),  # cut off before the frame header
        (
            b"\x89PNG\r\n\x1a\n" + b"\x00" * 40,
            "图片已损坏或不完整，无法读取尺寸",
        ),  # a PNG signature, no image
        (_heic_noise()[:-20_000], "图片已损坏或不完整，无法读取"),  # a HEIC cut off in its image data
        (_heic_noise()[:200], "图片已损坏或不完整，无法读取尺寸"),  # a HEIC cut off before its sizes
        (b"GIF89a" + b"\x00" * 40, "不是有效的图片文件（仅支持 JPEG、PNG、WebP、HEIC）"),  # another type
        (b"<html>not an image</html>", "不是有效的图片文件（仅支持 JPEG、PNG、WebP、HEIC）"),
    ],
)
def test_every_broken_or_foreign_photo_is_refused_in_chinese_with_nothing_stored(engine, photo, message):
    assert _refused(engine, photo) == message


def test_a_png_whose_idat_is_garbage_is_refused_in_chinese(engine):
    good = _png(100, 100)
    broken = good[:41] + b"\xff" * 20 + good[61:]  # the compressed rows overwritten
    assert _refused(engine, broken).startswith("图片")
