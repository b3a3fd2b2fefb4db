"""One set of reading rules for every import (venues, events, accounts): row numbers are the file's physical
lines (blank lines, quoted multi-line cells), a ragged row is an error of its row in Chinese, every bad row
is listed (capped, with the total). Events: 外部编号 unique per source, the same file twice is a no-op."""

from __future__ import annotations

import csv
import io
from datetime import datetime

import pytest
from sqlalchemy import func, insert, select

from db.models import AuditLog, Event, User, Venue
from db.uow import UnitOfWork
from domain.access import CurrentUser
from domain.vocabulary import EventSource, Role
from services import accounts
from services.event_import import TEMPLATE_COLUMNS, import_events
from services.events import Actor
from services.locate import forget_index
from services.tabular import MAX_LISTED
from services.venue_import import ImportRejected, import_venues
from tests.builders import X0, Y0, D, grid_centre, make_square_area

NOW = datetime(2026, 11, 21, 18, 0)
ACTOR = Actor(None, "admin")


@pytest.fixture
def area(empty_engine):
    forget_index()
    with empty_engine.begin() as conn:
        ids = make_square_area(conn)
        admin = conn.execute(
            insert(User).returning(User.id),
            {
                "username": "county_admin",
                "display_name": "区管理员",
                "role": Role.ADMIN,
                "scope_unit_id": ids["990001"],
                "created_at": NOW,
            },
        ).scalar_one()
    return empty_engine, ids, CurrentUser(admin, "county_admin", "区管理员", Role.ADMIN, ids["990001"])


def _count(engine, model, *where) -> int:
    with engine.connect() as conn:
        return conn.execute(select(func.count()).select_from(model).where(*where)).scalar_one()


def _csv(header: list[str], rows: list[list[str]], blank_after: tuple[int, ...] = ()) -> str:
    """CSV text as a person's file may be: CRLF lines, quoted cells, blank lines after some rows."""
    out = io.StringIO()
    w = csv.writer(out, lineterminator="\r\n")
    w.writerow(header)
    for k, row in enumerate(rows):
        w.writerow(row)
        if k in blank_after:
            out.write("\r\n")
    return out.getvalue()


# -- events ---------------------------------------------------------------------------------------------


def _event(ref: str, **override) -> list[str]:
    lon, lat = grid_centre(1)
    row = {
        "来源": "12345热线",
        "外部编号": ref,
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
    } | override
    return [row[c] for c in TEMPLATE_COLUMNS]


def _import_events(engine, text: str, name="events.csv"):
    return import_events(UnitOfWork(engine), text.encode("gbk"), name, actor=ACTOR, now=NOW)


def test_event_rows_are_numbered_by_the_files_lines_after_blank_lines_and_multi_line_cells(area):
    engine, _, _ = area
    rows = [
        _event("GD1", 描述="第一行\n第二行\n第三行"),  # lines 2–4
        _event("GD2"),  # line 5, then a blank line 6
        _event("GD3", 类别="火星事务"),  # line 7
        _event("GD4", 描述="甲\n乙"),  # lines 8–9
        _event("GD5", 上报时间="昨天"),  # line 10
    ]
    outcome = _import_events(engine, _csv(TEMPLATE_COLUMNS, rows, blank_after=(1,)))
    assert {(e.row, e.field) for e in outcome.errors} == {(7, "类别"), (10, "上报时间")}
    assert _count(engine, Event) == 0


def test_a_ragged_event_row_is_an_error_in_chinese_and_every_other_bad_row_is_listed_too(area):
    engine, _, _ = area
    rows = [_event("GD1"), [*_event("GD2"), "多出的一格"], _event("GD3")[:-3], _event("GD4", 标题="")]
    outcome = _import_events(engine, _csv(TEMPLATE_COLUMNS, rows))
    found = {(e.row, e.field): e.reason for e in outcome.errors}
    assert set(found) == {(3, "整行"), (4, "整行"), (5, "标题")}
    assert found[(3, "整行")].startswith("本行有 13 个单元格，多于表头的 12 列，多出的内容：“多出的一格”")
    assert found[(4, "整行")].startswith("本行只有 9 个单元格，表头有 12 列")
    assert _count(engine, Event) == 0


def test_a_file_with_thousands_of_bad_rows_lists_the_first_200_and_says_the_total(area):
    engine, _, _ = area
    rows = [_event(f"GD{k}", 类别="火星事务") for k in range(1000)]
    outcome = _import_events(engine, _csv(TEMPLATE_COLUMNS, rows))
    assert outcome.total == 1000 and len(outcome.errors) == MAX_LISTED + 1
    assert outcome.errors[0].row == 2 and outcome.errors[MAX_LISTED - 1].row == MAX_LISTED + 1
    assert outcome.errors[-1].reason == f"共 1000 处问题，以上仅列出前 {MAX_LISTED} 处"


def test_the_same_external_number_twice_in_a_file_is_an_error_of_the_second_row(area):
    engine, _, _ = area
    rows = [_event("GD1"), _event("GD2"), _event("GD1"), _event("GD1", 来源="110联动")]
    outcome = _import_events(engine, _csv(TEMPLATE_COLUMNS, rows))
    assert [(e.row, e.field, e.reason) for e in outcome.errors] == [
        (4, "外部编号", "与第 2 行的外部编号重复（同一来源的外部编号只能导入一次）")
    ]  # row 5: the same number from another source is another work order
    assert _count(engine, Event) == 0


