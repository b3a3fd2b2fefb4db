"""The 报表 tab previews the workbook it offers for download; the 预警 tab reads in plain Chinese and
links each warning to its area on the 五色图."""

from sqlalchemy import select

from db.engine import session_factory
from db.models import Event
from services.auth import user_by_username
from tests.app.conftest import page


def _tab(engine, view: str):
    with session_factory(engine)() as s:
        user = user_by_username(s, "demo_township")
    at = page("pages/events.py")
    at.session_state["current_user"] = user
    at.run()
    at.segmented_control(key="ev_view").set_value(view).run()
    assert not at.exception
    return at


def test_a_generated_report_is_previewed_sheet_by_sheet_as_the_file_shows_it(store):
    at = _tab(store, "报表")
    at.radio[0].set_value("月报")
    at.button[0].click().run()  # 生成报表
    assert not at.exception
    assert [t.label for t in at.tabs][:4] == ["概况", "各区域", "各部门", "预警"]
    text = " ".join(m.value for m in at.markdown)
    assert "双港街道月报 · 各区域" in text
    areas = next(
        d.value
        for d in at.dataframe
        if "满意率环比" in d.value.columns and "投诉率(件/万人)" in d.value.columns
    )
    assert list(areas.columns)[:3] == ["排名", "名称", "事件数(N)"]
    shown = [v for v in areas["满意率"] if v]
    assert shown and all(v.endswith("%") for v in shown)
    assert all(v == "" or v.endswith("个百分点") for v in areas["满意率环比"])
    assert not any(str(v).startswith("'") for v in areas.to_numpy().ravel())
    # no blank rows past the sheet's end (the preview once padded every sheet to 200 rows)
    for frame in (d.value for d in at.dataframe):
        assert not (frame.astype(str) == "").all(axis=1).any()
    # an on-demand 月报 covers the day's calendar month from the 1st, as the scheduled one does
    overview = next(d.value for d in at.dataframe if list(d.value.columns) == ["项目", "数值"])
    period = overview.loc[overview["项目"] == "统计时段", "数值"].iloc[0]
    day = at.date_input[0].value
    assert period == f"{day:%Y-%m}-01 至 {day:%Y-%m-%d}"


def test_warnings_say_why_in_plain_chinese_with_a_map_link_each(store):
    at = _tab(store, "预警")
    frame = at.dataframe[0].value
    assert len(frame) > 0
    assert all(link.startswith("/risk_map?area=") for link in frame["地图"])
    assert not any("泊松" in m or "尾概率" in m for m in frame["依据"])


def test_a_leader_turns_a_warning_into_an_event_once_and_reads_its_number(store):
    at = _tab(store, "预警")
    assert at.button(key="warning_follow_up").label == "转督办"
    at.button(key="warning_follow_up").click().run()
    assert not at.exception
    said = [s.value for s in at.success]
    assert len(said) == 1 and said[0].startswith("已转督办：事件编号 ")
    number = said[0].split("事件编号 ")[1].split("，")[0]
    at.button(key="warning_follow_up").click().run()  # the same warning again: the same event
    assert [i.value for i in at.info] == [f"该预警已转督办：事件编号 {number}。"]
    with store.connect() as conn:
        title = conn.execute(select(Event.title).where(Event.id == int(number))).scalar_one()
    assert title.startswith("【预警转督办】")
