"""平安检查 under AppTest: plan, load, overdue, codes, rates, campaigns, proposals, import section, refusal.

Writes to the shared demo store are settings the tests remove again (a campaign in the future,
reassignments of a day a week ahead).
"""

from __future__ import annotations

from datetime import timedelta

import pytest

from db.engine import session_factory
from db.uow import UnitOfWork
from services import clock
from services.auth import user_by_username
from services.planning_settings import (
    CAPACITY_KEY,
    clear_reassignments,
    load_campaigns,
    load_capacity,
    load_reassignments,
)
from tests.app.conftest import page


def _open(engine, username: str):
    with session_factory(engine)() as s:
        user = user_by_username(s, username)
    at = page("pages/inspections.py")
    at.session_state["current_user"] = user
    at.run()
    return at


def test_the_township_leader_sees_plan_load_overdue_codes_and_rates(store):
    at = _open(store, "demo_township")
    assert not at.exception
    assert [m.label for m in at.metric] == ["今日计划检查", "未排入", "调配建议", "红码场所"]
    assert int(at.metric[0].value.replace(",", "")) > 0
    assert [t.label for t in at.tabs] == [
        "检查计划",
        "30天负荷",
        "逾期清单",
        "平安码分布",
        "按时检查率",
        "专项整治",
        "场所导入",
        "隐患预测",
    ]
    plan = at.dataframe[0].value
    assert list(plan.columns) == [
        "检查员",
        "计划检查",
        "今日已检查",
        "剩余容量",
        "红码",
        "路线长度（公里）",
        "未排入",
    ]
    assert len(plan) == 10  # the demo town's ten inspectors
    with store.connect() as conn, session_factory(store)() as s:
        capacity = load_capacity(conn)
        names = {user_by_username(s, "demo_inspector").display_name: user_by_username(s, "demo_inspector").id}
    for _, row in plan.iterrows():  # each within its own capacity (the suite gives the demo inspector more)
        assert (
            row["计划检查"] + row["今日已检查"] <= capacity.of(names.get(row["检查员"], -1))
            or row["计划检查"] == 0
        )
    assert len(at.get("vega_lite_chart")) == 2  # the red trend and the yellow/green trend
    rates = next(d.value for d in at.dataframe if "按时率" in d.value.columns)
    assert rates.iloc[0]["区域"] == "合计" and rates["按时率"].str.endswith("%").all()
    assert {b.proto.label for b in at.get("download_button")} >= {"导出计划（CSV）", "下载导入模板（CSV）"}


def test_a_city_user_can_narrow_the_scope_to_a_township(store):
    at = _open(store, "demo_city")
    assert not at.exception
    scope = at.selectbox(key="ins_scope")
    assert len(scope.options) > 1  # the city itself and its townships
    assert scope.options[0] == "衢州市"
    with session_factory(store)() as s:
        township = user_by_username(s, "demo_township").scope_unit_id
    scope.set_value(township).run()
    assert not at.exception
    assert at.title[0].value == "平安检查"
    assert len(at.dataframe[0].value) == 10  # the demo town's inspectors only


def test_campaign_form_validates_in_chinese_then_saves_and_deletes(store):
    at = _open(store, "demo_township")
    at.button(key="FormSubmitter:ins_campaign-保存专项整治").click().run()
    errors = [e.value for e in at.error]
    assert "名称：请填写专项整治名称" in errors and "场所类别：请选择场所类别" in errors
    assert "区域：请至少选择一个村（社区）或乡镇（街道）" in errors
    today = clock.today()
    form_date = at.date_input
    at.text_input[0].input("测试：电动车充电专项整治")
    cat = next(s for s in at.selectbox if s.label == "场所类别")
    cat.set_value("rental_housing")
    at.multiselect[0].select(at.session_state["current_user"].scope_unit_id)
    next(d for d in form_date if d.label == "开始日期").set_value(today + timedelta(days=20))
    next(d for d in form_date if d.label == "结束日期").set_value(today + timedelta(days=25))
    at.button(key="FormSubmitter:ins_campaign-保存专项整治").click().run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    with store.connect() as conn:
        assert "测试：电动车充电专项整治" in [c.name for c in load_campaigns(conn)]
    at.selectbox(key="ins_campaign_del").set_value("测试：电动车充电专项整治").run()
    at.button(key="ins_campaign_del_btn").click().run()
    with store.connect() as conn:
        assert "测试：电动车充电专项整治" not in [c.name for c in load_campaigns(conn)]


