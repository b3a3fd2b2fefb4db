"""The home page under AppTest: the five levels' counts come from the store."""

import pytest
from sqlalchemy import insert, select

from db.models import AdminUnit, User
from db.uow import UnitOfWork
from domain.access import CurrentUser
from domain.vocabulary import EventCategory, EventSource, Role
from services import clock
from services.events import report_event
from services.locate import forget_index
from tests.app.conftest import page
from tests.builders import grid_centre, make_green_venue, make_square_area


@pytest.fixture
def square_store(empty_engine, monkeypatch):
    forget_index()
    with empty_engine.begin() as conn:
        make_square_area(conn)
        make_green_venue(conn)
    for i in range(3):
        report_event(
            UnitOfWork(empty_engine),
            source=EventSource.CITIZEN,
            category=EventCategory.URBAN,
            title="占道经营",
            lon=grid_centre(i)[0],
            lat=grid_centre(i)[1],
            now=clock.now(),
        )
    monkeypatch.setenv("DATABASE_URL", empty_engine.url.render_as_string(hide_password=False))
    return empty_engine


def _as(store, role: Role = Role.ADMIN, scope_code: str = "990000"):
    """The page as a user of ``role`` over ``scope_code``, who exists in the store (pages check the session)."""
    with store.begin() as conn:
        scope = conn.execute(select(AdminUnit.id).where(AdminUnit.code == scope_code)).scalar_one()
        uid = conn.execute(
            insert(User).values(
                username=f"t_{role.value}_{scope_code}",
                display_name="测试",
                role=role,
                scope_unit_id=scope,
                created_at=clock.now(),
            )
        ).inserted_primary_key[0]
    at = page("pages/home.py")
    at.session_state["current_user"] = CurrentUser(uid, f"t_{role.value}_{scope_code}", "测试", role, scope)
    return at


def _metrics(at) -> dict[str, str]:
    return {m.label: m.value for m in at.metric}


def test_home_page_counts_every_level_venues_and_todays_events(square_store):
    at = _as(square_store).run()
    assert not at.exception
    m = _metrics(at)
    assert (m["市数"], m["县(市、区)数"], m["乡镇(街道)数"], m["村(社区)数"], m["网格数"]) == (
        "1",
        "1",
        "1",
        "2",
        "4",
    )
    assert m["场所总数"] == "1" and m["事件总数"] == "3" and m["今日事件"] == "3"


def test_home_page_drills_down_to_the_chosen_grid(square_store):
    at = _as(square_store).run()
    with square_store.connect() as conn:
        west = conn.execute(select(AdminUnit.id).where(AdminUnit.name == "西村")).scalar_one()
    at.selectbox(key="home_village").set_value(west).run()
    table = at.table[0].value
    assert list(table.index) == ["市", "县(市、区)", "乡镇(街道)", "村(社区)", "网格"]
    assert table.loc["村(社区)", "单元"] == "西村"
    assert table.loc["村(社区)", "事件数"] == "1"  # grid 2 of the three reports lies in 西村


def test_home_page_on_an_empty_store_refuses_a_session_the_store_does_not_know(empty_engine, monkeypatch):
    monkeypatch.setenv("DATABASE_URL", empty_engine.url.render_as_string(hide_password=False))
    at = page("pages/home.py")
    at.session_state["current_user"] = CurrentUser(1, "t", "测试", Role.ADMIN, 1)
    at.run()
    assert not at.exception
    assert "请重新登录" in at.error[0].value
    assert not at.metric and "current_user" not in at.session_state


def test_a_village_scoped_user_sees_only_their_village(square_store):
    at = _as(square_store, Role.INSPECTOR, "990001001002").run()
    m = _metrics(at)
    assert m["村(社区)数"] == "1" and m["网格数"] == "2"
    assert "市数" not in m and "乡镇(街道)数" not in m  # no tiles for the levels above the user's own
    assert any("村-网格 二级联动" in c.value for c in at.caption)
    assert m["事件总数"] == "1"


def test_the_page_refuses_a_visitor_who_is_not_logged_in(square_store):
    at = page("pages/home.py").run()
    assert "请先登录" in at.error[0].value
    assert not at.metric
