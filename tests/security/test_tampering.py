"""Tampering: query parameters and session values set by hand find no out-of-scope data on any page, only a
logged denial or a fall-back to the user's own scope."""

from __future__ import annotations

import dataclasses

import pytest
from sqlalchemy import select

from db.models import AdminUnit
from db.uow import UnitOfWork
from domain.access import CurrentUser
from domain.vocabulary import Role
from tests.security.conftest import PAGES, PROBE, denied_pairs, open_page, shown_text


def _code(engine, unit_id: int) -> str:
    with engine.connect() as conn:
        return conn.execute(select(AdminUnit.code).where(AdminUnit.id == unit_id)).scalar_one()


def _name(engine, unit_id: int) -> str:
    with engine.connect() as conn:
        return conn.execute(select(AdminUnit.name).where(AdminUnit.id == unit_id)).scalar_one()


# ------------------------------------------------------------------------------------------ forged sessions


def _forgeries(users) -> dict[str, CurrentUser]:
    t = users["demo_township"]
    return {
        "role raised to admin": dataclasses.replace(t, role=Role.ADMIN),
        "scope widened to the city": dataclasses.replace(t, scope_unit_id=users["demo_city"].scope_unit_id),
        "another user's id": dataclasses.replace(users["demo_admin"], id=t.id),
        "an id nobody has": CurrentUser(
            10**8, "ghost", "幽灵", Role.ADMIN, users["demo_admin"].scope_unit_id
        ),
        "a department dropped": dataclasses.replace(
            users["demo_department"], department_id=None, role=Role.COMMAND_CENTER
        ),
    }


@pytest.mark.parametrize(
    "forgery",
    [
        "role raised to admin",
        "scope widened to the city",
        "another user's id",
        "an id nobody has",
        "a department dropped",
    ],
)
@pytest.mark.parametrize("key", [k for k in PAGES if k not in ("report", "big_screen")])
def test_a_forged_session_user_is_refused_on_every_page(spread_store, spread_users, caplog, key, forgery):
    user = _forgeries(spread_users)[forgery]
    at = open_page(key, user)
    assert not at.exception
    assert any("请重新登录" in e.value for e in at.error)
    assert not at.dataframe and not at.table and not at.metric
    assert "current_user" not in at.session_state  # the session is ended
    assert denied_pairs(caplog) == [(user.id, user.role.value, "session user", user.id)]


def test_a_forged_session_user_on_the_wall_screen_gets_the_login_form(spread_store, spread_users, caplog):
    user = _forgeries(spread_users)["role raised to admin"]
    at = open_page("big_screen", user)
    assert [t.label for t in at.text_input] == ["用户名", "密码"]
    assert "社会治理指挥大屏" not in shown_text(at)
    assert denied_pairs(caplog)[0][:3] == (user.id, "admin", "session user")


def test_a_forged_inspector_on_the_report_page_reports_as_a_citizen(spread_store, spread_users, caplog):
    user = dataclasses.replace(spread_users["demo_township"], role=Role.INSPECTOR)
    at = open_page("report", user)
    assert not at.exception
    assert at.title[0].value.startswith("随手拍")  # not 网格员上报: the forged role is not believed
    assert denied_pairs(caplog)[0][2] == "session user"


@pytest.mark.parametrize("key", [k for k in PAGES if k not in ("report", "big_screen")])
def test_something_that_is_not_a_user_in_the_session_is_refused(spread_store, caplog, key):
    at = open_page(key, None, state={"current_user": {"id": 1, "role": "admin", "scope_unit_id": 1}})
    assert any("请先登录" in e.value for e in at.error)
    assert not at.dataframe and not at.metric
    assert denied_pairs(caplog) and denied_pairs(caplog)[0][1] == "anonymous"


# ------------------------------------------------------------------------------------------ query parameters


@pytest.mark.parametrize(
    "username,target,allowed",
    [
        ("demo_township", "far", False),
        ("demo_township", "sibling", False),
        ("demo_township", "county", False),
        ("demo_county", "far", False),
        ("demo_county", "sibling", True),
        ("demo_city", "far", True),
    ],
)
def test_risk_map_area_parameter(spread_store, spread, spread_users, caplog, username, target, allowed):
    user = spread_users[username]
    unit = spread.units[{"county": "county"}.get(target, target)]
    at = open_page("risk_map", user, params={"area": _code(spread_store, unit)})
    assert not at.exception
    text = shown_text(at)
    if allowed:
        assert not at.error and f"{_name(spread_store, unit)}（" in text
        assert not denied_pairs(caplog)
    else:
        assert any("不在您的管辖范围内" in e.value for e in at.error)
        assert not at.dataframe and not at.table and not at.metric and not at.get("deck_gl_json_chart")
        assert _name(spread_store, unit) not in text and PROBE not in text
        assert denied_pairs(caplog) == [(user.id, user.role.value, "risk_map area", unit)]