@pytest.fixture
def overloaded_inspector(store):
    """The demo inspector may make one visit a day (everyone else the default): their day overflows and
    the planner proposes moving visits to colleagues with room. The capacity is put back afterwards."""
    import json

    from services import settings

    with store.connect() as conn:
        before = settings.read(conn, CAPACITY_KEY)
        uid = user_by_username(conn, "demo_inspector").id
        default = load_capacity(conn).default
    with store.begin() as conn:  # test set-up, as an administrator's setting would be
        settings.write(
            conn, CAPACITY_KEY, json.dumps({"default": default, "inspectors": {str(uid): 1}}), clock.now()
        )
    try:
        yield uid
    finally:
        with store.begin() as conn:
            settings.write(conn, CAPACITY_KEY, before or json.dumps(default), clock.now())


def test_accepting_a_proposal_stores_the_reassignment_for_that_day(store, overloaded_inspector):
    day = clock.today() + timedelta(days=7)
    at = _open(store, "demo_township")
    at.date_input(key="ins_day").set_value(day).run()
    accept = [b for b in at.button if b.key and b.key.startswith("ins_accept_") and b.key != "ins_accept_all"]
    assert accept, "an inspector with room for one visit a day leaves visits to propose"
    venue_id = int(accept[0].key.rsplit("_", 1)[1])
    try:
        accept[0].click().run()
        assert not at.exception
        with store.connect() as conn:
            assert venue_id in load_reassignments(conn, day)
        assert any("已采纳调配 1 处" in i.value for i in at.info)
    finally:
        clear_reassignments(UnitOfWork(store), day=day, now=clock.now())


def test_an_inspector_is_refused(store):
    at = _open(store, "demo_inspector")
    assert "无权访问" in at.error[0].value
    assert not at.metric


def test_a_command_centre_user_does_not_get_the_import_form(store):
    at = _open(store, "demo_county")
    assert not at.exception
    assert any("场所导入由系统管理员或乡镇（街道）领导操作" in i.value for i in at.info)
    assert not [b for b in at.get("download_button") if b.proto.label == "下载导入模板（CSV）"]


def test_capacity_the_admin_sets_the_default_and_a_leader_sees_only_their_inspectors(store):
    """每日检查容量 on the page: the administrator gets the default's box; a leader only their inspectors'
    table, and saving it unchanged writes nothing."""
    from services.planning_settings import load_capacity

    with store.connect() as conn:
        before = load_capacity(conn)
    admin = _open(store, "demo_admin")
    assert not admin.exception
    box = admin.number_input(key="ins_cap_default")
    assert box.value == before.default
    leader = _open(store, "demo_township")
    assert not leader.exception
    assert not [n for n in leader.number_input if n.key == "ins_cap_default"]
    leader.button(key="ins_cap_save").click().run()  # nothing changed: nothing written, no error
    assert not leader.exception and not leader.error
    with store.connect() as conn:
        assert load_capacity(conn) == before


def test_the_code_trends_write_dates_as_11_21_not_in_english():
    """平安码分布's 90-day charts: Vega's default axis wrote "Sep 06", "November"."""
    import json
    from datetime import date, timedelta

    import pandas as pd

    from components.inspection_tables import trend, trend_chart
    from domain.vocabulary import SafetyCode

    days = pd.Index([date(2026, 11, 1) + timedelta(days=i) for i in range(3)], name="day")
    frame = pd.DataFrame({"red": [1, 2, 3], "yellow": [4, 5, 6], "green": [7, 8, 9]}, index=days)
    spec = json.dumps(
        trend_chart(trend(frame, [SafetyCode.RED]), [SafetyCode.RED], "红码场所数").to_dict(),
        ensure_ascii=False,
    )
    assert '"format": "%m-%d"' in spec and "红码" in spec
