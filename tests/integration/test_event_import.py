"""Importing 12345/110 events from CSV and XLSX: encodings, all-or-nothing, every bad row listed."""

import itertools
from datetime import datetime

import pandas as pd
import pytest
from sqlalchemy import func, select

from db.models import AuditLog, Event
from db.uow import UnitOfWork
from domain.vocabulary import EventSource
from services import audit
from services.event_import import TEMPLATE_COLUMNS, import_events
from services.events import Actor
from services.locate import forget_index
from services.tabular import to_xlsx
from tests.builders import grid_centre, make_square_area

NOW = datetime(2026, 11, 21, 18, 0)
ACTOR = Actor(None, "admin")


@pytest.fixture
def engine(empty_engine):
    forget_index()
    with empty_engine.begin() as conn:
        make_square_area(conn)
    return empty_engine


REFS = itertools.count(1)


def _rows(n=2, **override):
    """``n`` good rows (each with its own 外部编号) with ``override`` applied."""
    lon, lat = grid_centre(1)
    base = {
        "来源": "12345热线",
        "类别": "城镇管理",
        "标题": "占道经营",
        "描述": "影响通行",
        "地址": "方城路1号",
        "纬度": f"{lat:.6f}",
        "经度": f"{lon:.6f}",
        "上报时间": "2026-11-21 09:30",
        "紧急程度": "一般",
        "反映人": "张先生",
        "联系电话": "13800000000",
    }
    rows = [base | {"外部编号": f"GD{next(REFS)}"} | override for _ in range(n)]
    return pd.DataFrame(rows, columns=TEMPLATE_COLUMNS)


def _count(engine):
    with engine.connect() as conn:
        return conn.execute(select(func.count()).select_from(Event)).scalar_one()


@pytest.mark.parametrize(
    ("encoding", "filename"),
    [("utf-8", "a.csv"), ("utf-8-sig", "b.csv"), ("gbk", "c.csv"), ("xlsx", "d.xlsx")],
)
def test_utf8_bom_gbk_and_xlsx_files_all_import_the_same_chinese(engine, encoding, filename):
    frame = _rows(3)
    data = to_xlsx({"事件": frame}) if encoding == "xlsx" else frame.to_csv(index=False).encode(encoding)
    outcome = import_events(UnitOfWork(engine), data, filename, actor=ACTOR, now=NOW)
    assert outcome.ok and outcome.imported == 3
    with engine.connect() as conn:
        titles = set(conn.execute(select(Event.title)).scalars())
        source = EventSource(conn.execute(select(Event.source)).scalars().first())
    assert titles == {"占道经营"} and source.label == "12345热线"


def test_every_bad_row_is_listed_with_its_field_and_nothing_is_imported(engine):
    frame = pd.concat(
        [
            _rows(1),
            _rows(1, 类别="火星事务"),
            _rows(1, 经度="abc", 上报时间="昨天"),
            _rows(1, 经度="118.5", 纬度="28.5"),  # outside every grid
            _rows(1, 标题=""),
        ]
    )
    outcome = import_events(
        UnitOfWork(engine), frame.to_csv(index=False).encode("gbk"), "bad.csv", actor=ACTOR, now=NOW
    )
    found = {(e.row, e.field) for e in outcome.errors}
    assert found == {(3, "类别"), (4, "经度"), (4, "上报时间"), (5, "经度/纬度"), (6, "标题")}
    assert "第 3 行「类别」" in str(outcome.errors[0])
    assert _count(engine) == 0


def test_an_excel_zero_date_is_refused_as_a_time_before_2000_and_nothing_is_imported(engine):
    """A time of 1900 (an Excel date left at 0 shows as 1900-01-00; its serial 0 reads back as a bare time)
    was imported as an event of 1900; both are problems of their row's 上报时间 now."""
    frame = pd.concat(
        [_rows(1), _rows(1, 上报时间=datetime(1899, 12, 30)), _rows(1, 上报时间="1900-01-01 00:00")]
    )
    outcome = import_events(UnitOfWork(engine), to_xlsx({"事件": frame}), "old.xlsx", actor=ACTOR, now=NOW)
    assert {(e.row, e.field) for e in outcome.errors} == {(3, "上报时间"), (4, "上报时间")}
    assert "2000-01-01" in next(e.reason for e in outcome.errors if e.row == 4)
    assert _count(engine) == 0


def test_a_file_without_the_required_columns_is_refused_whole(engine):
    outcome = import_events(UnitOfWork(engine), b"a,b\n1,2\n", "x.csv", actor=ACTOR, now=NOW)
    assert not outcome.ok and {(e.row, e.reason) for e in outcome.errors} == {(1, "缺少此列")}
    assert {e.field for e in outcome.errors} == {"来源", "类别", "标题", "纬度", "经度", "上报时间"}