def test_risk_map_unknown_area_falls_back_to_the_users_own(spread_store, spread, spread_users, caplog):
    at = open_page("risk_map", spread_users["demo_township"], params={"area": "no-such-code"})
    assert not at.exception and not at.error
    assert f"{_name(spread_store, spread.units['township'])}（" in shown_text(at)


@pytest.mark.parametrize("target,allowed", [("far", False), ("sibling", True), ("township", True)])
def test_big_screen_area_parameter(spread_store, spread, spread_users, caplog, target, allowed):
    user = spread_users["demo_county"]
    unit = spread.units[target]
    at = open_page("big_screen", user, params={"area": _code(spread_store, unit)})
    assert not at.exception
    text = shown_text(at)
    if allowed:
        assert f"{_name(spread_store, unit)} · 社会治理指挥大屏" in text
    else:
        assert any("不在此大屏的管辖范围内" in e.value for e in at.error)
        assert "社会治理指挥大屏" not in text and PROBE not in text
        assert denied_pairs(caplog) == [(user.id, user.role.value, "big_screen area", unit)]


def test_big_screen_with_a_made_up_token_shows_the_login_form(spread_store, caplog):
    at = open_page("big_screen", None, params={"token": "made-up", "area": "330800"})
    assert [t.label for t in at.text_input] == ["用户名", "密码"]
    assert "社会治理指挥大屏" not in shown_text(at)


@pytest.mark.parametrize("key", list(PAGES))
def test_event_and_venue_parameters_show_nothing_out_of_scope(spread_store, spread, spread_users, key):
    """Pages that do not read ?event= / ?venue= must not be led by them either."""
    user = spread_users["demo_township"] if key != "my_day" else spread_users["demo_inspector"]
    at = open_page(
        key,
        user,
        params={
            "event": str(spread.events["far"]),
            "venue": str(spread.venues["far"]),
            "area": _code(spread_store, spread.units["township"]),
        },
    )
    assert not at.exception
    assert PROBE + "事件-far" not in shown_text(at) and PROBE + "场所-far" not in shown_text(at)


# ------------------------------------------------------------------------------------------ session values


@pytest.mark.parametrize(
    "username,label,allowed",
    [
        ("demo_township", "far", False),
        ("demo_township", "sibling", False),
        ("demo_township", "covered", True),
        ("demo_county", "far", False),
        ("demo_county", "sibling", True),
        ("demo_department", "sibling", False),
        ("demo_department", "sibling_dept", True),
        ("demo_department", "far_dept", False),
        ("demo_inspector", "far", False),
    ],
)
def test_events_page_detail_of_a_chosen_event(
    spread_store, spread, spread_users, caplog, username, label, allowed
):
    user = spread_users[username]
    eid = spread.events[label]
    at = open_page("events", user, state={"ev_detail_id": eid})
    assert not at.exception
    text = shown_text(at)
    if allowed:
        assert f"#{eid} " in text
    else:
        assert any("不在您的管辖范围内" in w.value for w in at.warning)
        assert f"{PROBE}事件-{label}" not in text
        assert (user.id, user.role.value, "view event", eid) in denied_pairs(caplog)


def test_events_page_a_view_the_role_does_not_have_is_not_shown(spread_store, spread_users):
    at = open_page("events", spread_users["demo_township"], state={"ev_view": "规则"})
    assert "分拨规则" not in [t.label for t in at.text_area]
    assert not any("规则已保存" in s.value for s in at.success)


def test_inspections_page_scope_outside_falls_back_and_is_logged(spread_store, spread, spread_users, caplog):
    user = spread_users["demo_township"]
    at = open_page("inspections", user, state={"ins_scope": spread.units["far"]})
    assert not at.exception
    text = shown_text(at)
    # The far venue (red, overdue), the sibling township's and the far campaign stay out.
    for outside in (
        f"{PROBE}场所-far",
        f"{PROBE}场所-sibling",
        spread.campaign,
        _name(spread_store, spread.units["far"]),
    ):
        assert outside not in text
    assert f"{PROBE}场所-covered" in text  # the user's own scope is what is shown
    pairs = denied_pairs(caplog)
    assert all(p[:2] == (user.id, user.role.value) for p in pairs)