def test_an_external_number_already_stored_is_an_error_naming_the_stored_event(area):
    engine, _, _ = area
    assert _import_events(engine, _csv(TEMPLATE_COLUMNS, [_event("GD1"), _event("GD2")])).imported == 2
    with engine.connect() as conn:
        stored = conn.execute(select(Event.id).where(Event.external_ref == "GD2")).scalar_one()
    outcome = _import_events(engine, _csv(TEMPLATE_COLUMNS, [_event("GD3"), _event("GD2", 标题="同一工单")]))
    assert [(e.row, e.field, e.reason) for e in outcome.errors] == [
        (3, "外部编号", f"该来源的此编号已导入过（事件 #{stored}），不能重复导入")
    ]
    assert _count(engine, Event) == 2


def test_the_same_file_imported_twice_is_a_no_op_that_says_when_it_was_imported(area):
    engine, _, _ = area
    text = _csv(TEMPLATE_COLUMNS, [_event("GD1"), _event("GD2"), _event("")])
    assert _import_events(engine, text).imported == 3
    audited = _count(engine, AuditLog)
    again = _import_events(engine, text, name="改名后.csv")
    assert again.already and again.imported == 0
    [message] = again.errors
    assert message.reason.startswith("该文件已于 2026-11-21 18:00 导入过（3 条事件，编号 #1–#3）")
    assert message.reason.endswith("本次未重复导入")
    assert _count(engine, Event) == 3 and _count(engine, AuditLog) == audited


def test_a_stored_event_keeps_its_external_number_and_source(area):
    engine, _, _ = area
    _import_events(engine, _csv(TEMPLATE_COLUMNS, [_event("GD-9", 来源="110联动")]))
    with engine.connect() as conn:
        source, ref = conn.execute(select(Event.source, Event.external_ref)).one()
    assert (EventSource(source).label, ref) == ("110联动", "GD-9")


# -- venues ---------------------------------------------------------------------------------------------

VENUE_HEADER = ["名称", "类别", "地址", "纬度", "经度", "网格编码", "负责人", "联系电话"]


def _venue(name: str, grid: int = 0) -> list[str]:
    return [
        name,
        "沿街店铺",
        f"方城路{name}",
        f"{Y0 + 0.5 * D:.6f}",
        f"{X0 + (grid + 0.5) * D:.6f}",
        "",
        "王某",
        "",
    ]


def _import_venues(engine, ids, text: str):
    leader = CurrentUser(99, "leader", "领导", Role.TOWNSHIP_LEADER, ids["990001001"])
    return import_venues(UnitOfWork(engine), data=text.encode("gbk"), filename="v.csv", now=NOW, user=leader)


def test_a_venue_row_with_extra_cells_is_an_error_not_silently_cut(area):
    engine, ids, _ = area
    rows = [_venue("甲"), [*_venue("乙"), "13800000000"], _venue("丙")[:5]]
    with pytest.raises(ImportRejected) as refused:
        _import_venues(engine, ids, _csv(VENUE_HEADER, rows))
    assert [(p.row, p.field) for p in refused.value.problems] == [(3, "整行"), (4, "整行")]
    assert "“13800000000”" in refused.value.problems[0].reason
    assert _count(engine, Venue) == 0


def test_venue_rows_are_numbered_by_the_files_lines(area):
    engine, ids, _ = area
    rows = [_venue("甲"), _venue("乙\n分店"), _venue("丙")]
    rows[2][1] = "饭店"  # not a venue category
    with pytest.raises(ImportRejected) as refused:
        _import_venues(engine, ids, _csv(VENUE_HEADER, rows, blank_after=(0,)))
    # 甲 line 2, a blank line 3, 乙 lines 4–6 (its name and address each hold a line break), 丙 line 7
    assert [(p.row, p.field) for p in refused.value.problems] == [(7, "类别")]


# -- accounts -------------------------------------------------------------------------------------------

ACCOUNT_HEADER = ["用户名", "姓名", "角色", "管辖区划编码", "部门", "手机号", "初始密码"]


def test_account_rows_follow_the_same_rules_ragged_rows_and_line_numbers(area):
    engine, _, admin = area
    rows = [
        ["zhang_san", "张三\n（镇长）", "乡镇领导", "990001001", "", "", ""],  # lines 2–3
        ["li_si", "李四", "网格员", "990001001002", "", "", "", "多余"],  # line 5 (after a blank line)
        ["wang_wu", "王五", "乡镇领导", "990001001", "", ""],  # line 6: one cell short
        ["zhao_liu", "赵六", "镇长", "990001001", "", "", ""],  # line 7: not a role
    ]
    text = _csv(ACCOUNT_HEADER, rows, blank_after=(0,))
    result = accounts.import_accounts(
        UnitOfWork(engine), actor=admin, data=text.encode("utf-8"), filename="a.csv", now=NOW
    )
    assert [(e.row, e.field) for e in result.errors] == [(5, "整行"), (6, "整行"), (7, "角色")]
    assert _count(engine, User) == 1


def test_two_files_with_the_same_external_number_imported_at_once_store_it_once(area):
    import threading

    engine, _, _ = area
    files = [
        _csv(TEMPLATE_COLUMNS, [_event("GD1"), _event("GD2", 标题="甲文件")]),
        _csv(TEMPLATE_COLUMNS, [_event("GD3"), _event("GD2", 标题="乙文件")]),
    ]
    barrier, outcomes = threading.Barrier(2), []

    def run(text):
        barrier.wait()
        outcomes.append(_import_events(engine, text))

    threads = [threading.Thread(target=run, args=(t,)) for t in files]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(o.imported for o in outcomes) == [0, 2]
    [refused] = [o for o in outcomes if not o.ok]
    assert all(e.field == "外部编号" for e in refused.errors), refused.errors
    assert _count(engine, Event) == 2 and _count(engine, Event, Event.external_ref == "GD2") == 1