def test_a_file_with_only_the_header_is_refused_and_nothing_changes(engine):
    header = _rows(1).iloc[:0].to_csv(index=False).encode("utf-8-sig")
    outcome = import_events(UnitOfWork(engine), header, "empty.csv", actor=ACTOR, now=NOW)
    assert not outcome.ok and "没有可导入的事件" in outcome.errors[0].reason
    assert _count(engine) == 0


def test_a_row_is_checked_by_the_same_rules_as_the_report_form(engine):
    """One checker for 随手拍 and the file: the title's length, the place's range, the one mobile rule."""
    frame = pd.concat(
        [
            _rows(1, 标题="长" * 101),
            _rows(1, 经度="190", 纬度="28.9"),
            _rows(1, 联系电话="0570-1234567"),
            _rows(1, 联系电话="12812345678"),
            _rows(1, 标题="   "),
        ]
    )
    outcome = import_events(
        UnitOfWork(engine), frame.to_csv(index=False).encode(), "rules.csv", actor=ACTOR, now=NOW
    )
    found = {(e.row, e.field): e.reason for e in outcome.errors}
    assert found == {
        (2, "标题"): "标题不能超过 100 字",
        (3, "经度/纬度"): "经纬度超出范围",
        # row 4, a landline, is a 12345 caller's number: taken (see below)
        (5, "联系电话"): "应为手机号（11 位，可带 +86）或固定电话（如 0570-3021234）；不知道可留空",
        (6, "标题"): "不能为空",  # a blank cell is an empty one
    }
    assert _count(engine) == 0


def test_the_template_example_lies_in_the_users_own_area_and_imports_as_it_is(engine):
    from services.event_import import template
    from services.geography import example_place, load_tree
    from services.tabular import to_csv

    with engine.connect() as conn:
        tree = load_tree(conn)
    place = example_place(tree)
    assert place is not None
    outcome = import_events(UnitOfWork(engine), to_csv(template(place)), "模板.csv", actor=ACTOR, now=NOW)
    assert outcome.ok, outcome.errors
    with engine.connect() as conn:
        grid = conn.execute(select(Event.grid_id).where(Event.title == "店门口占道经营")).scalar_one()
    assert tree.code(grid) == place.grid_code
    assert "荷花路" not in template(None).iloc[0]["地址"] and template(None).iloc[0]["纬度"] == ""


def test_phones_and_times_as_hotline_systems_export_them_are_taken_in_one_form(engine):
    """Landlines (a 12345 caller's), +86 and spaced mobiles, ISO times, 年月日, a date alone: a real export
    used to be refused whole for one such cell. Stored as 0570-3021234 / 13812345678 / whole minutes."""
    cases = [
        ("0570-3021234", "2026-11-21T09:30:00"),
        ("0570 3021234", "2026年11月21日 09:30"),
        ("+86 138 1234 5678", "2026-11-21 09:30:00.000"),
        ("（0570）3021234", "2026/11/21"),
    ]
    frame = pd.concat([_rows(1, 联系电话=phone, 上报时间=at) for phone, at in cases])
    outcome = import_events(
        UnitOfWork(engine), frame.to_csv(index=False).encode(), "hotline.csv", actor=ACTOR, now=NOW
    )
    assert not outcome.errors, outcome.errors
    with engine.connect() as conn:
        stored = conn.execute(select(Event.reporter_phone, Event.reported_at).order_by(Event.id)).all()
    assert [p for p, _ in stored] == ["0570-3021234", "0570-3021234", "13812345678", "0570-3021234"]
    assert [t for _, t in stored] == [datetime(2026, 11, 21, 9, 30)] * 3 + [datetime(2026, 11, 21)]


def test_rows_already_past_their_first_deadline_are_counted_so_the_importer_is_told(engine):
    """A 12345 export of old work orders arrives 超期 at once: the outcome says how many (the page warns)."""
    old = _rows(3, 上报时间="2026-11-01 09:30")
    fresh = _rows(2, 上报时间="2026-11-21 17:30")
    data = pd.concat([old, fresh]).to_csv(index=False).encode("utf-8")
    outcome = import_events(UnitOfWork(engine), data, "mixed.csv", actor=ACTOR, now=NOW)
    assert outcome.ok and outcome.imported == 5 and outcome.late == 3


