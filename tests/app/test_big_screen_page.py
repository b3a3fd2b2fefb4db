"""The wall screen under AppTest: a display token opens it read-only; a revoked one does not."""

import json
import re
from datetime import datetime

from sqlalchemy import select

from db.models import AdminUnit, Event
from db.uow import UnitOfWork
from domain.intake import ReportForm
from domain.vocabulary import EventCategory, EventSource
from services import clock
from services.display import create_token, list_tokens, revoke_token, rotation_index
from services.intake import submit_report
from tests.app.conftest import page


def _screen(token: str | None, area: str = "330802001"):
    at = page("pages/big_screen.py")
    if token:
        at.query_params["token"] = token
    at.query_params["area"] = area
    return at.run()


def test_a_display_token_opens_every_panel_without_a_login(store):
    token = create_token(UnitOfWork(store), area_code="330802", label="柯城区指挥大厅", now=clock.now())
    at = _screen(token)
    assert not at.exception
    html = " ".join(m.value for m in at.markdown)
    for panel in ("bs-kpis", "bs-map", "bs-trend", "bs-categories", "bs-sources", "bs-flow", "bs-ticker"):
        assert panel in html
    for panel in ("bs-alerts", "bs-rank"):
        assert panel in html
    assert "今日事件" in html and "红码场所" in html
    assert at.get("deck_gl_json_chart")


def _reported_today(engine) -> None:
    """A 随手拍 report in 柯城区 now, so that today's charts have a bar whatever the hour (before 08:00
    China time the demo store may hold none of today yet)."""
    with engine.connect() as conn:
        lon, lat = conn.execute(
            select(Event.lon, Event.lat)
            .join(AdminUnit, AdminUnit.id == Event.grid_id)
            .where(AdminUnit.code.startswith("330802"))
            .order_by(Event.id)
        ).first()
    form = ReportForm(
        category=EventCategory.URBAN.value, title="路灯不亮", description="夜里看不见路", lon=lon, lat=lat
    )
    submit_report(UnitOfWork(engine), form, now=clock.now(), source=EventSource.CITIZEN)


def test_the_wall_map_names_its_areas_and_shows_live_events_and_alarms(store):
    _reported_today(store)
    token = create_token(UnitOfWork(store), area_code="330802", label="柯城区指挥大厅", now=clock.now())
    at = page("pages/big_screen.py")
    at.query_params.update({"token": token, "area": "330802", "vw": "3840", "vh": "2160"})
    at.run()
    assert not at.exception
    deck = json.loads(at.get("deck_gl_json_chart")[0].proto.json)
    layers = {layer["id"]: layer for layer in deck["layers"]}
    assert {"areas", "wall_names", "wall_events"} <= set(layers)
    assert "双港街道" in {d["t"] for d in layers["wall_names"]["data"]}
    assert layers["wall_names"]["getSize"] == 36.0  # 18 px at 1920 wide, twice that on a 4K wall
    assert len(layers["wall_events"]["data"]) > 0
    html = " ".join(m.value for m in at.markdown)
    n_alerts = int(re.search(r"预警 · (\d+) 条", html).group(1))
    assert ("wall_alarms" in layers) == (n_alerts > 0)
    # Charts speak Chinese: hours as 时, categories and sources by their labels.
    assert "0时" in html and "城镇管理" in html and "随手拍" in html
    assert "…" not in html and "泊松" not in html


def test_a_revoked_token_shows_the_login_form_instead(store):
    token = create_token(UnitOfWork(store), area_code="330802", label="临时大屏", now=clock.now())
    with store.connect() as conn:
        token_id = next(t["id"] for t in list_tokens(conn) if t["label"] == "临时大屏")
    assert not revoke_token(UnitOfWork(store), "", clock.now())  # an empty id matches nothing
    assert revoke_token(UnitOfWork(store), token_id, clock.now())
    at = _screen(token)
    assert [t.label for t in at.text_input] == ["用户名", "密码"]
    assert not at.get("deck_gl_json_chart")
    assert any("大屏令牌无效或已被吊销" in w.value for w in at.warning)  # nobody at a wall's keyboard


def test_a_token_cannot_show_an_area_outside_its_own(store):
    token = create_token(UnitOfWork(store), area_code="330802001", label="双港街道大屏", now=clock.now())
    at = _screen(token, area="330881")
    assert "不在此大屏的管辖范围内" in at.error[0].value


def test_the_playlist_keeps_its_place_by_the_clock():
    t = datetime(2026, 11, 22, 9, 0, 0)
    assert rotation_index(t, 30, 6) == rotation_index(t.replace(second=29), 30, 6)
    assert rotation_index(t.replace(second=30), 30, 6) == (rotation_index(t, 30, 6) + 1) % 6


def test_a_mistyped_screen_url_shows_the_wall_with_its_defaults(store):
    """?refresh=abc or ?vw=inf (a hand-edited bookmark) used to end in an incident page."""
    token = create_token(UnitOfWork(store), area_code="330802", label="柯城区指挥大厅", now=clock.now())
    at = page("pages/big_screen.py")
    at.query_params.update(
        {"token": token, "area": "330802", "refresh": "abc", "rotate": "1e999", "vw": "inf", "vh": "nan"}
    )
    at.run()
    assert not at.exception
    html = " ".join(m.value for m in at.markdown)
    assert "bs-kpis" in html and "系统出现意外错误" not in html


def test_wall_numbers_from_the_url_fall_back_to_their_defaults():
    from components.wall import int_param

    assert int_param("30", 10, 1, 3600) == 30 and int_param("99999", 10, 1, 3600) == 3600
    assert [int_param(v, 10, 1, 3600) for v in (None, "", "abc", "inf", "-inf", "1e999", "nan")] == [10] * 7
    assert int_param("0", 10, 1, 3600) == 1 and int_param("2.9", 10, 1, 3600) == 2


def test_a_citizen_s_title_cannot_end_the_wall_s_html_and_write_markdown_on_it():
    """A title with blank lines ended the wall's HTML block: a heading, a link and an image fetched from
    another host were drawn on the screen (found by a probe over the websocket)."""
    import pandas as pd

    from components.wall import Screen, esc, left_column
    from services.wall import WallDay

    hostile = (
        "井盖缺失\n\n# ⚠ 大屏已被接管\n\n![x](https://evil.example/b.png)\r\n\r\n[点我](https://evil.example)"
    )
    ticker = pd.DataFrame(
        {"updated_at": [pd.Timestamp("2026-11-21 09:00")], "title": [hostile], "status_label": ["已上报"]}
    )
    day = WallDay([0] * 24, [0] * 24, 9, {"城镇管理": 1}, {"随手拍": 1})
    html = left_column(day, ticker, Screen(1920, 1080))
    assert "\n" not in html and "\r" not in html
    assert (
        esc(hostile)
        == "井盖缺失 # ⚠ 大屏已被接管 ![x](https://evil.example/b.png) [点我](https://evil.example)"
    )


def test_the_wall_ranks_only_areas_with_a_score_and_lists_the_others_unranked():
    """风险排名 gave places 2–6 to townships without data (暂无数据)."""
    from components.wall import Screen, right_column

    html_text = right_column(
        {"村(社区)": 1},
        [],
        [("甲镇", "#2e7d32", "49"), ("乙镇", "#9e9e9e", "暂无数据")],
        "乡镇(街道)",
        Screen(1920, 1080),
    )
    assert "1. 甲镇" in html_text and "乙镇" in html_text and "2. 乙镇" not in html_text
