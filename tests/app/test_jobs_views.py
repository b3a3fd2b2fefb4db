"""What the jobs runner leaves for people, under AppTest on a store of its own (no demo, no simulator):
督办提醒 on the events page, the stored 预警 of a judged day, 定时报表 to download, the audit check on /admin."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, time, timedelta

import pytest
from sqlalchemy import insert, select

from db.engine import session_factory
from db.models import Department, User
from db.uow import UnitOfWork
from domain.event_flow import Action
from domain.vocabulary import EventCategory, EventSource, Role, Urgency
from services import clock
from services.auth import _current, hash_password
from services.event_rules import load_rules, save_rules
from services.events import act, report_event
from services.jobs import run_due
from services.locate import forget_index
from tests.app.conftest import page
from tests.builders import grid_centre, make_square_area


def _report(engine, at: datetime, title: str, urgency=Urgency.URGENT) -> int:
    lon, lat = grid_centre(0)
    return report_event(
        UnitOfWork(engine),
        source=EventSource.HOTLINE_12345,
        category=EventCategory.URBAN,
        title=title,
        lon=lon,
        lat=lat,
        now=at,
        urgency=urgency,
    ).id


@pytest.fixture
def square(empty_engine, monkeypatch, tmp_path):
    """The square area, a late event being handled by the township's 城管 team, yesterday's 群发, and one
    pass of the jobs runner (no simulator)."""
    forget_index()
    now = clock.now()
    with empty_engine.begin() as conn:
        ids = make_square_area(conn)
        dept = conn.execute(select(Department.id).where(Department.code == "D-CG")).scalar_one()
        users = {}
        for name, role, department in (
            ("leader", Role.TOWNSHIP_LEADER, None),
            ("handler", Role.DEPARTMENT, dept),
            ("inspector", Role.INSPECTOR, None),
            ("admin", Role.ADMIN, None),
        ):
            users[name] = conn.execute(
                insert(User).returning(User.id),
                {
                    "username": name,
                    "display_name": name,
                    "role": role,
                    "scope_unit_id": ids["990001001"] if role is not Role.ADMIN else ids["990000"],
                    "department_id": department,
                    "password_hash": hash_password("pass-word-1"),
                    "created_at": now,
                },
            ).scalar_one()
    # An ordinary matter, 72 h to handle, under a county's rule that supervises ordinary matters when
    # late instead of moving them up (the default moves every urgency up, decision 0027).
    with empty_engine.connect() as conn:
        dispatch, deadlines = load_rules(conn)
    auto = {**dispatch.escalation.auto, Urgency.NORMAL: False}
    save_rules(
        UnitOfWork(empty_engine),
        dispatch_json=replace(dispatch, escalation=replace(dispatch.escalation, auto=auto)).to_json(),
        deadlines_json=deadlines.to_json(),
        now=now - timedelta(days=5),
    )
    started = now - timedelta(days=4)
    late = _report(empty_engine, started, "井盖缺失", Urgency.NORMAL)
    for action in (Action.ACCEPT, Action.DISPATCH, Action.START):
        act(UnitOfWork(empty_engine), event_id=late, action=action, now=started, department_id=dept)
    yesterday = datetime.combine(now.date() - timedelta(days=1), time(10, 0))
    for k in range(5):
        _report(empty_engine, yesterday + timedelta(minutes=8 * k), "噪声扰民", Urgency.NORMAL)
    # The nightly 预警 pass is due at 00:30: run after it even between midnight and then (yesterday judged).
    run_at = max(now, datetime.combine(now.date(), time(0, 31)))
    done = run_due(UnitOfWork(empty_engine), run_at, reports=tmp_path)
    assert all(r.outcome == "ok" for r in done.values()), done
    monkeypatch.setenv("DATABASE_URL", empty_engine.url.render_as_string(hide_password=False))
    monkeypatch.setenv("REPORTS_DIR", str(tmp_path))
    return {"engine": empty_engine, "users": users, "late": late, "day": yesterday.date()}


def _open(square, who: str, path: str = "pages/events.py"):
    with session_factory(square["engine"])() as s:
        user = _current(s.get(User, square["users"][who]))
    at = page(path)
    at.session_state["current_user"] = user
    return at.run()


def test_the_township_leader_and_the_handling_department_see_the_reminder_and_an_inspector_no_view(square):
    seen = {}
    for who in ("leader", "handler"):
        at = _open(square, who)
        at.segmented_control(key="ev_view").set_value("督办提醒").run()
        assert not at.exception
        seen[who] = at.dataframe[0].value.set_index("事件编号")
    # The leader: every late event of the township (yesterday's reports wait for acceptance too);
    # the 城管 team: the one it handles.
    assert square["late"] in seen["leader"].index and len(seen["leader"]) == 6
    assert list(seen["handler"].index) == [square["late"]]
    row = seen["handler"].loc[square["late"]]
    assert (
        row["当前"].startswith("超期")
        and "请督促办理" in row["提醒内容"]
        and row["承办部门"] == "方城街道综合执法中队"
    )
    inspector = _open(square, "inspector")
    assert "督办提醒" not in inspector.segmented_control(key="ev_view").options


def test_the_warnings_tab_shows_the_stored_alerts_of_a_judged_day_without_recomputing(square):
    at = _open(square, "leader")
    at.segmented_control(key="ev_view").set_value("预警").run()
    at.date_input[0].set_value(square["day"]).run()
    assert not at.exception
    assert any("每日预警研判" in c.value for c in at.caption)
    table = at.dataframe[0].value
    assert "群发" in set(table["预警类型"])


def test_the_reports_tab_lists_the_scheduled_reports_of_the_scope_and_offers_one_to_download(square):
    at = _open(square, "leader")
    at.segmented_control(key="ev_view").set_value("报表").run()
    assert not at.exception
    listing = at.dataframe[0].value
    # The township's own reports only (not the county's or the city's); this week's 周报 and this month's 月报
    # are due already whatever day the test runs, so all three kinds are there.
    assert set(listing["区域"]) == {"方城街道"} and sorted(listing["报表"]) == ["周报", "日报", "月报"]
    assert at.get("download_button")  # the chosen report, ready to download


def test_the_admin_page_shows_the_nightly_audit_check_in_one_line(square):
    at = _open(square, "admin", "pages/admin.py")
    assert not at.exception
    assert any(c.value.startswith("审计链校验（") and "完整" in c.value for c in at.caption)
