"""Shared helpers of the access tests: the demo accounts as the services see them, pages opened as them."""

from __future__ import annotations

import logging
from dataclasses import dataclass

import pytest
from sqlalchemy import select

from db.engine import make_engine, session_factory
from db.models import User
from domain.access import CurrentUser
from services.auth import _current
from tests.app.conftest import page, store  # noqa: F401 (store: the pages' view of the shared demo store)

DEMO = ["demo_admin", "demo_city", "demo_county", "demo_township", "demo_department", "demo_inspector"]
ANONYMOUS = "anonymous"
PAGES = {
    "home": "pages/home.py",
    "risk_map": "pages/risk_map.py",
    "events": "pages/events.py",
    "report": "pages/report.py",
    "inspections": "pages/inspections.py",
    "my_day": "pages/my_day.py",
    "big_screen": "pages/big_screen.py",
    "admin": "pages/admin.py",
    "boundaries": "pages/boundaries.py",
}


@pytest.fixture(scope="session")
def demo_users(seeded_store_url) -> dict[str, CurrentUser]:
    """The six demo accounts of the tiny demo store."""
    engine = make_engine(seeded_store_url)
    with session_factory(engine)() as s:
        rows = s.execute(select(User).where(User.username.in_(DEMO))).scalars().all()
        users = {u.username: _current(u) for u in rows}
    engine.dispose()
    assert set(users) == set(DEMO)
    return users


def open_page(key: str, user: CurrentUser | None, *, params: dict | None = None, state: dict | None = None):
    """Run page ``key`` as ``user`` (None: a visitor), with query parameters and session values set first."""
    at = page(PAGES[key])
    if user is not None:
        at.session_state["current_user"] = user
    for k, v in (state or {}).items():
        at.session_state[k] = v
    for k, v in (params or {}).items():
        at.query_params[k] = v
    return at.run()


def denials(caplog) -> list[logging.LogRecord]:
    """The denials logged on the ``access`` logger."""
    return [r for r in caplog.records if r.name == "access" and r.getMessage().startswith("denied")]


def denied_pairs(caplog) -> list[tuple]:
    """(user id, role, what, object id) of each logged denial."""
    return [
        (
            getattr(r, "user_id", None),
            getattr(r, "role", None),
            getattr(r, "what", None),
            getattr(r, "object_id", None),
        )
        for r in denials(caplog)
    ]


def shown_text(at) -> str:
    """Every text the page put on screen (titles, markdown, captions, alerts, tables), as one string."""
    parts: list[str] = []
    for kind in (
        "title",
        "header",
        "subheader",
        "markdown",
        "caption",
        "text",
        "error",
        "warning",
        "info",
        "success",
        "metric",
    ):
        for el in getattr(at, kind):
            parts.append(str(getattr(el, "value", "")))
            parts.append(str(getattr(el, "label", "")))
    for df in at.dataframe:
        parts.append(df.value.to_csv())
    for t in at.table:
        parts.append(t.value.to_csv())
    return "\n".join(parts)


# ----------------------------------------------------------------------------------------------------
# A second tiny demo with objects spread outside the demo township, to show they stay out of sight
# ----------------------------------------------------------------------------------------------------

PROBE = "越权探针"  # in the title or name of every object planted outside a user's scope


@dataclass
class Spread:
    """The store and the planted objects: label → id."""

    url: str
    units: dict[str, int]
    grids: dict[str, int]
    events: dict[str, int]
    venues: dict[str, int]
    campaign: str


def _centre(conn, unit_id: int) -> tuple[float, float]:
    from db.models import AdminUnit

    return tuple(
        conn.execute(
            select(AdminUnit.centroid_lon, AdminUnit.centroid_lat).where(AdminUnit.id == unit_id)
        ).one()
    )


def _first_grid(conn, unit_id: int, skip: set[int] = frozenset()) -> int:
    from services.geography import tree as store_tree

    return next(g for g in store_tree(conn).grids_under(unit_id) if g not in skip)


