"""Every page on an own-area store whose top unit is a county, or a township (no city above it): each role opens
each page it may open, with data in the store, and no page raises (the tree's NA crash of issue #11 gone)."""

from __future__ import annotations

from datetime import datetime

import pytest
from sqlalchemy import insert, select

from components.auth import WITHOUT_AREA
from db.engine import make_engine
from db.migrate import upgrade
from db.models import AdminUnit, Department, User, Venue
from db.uow import UnitOfWork
from domain.access import PAGE_ROLES, CurrentUser
from domain.vocabulary import AdminLevel, EventCategory, EventSource, Role
from geo.boundaries import PARENT_NONE, ParentChoice
from services import clock
from services.boundaries import import_boundaries
from services.events import report_event
from services.locate import forget_index, locate_grid
from tests import own_area
from tests.app.conftest import page

# 进度查询 (track) is the citizens' page: it holds no area and links to 随手拍, which only the app's own
# navigation resolves (its tests run it through app.py).
PAGES = sorted(set(PAGE_ROLES) - {"track"})


def _own_store(url: str, tmp_path, which: str) -> dict[Role, CurrentUser]:
    """The area imported (no parent above its top unit), an event and a venue in it, one account per role."""
    engine = make_engine(url)
    upgrade(engine)
    forget_index()
    source = (
        own_area.county_geojson(tmp_path / "county.json")
        if which == "county"
        else own_area.township_geojson(tmp_path / "township.json")
    )
    result = import_boundaries(UnitOfWork(engine), source, parent=ParentChoice(PARENT_NONE), seed=2)
    assert result.ok, result.errors
    point = own_area.ON_MAINLAND if which == "county" else (121.83, 29.0)
    report_event(
        UnitOfWork(engine),
        source=EventSource.CITIZEN,
        category=EventCategory.URBAN,
        title="占道经营",
        lon=point[0],
        lat=point[1],
        now=clock.now(),
    )
    users: dict[Role, CurrentUser] = {}
    with engine.begin() as conn:
        top = conn.execute(select(AdminUnit.id).where(AdminUnit.parent_id.is_(None))).scalar_one()
        township = (
            conn.execute(
                select(AdminUnit.id).where(AdminUnit.level == AdminLevel.TOWNSHIP).order_by(AdminUnit.code)
            )
            .scalars()
            .first()
        )
        conn.execute(
            insert(Venue),
            {
                "code": "V-OWN",
                "name": "海湾小卖部",
                "category": "street_shop",
                "address": "海湾路1号",
                "lon": point[0],
                "lat": point[1],
                "grid_id": locate_grid(conn, *point),
                "safety_code": "yellow",
                "responsible_person": "林某",
                "created_at": datetime(2026, 1, 1),
            },
        )
        dept = conn.execute(
            insert(Department).returning(Department.id),
            {"code": "D-OWN", "name": "海湾综合执法", "kind": "城管", "unit_id": top},
        ).scalar_one()
        for role, scope in (
            (Role.ADMIN, top),
            (Role.COMMAND_CENTER, top),
            (Role.TOWNSHIP_LEADER, township),
            (Role.DEPARTMENT, top),
            (Role.INSPECTOR, township),
        ):
            department = dept if role is Role.DEPARTMENT else None
            uid = conn.execute(
                insert(User).returning(User.id),
                {
                    "username": f"own_{role.value}",
                    "display_name": role.label,
                    "role": role,
                    "scope_unit_id": scope,
                    "department_id": department,
                    "created_at": clock.now(),
                },
            ).scalar_one()
            users[role] = CurrentUser(uid, f"own_{role.value}", role.label, role, scope, department)
    engine.dispose()
    return users


@pytest.fixture(scope="module", params=["county", "township"])
def own_store(request, new_store_url, tmp_path_factory):
    url = new_store_url()
    users = _own_store(url, tmp_path_factory.mktemp(request.param), request.param)
    engine = make_engine(url)
    with engine.connect() as conn:
        top_level = conn.execute(select(AdminUnit.level).where(AdminUnit.parent_id.is_(None))).scalar_one()
    engine.dispose()
    assert AdminLevel(top_level).value == request.param
    return url, users


@pytest.mark.parametrize("role", list(Role), ids=lambda r: r.value)
def test_every_page_a_role_may_open_runs_without_an_exception_on_an_own_area_store(
    own_store, monkeypatch, role
):
    url, users = own_store
    monkeypatch.setenv("DATABASE_URL", url)
    forget_index()
    user = users[role]
    opened = []
    for key in PAGES:
        if not user.may_open(key):
            continue
        at = page(f"pages/{key}.py")
        at.session_state["current_user"] = user
        at.run()
        assert not at.exception, (key, [e.value for e in at.exception])
        opened.append(key)
    assert "home" in opened and "events" in opened


def test_before_the_first_import_the_first_administrator_opens_every_page_without_an_exception(
    new_store_url, monkeypatch
):
    """``make store DEMO=0``: only the placeholder unit and the first administrator, nothing else yet."""
    from demo.bootstrap import ensure_store
    from services.accounts import create_first_admin

    url = new_store_url()
    engine = make_engine(url)
    ensure_store(engine, demo=False)
    admin = create_first_admin(
        UnitOfWork(engine),
        username="first_admin",
        display_name="首位管理员",
        password="admin-pass-1",
        repeat="admin-pass-1",
        now=clock.now(),
    )
    engine.dispose()
    monkeypatch.setenv("DATABASE_URL", url)
    forget_index()
    for key in PAGES:
        at = page(f"pages/{key}.py")
        at.session_state["current_user"] = admin
        at.run()
        assert not at.exception, (key, [e.value for e in at.exception])
        if key not in WITHOUT_AREA:  # no map of the placeholder's empty outline (a NaN centre): a pointer
            assert any("尚未导入区划" in i.value for i in at.info), key
            assert not at.get("deck_gl_json_chart"), key


@pytest.mark.parametrize("own_store", ["county"], indirect=True)  # several townships, one with the event
def test_a_township_without_events_opens_its_event_flow_without_a_warning_or_a_denial(
    own_store, monkeypatch, caplog
):
    """The detail box fell back to event #1, another township's: a warning and a logged denial on every
    run for every township on its first day."""
    import logging

    from db.models import Event

    url, _ = own_store
    engine = make_engine(url)
    with engine.begin() as conn:
        busy = set(conn.execute(select(Event.grid_id)).scalars())
        townships = conn.execute(select(AdminUnit.id).where(AdminUnit.level == AdminLevel.TOWNSHIP)).scalars()
        from services.geography import tree

        units = tree(conn)
        quiet = next(t for t in townships if not busy & set(units.grids_under(t)))
        uid = conn.execute(
            insert(User).returning(User.id),
            {
                "username": f"quiet_{quiet}",
                "display_name": "乡镇领导",
                "role": Role.TOWNSHIP_LEADER,
                "scope_unit_id": quiet,
                "created_at": clock.now(),
            },
        ).scalar_one()
    engine.dispose()
    monkeypatch.setenv("DATABASE_URL", url)
    forget_index()
    at = page("pages/events.py")
    at.session_state["current_user"] = CurrentUser(
        uid, f"quiet_{quiet}", "乡镇领导", Role.TOWNSHIP_LEADER, quiet
    )
    with caplog.at_level(logging.WARNING, logger="access"):
        at.run()
    assert not at.exception
    assert not at.warning
    assert any("暂无事件" in i.value for i in at.info)
    assert not [r for r in caplog.records if r.name == "access"]