def test_inspections_page_lists_no_campaign_of_another_area(spread_store, spread, spread_users):
    at = open_page("inspections", spread_users["demo_county"])
    assert spread.campaign not in shown_text(at)
    at = open_page("inspections", spread_users["demo_city"])
    assert spread.campaign in shown_text(at)


@pytest.mark.parametrize("label", ["far", "uncovered", "sibling"])
def test_my_day_a_venue_forced_into_the_session_is_refused(spread_store, spread, spread_users, caplog, label):
    user = spread_users["demo_inspector"]
    vid = spread.venues[label]
    at = open_page("my_day", user, state={"md_venue": vid})
    assert not at.exception
    assert f"{PROBE}场所-{label}" not in shown_text(at)
    assert (user.id, "inspector", "my_day venue", vid) in denied_pairs(caplog)
    assert "md_venue" not in at.session_state


def test_my_day_an_inspector_forced_into_the_admins_choice_is_refused(spread_store, spread_users, caplog):
    user = spread_users["demo_admin"]
    at = open_page("my_day", user, state={"md_inspector": 10**8})
    assert not at.exception
    chosen = at.selectbox(key="md_inspector")
    from services.planning import inspectors_under

    with spread_store.connect() as conn:
        people = dict(inspectors_under(conn, user.scope_unit_id))
    assert chosen.value in people  # back to an inspector of the user's scope
    assert at.caption[-1].value == f"检查员：{people[chosen.value]}"


def test_home_a_unit_outside_scope_forced_into_the_drill_down_is_not_shown(
    spread_store, spread, spread_users
):
    user = spread_users["demo_township"]
    with spread_store.connect() as conn:
        village = conn.execute(
            select(AdminUnit.id).where(AdminUnit.parent_id == spread.units["far"])
        ).first()[0]
    at = open_page("home", user, state={"home_village": village})
    assert not at.exception
    assert _name(spread_store, village) not in shown_text(at)


def test_logging_out_forgets_what_the_pages_kept(spread_store, spread_users):
    """A feed kept in the session must not show the next person who logs in on the same browser."""
    from streamlit.testing.v1 import AppTest

    def _page():
        import streamlit as st

        from components.auth import logout

        st.session_state["feed_rows"] = "kept"
        if st.button("退出登录"):
            logout()
        st.write(str(sorted(st.session_state.to_dict())))

    at = AppTest.from_function(_page, default_timeout=30)
    at.session_state["current_user"] = spread_users["demo_township"]
    at.run()
    at.button[0].click().run()
    assert "current_user" not in at.session_state


def test_the_entry_script_shows_a_forged_session_the_login_form(spread_store, spread_users, caplog):
    from tests.app.conftest import page

    user = _forgeries(spread_users)["role raised to admin"]
    at = page("app.py")
    at.session_state["current_user"] = user
    at.run()
    assert [t.label for t in at.text_input] == ["用户名", "密码"]
    assert not at.sidebar.markdown  # no menu of the forged role
    assert denied_pairs(caplog)[0][:3] == (user.id, "admin", "session user")


def test_a_display_token_shows_its_own_area_only(spread_store, spread, caplog):
    """A wall screen's token stands for one area: ?area= of another is refused (logged), its own shown."""
    from services import clock
    from services.display import create_token

    township = _code(spread_store, spread.units["township"])
    token = create_token(UnitOfWork(spread_store), area_code=township, label="测试大屏", now=clock.now())
    at = open_page(
        "big_screen", None, params={"token": token, "area": _code(spread_store, spread.units["far"])}
    )
    assert any("不在此大屏的管辖范围内" in e.value for e in at.error)
    assert PROBE not in shown_text(at) and "社会治理指挥大屏" not in shown_text(at)
    assert denied_pairs(caplog) == [(0, "command_center", "big_screen area", spread.units["far"])]
    at = open_page("big_screen", None, params={"token": token, "area": township})
    assert f"{_name(spread_store, spread.units['township'])} · 社会治理指挥大屏" in shown_text(at)