@pytest.fixture(scope="session")
def spread(new_store_url) -> Spread:
    """A tiny demo store, plus events, venues and a campaign in another township of the demo county,
    in a township of another county, and in a grid of the demo township no demo inspector covers."""
    from datetime import timedelta

    from db.models import AdminUnit, EventCooperator, InspectorGrid, Venue
    from db.uow import UnitOfWork
    from demo.seed import seed
    from domain.event_flow import Action
    from domain.vocabulary import AdminLevel, EventCategory, EventSource, SafetyCode, VenueCategory
    from services import clock
    from services.events import act, report_event
    from services.planning_settings import add_campaign

    url = new_store_url()
    engine = make_engine(url)
    seed(engine, scale="tiny", seed=1, until=clock.today(), manifest_dir=None)
    now = clock.now()
    with session_factory(engine)() as s:
        conn = s.connection()
        users = {
            u.username: _current(u) for u in s.execute(select(User).where(User.username.in_(DEMO))).scalars()
        }
        township = users["demo_township"].scope_unit_id
        county = users["demo_county"].scope_unit_id
        dept = users["demo_department"].department_id
        townships = conn.execute(
            select(AdminUnit.id, AdminUnit.parent_id)
            .where(AdminUnit.level == AdminLevel.TOWNSHIP)
            .order_by(AdminUnit.id)
        ).all()
        sibling = next(t for t, p in townships if p == county and t != township)
        far = next(t for t, p in townships if p != county)
        covered = set(
            conn.execute(
                select(InspectorGrid.grid_id).where(InspectorGrid.user_id == users["demo_inspector"].id)
            ).scalars()
        )
        units = {
            "township": township,
            "county": county,
            "sibling": sibling,
            "far": far,
            "far_county": dict(townships)[far],
        }
        grids = {
            "sibling": _first_grid(conn, sibling),
            "far": _first_grid(conn, far),
            "uncovered": _first_grid(conn, township, covered),
            "covered": min(covered),
        }
        centres = {label: _centre(conn, grid) for label, grid in grids.items()}

    def reported(label: str, title: str, **contact) -> int:
        """An event reported at the centre of grid ``label``, through the use case."""
        lon, lat = centres[label]
        e = report_event(
            UnitOfWork(engine),
            source=EventSource.HOTLINE_12345,
            category=EventCategory.URBAN,
            title=title,
            lon=lon,
            lat=lat,
            now=now,
            **contact,
        )
        assert e.grid_id == grids[label]  # the grid centroid lies in its grid
        return e.id

    def moved(eid: int, department_id: int) -> None:
        act(UnitOfWork(engine), event_id=eid, action=Action.ACCEPT, now=now)
        act(UnitOfWork(engine), event_id=eid, action=Action.DISPATCH, now=now, department_id=department_id)

    events: dict[str, int] = {
        label: reported(label, f"{PROBE}事件-{label}", reporter_name="王小明", reporter_phone="13812345678")
        for label in grids
    }
    # Events dispatched to the demo department: in its county (visible), in another county (not).
    for label in ("sibling", "far"):
        events[f"{label}_dept"] = reported(label, f"{PROBE}派本部门事件-{label}")
        moved(events[f"{label}_dept"], dept)
    # An event of the demo township led by another department, the demo one cooperating.
    events["cooperating"] = reported("covered", "协办事件")
    moved(events["cooperating"], dept + 1)
    # Test data, planted like the demo seed's: no audit rows needed.
    venues: dict[str, int] = {}
    with session_factory(engine).begin() as s:
        s.add(EventCooperator(event_id=events["cooperating"], department_id=dept))
        for label, grid in grids.items():
            lon, lat = centres[label]
            v = Venue(
                code=f"PROBE-{label}",
                name=f"{PROBE}场所-{label}",
                category=VenueCategory.STREET_SHOP,
                address="测试地址",
                lon=lon,
                lat=lat,
                grid_id=grid,
                safety_code=SafetyCode.RED,
                responsible_person="李四",
                responsible_phone="13900001111",
                last_inspected_on=now.date(),
                next_due_on=now.date() - timedelta(days=3),
                created_at=now,
            )
            s.add(v)
            s.flush()
            venues[label] = v.id
    campaign = add_campaign(
        UnitOfWork(engine),
        user=users["demo_admin"],
        name=f"{PROBE}专项整治",
        category="street_shop",
        area_ids=[far],
        start=now.date(),
        end=now.date() + timedelta(days=30),
        every_days=7,
        now=now,
    )
    engine.dispose()
    return Spread(url, units, grids, events, venues, campaign.name)


@pytest.fixture
def spread_store(spread, monkeypatch):
    """The spread store as the pages see it (DATABASE_URL)."""
    monkeypatch.setenv("DATABASE_URL", spread.url)
    engine = make_engine(spread.url)
    yield engine
    engine.dispose()


@pytest.fixture(scope="session")
def spread_users(spread) -> dict[str, CurrentUser]:
    engine = make_engine(spread.url)
    with session_factory(engine)() as s:
        users = {
            u.username: _current(u) for u in s.execute(select(User).where(User.username.in_(DEMO))).scalars()
        }
    engine.dispose()
    return users