def test_a_hotline_export_under_its_own_column_names_keeps_its_numbers_and_leaves_closed_orders_out(engine):
    """A 12345 export names its number 工单编号 and says 办理状态: the numbers were dropped (imported twice
    the next day) and work orders closed there became new open events here, both without a word."""
    day1 = _rows(3).rename(columns={"外部编号": "工单编号", "描述": "诉求内容"})
    day1["办理状态"] = ["处理中", "已办结", "待受理"]
    day1["承办单位"] = "城管局"
    outcome = import_events(
        UnitOfWork(engine), day1.to_csv(index=False).encode(), "d1.csv", actor=ACTOR, now=NOW
    )
    assert outcome.ok and outcome.imported == 2
    assert outcome.notes == [
        "列“工单编号”按“外部编号”读取",
        "列“诉求内容”按“描述”读取",
        "以下列不是模板中的列，未导入：承办单位",
        "1 行在原系统中已办结（第 3 行），未导入：已办结的历史工单不进入本系统的办理流程",
    ]
    with engine.connect() as conn:
        refs = set(conn.execute(select(Event.external_ref)).scalars())
        texts = set(conn.execute(select(Event.description)).scalars())
    assert refs == {day1["工单编号"][0], day1["工单编号"][2]} and all(t.endswith("影响通行") for t in texts)
    with engine.connect() as conn:  # written many to a statement: one chained event.report row each
        reported = conn.execute(select(AuditLog.entity_id).where(AuditLog.action == "event.report")).scalars()
        assert sorted(reported) == sorted(conn.execute(select(Event.id)).scalars())
        assert audit.verify(conn) is None
    day2 = pd.concat([day1.iloc[[2]], _rows(1).rename(columns={"外部编号": "工单编号"})])  # one seen before
    again = import_events(
        UnitOfWork(engine), day2.to_csv(index=False).encode(), "d2.csv", actor=ACTOR, now=NOW
    )
    assert not again.ok and [(e.row, e.field) for e in again.errors] == [(2, "外部编号")]
    assert _count(engine) == 2


def test_iso_times_with_an_offset_excel_day_numbers_and_full_width_digits_are_read_in_china_time(engine):
    _lon, lat = grid_centre(1)
    frame = pd.concat(
        [
            _rows(1, 上报时间="2026-11-03T08:05:00+08:00"),
            _rows(1, 上报时间="2026-11-03T00:05:00Z"),  # the same moment in UTC
            _rows(1, 上报时间="46329.3368"),  # a date cell formatted 常规: 2026-11-03 08:05
            _rows(1, 纬度=f"{lat:.4f}".translate(str.maketrans("0123456789.", "０１２３４５６７８９．"))),
        ]
    )
    outcome = import_events(
        UnitOfWork(engine), frame.to_csv(index=False).encode(), "t.csv", actor=ACTOR, now=NOW
    )
    assert outcome.ok, outcome.errors
    with engine.connect() as conn:
        times = conn.execute(select(Event.reported_at).order_by(Event.id)).scalars().all()
    assert times[:3] == [datetime(2026, 11, 3, 8, 5)] * 3


def test_a_row_whose_latitude_and_longitude_are_swapped_is_told_so(engine):
    lon, lat = grid_centre(1)
    frame = pd.concat(
        [_rows(1), _rows(1, 纬度=f"{lon:.6f}", 经度=f"{lat:.6f}"), _rows(1, 纬度="10", 经度="100")]
    )
    outcome = import_events(
        UnitOfWork(engine), frame.to_csv(index=False).encode(), "s.csv", actor=ACTOR, now=NOW
    )
    assert [(e.row, e.reason) for e in outcome.errors] == [
        (3, "经纬度超出范围：纬度和经度可能填反了"),  # a 纬度 of 121 and a 经度 of 29
        (4, "位置不在任何网格内"),
    ]
    assert _count(engine) == 0


def test_west_of_90_degrees_a_swapped_point_is_in_range_and_is_told_so_by_where_it_would_lie(empty_engine):
    """In Kashgar (76°E, 39°N) a swapped pair is a valid latitude and longitude: only the map can tell."""
    from tests.builders import X0, Y0, square_area_units, store_units

    units = square_area_units()
    units["geometry"] = units.geometry.translate(xoff=75.98 - X0, yoff=39.47 - Y0)
    forget_index()
    with empty_engine.begin() as conn:
        store_units(conn, units)
    lon, lat = grid_centre(1)
    lon, lat = lon + 75.98 - X0, lat + 39.47 - Y0
    frame = pd.concat(
        [_rows(1, 纬度=f"{lat:.6f}", 经度=f"{lon:.6f}"), _rows(1, 纬度=f"{lon:.6f}", 经度=f"{lat:.6f}")]
    )
    outcome = import_events(
        UnitOfWork(empty_engine), frame.to_csv(index=False).encode(), "k.csv", actor=ACTOR, now=NOW
    )
    assert [(e.row, e.reason) for e in outcome.errors] == [
        (3, "位置不在任何网格内：纬度和经度可能填反了（互换后位于网格内），请核对这两列")
    ]
