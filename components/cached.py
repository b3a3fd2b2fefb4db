"""The pages' read cache: risk frames, the 平安检查 plan and reports, 预警; one TTL table, one key scheme.

Keys are the store's URL and the read's arguments; the user rides along unhashed (``_user``) because
the page has checked the area against the user's scope on this run before it asks (the services check
again on a miss). A page calls :func:`clear_after_write` after a successful write.
"""

from __future__ import annotations

import threading
import time
from datetime import date, datetime

import pandas as pd
import streamlit as st

from components import store
from domain.access import CurrentUser
from domain.risk import Thresholds
from services import clock
from services.access import Scope
from services.analytics import warnings
from services.audit import written_since
from services.inspection_reports import Forecast, code_distribution, code_trend, load_forecast, on_time_rates
from services.planning import PlanView, plan_for
from services.risk import area_risk, load_model
from services.risk_map import event_frame, venue_frame
from services.wall import WallDay, live_points, wall_day

#: Seconds each read is kept: the plan moves with every recorded inspection, the reports slowly.
TTL = {"plan": 30, "forecast": 120, "codes": 120, "rates": 300, "risk": 60, "alerts": 600, "wall": 5}


def _url() -> str:
    return str(store.engine().url)


@st.cache_data(ttl=TTL["plan"], show_spinner="正在编排检查计划…")
def _plan(url: str, day: date, scope: int, _user: CurrentUser) -> PlanView:
    with store.reader() as conn:
        return plan_for(conn, day, scope, user=_user)


@st.cache_data(ttl=TTL["forecast"], show_spinner="正在推算负荷…")
def _forecast(url: str, start: date, scope: int, _user: CurrentUser) -> Forecast:
    with store.reader() as conn:
        return load_forecast(conn, start, scope, user=_user)


@st.cache_data(ttl=TTL["codes"], show_spinner=False)
def _codes(url: str, today: date, scope: int, _user: CurrentUser) -> tuple[dict[str, int], pd.DataFrame]:
    with store.reader() as conn:
        return code_distribution(conn, scope, user=_user), code_trend(conn, today, scope, user=_user)


@st.cache_data(ttl=TTL["rates"], show_spinner="正在统计按时率…")
def _rates(url: str, start: date, end: date, scope: int, _user: CurrentUser) -> pd.DataFrame:
    with store.reader() as conn:
        return on_time_rates(conn, start, end, scope, user=_user)


@st.cache_data(ttl=TTL["risk"], show_spinner="正在计算风险…")
def _area_risk(url: str, as_of: date, thresholds: tuple[float, ...]) -> pd.DataFrame:
    with store.reader() as conn:
        return area_risk(conn, as_of, load_model(conn))


# A resource, not data: 100,000 venues are shared read-only instead of unpickled (~45 ms) on every rerun.
@st.cache_resource(ttl=TTL["risk"], show_spinner="正在加载场所…")
def _venues(url: str, today: date) -> pd.DataFrame:
    with store.reader() as conn:
        return venue_frame(conn, today, load_model(conn))


@st.cache_data(ttl=TTL["risk"], show_spinner="正在加载事件…")
def _events(url: str, start: datetime, end: datetime) -> pd.DataFrame:
    with store.reader() as conn:
        return event_frame(conn, start, end)


@st.cache_data(ttl=TTL["alerts"], show_spinner=False)
def _alerts(url: str, day: date, grids: tuple[int, ...]) -> list[tuple[str, str, int]]:
    units, _ = store.geography()
    with store.reader() as conn:
        return [(a.kind.label, a.message, a.unit_id) for a in warnings(conn, Scope(grids), day, units)]


@st.cache_data(ttl=TTL["wall"], show_spinner=False)
def _wall(url: str, grids: tuple[int, ...]) -> tuple[WallDay, pd.DataFrame]:
    now = clock.now()
    with store.reader() as conn:
        return wall_day(conn, Scope(grids), now), live_points(conn, Scope(grids), now)


def thresholds() -> Thresholds:
    """The risk classes' thresholds as stored now (read every run: an admin's change shows at once)."""
    with store.reader() as conn:
        return load_model(conn).thresholds


def risk(as_of: date, current: Thresholds | None = None) -> pd.DataFrame:
    """Every unit's risk score and class as of ``as_of`` (:func:`services.risk.area_risk`), keyed on the
    thresholds in force (``current`` when the page has just read them: no second read)."""
    return _area_risk(_url(), as_of, tuple(vars(current or thresholds()).values()))


def venues(today: date) -> pd.DataFrame:
    """Every active venue with its hazards and risk points (shared, read-only: do not change it)."""
    return _venues(_url(), today)


def events(start: datetime, end: datetime) -> pd.DataFrame:
    """Events reported in [start, end) for the heat layer."""
    return _events(_url(), start, end)


def alerts(day: date, grids: list[int]) -> list[tuple[str, str, int]]:
    """预警 over these grids judged on ``day``: (kind, message, unit id)."""
    return _alerts(_url(), day, tuple(grids))


def wall(grids: list[int]) -> tuple[WallDay, pd.DataFrame]:
    """The wall's today-by-hour/category/source and its live event points (kept a few seconds: every
    screen on the same area shares one read per refresh)."""
    return _wall(_url(), tuple(grids))


def plan(day: date, scope: int, user: CurrentUser) -> PlanView:
    """The day's plan over ``scope`` (:func:`services.planning.plan_for`)."""
    return _plan(_url(), day, scope, user)


def forecast(start: date, scope: int, user: CurrentUser) -> Forecast:
    """The 30-day load from ``start`` (:func:`services.inspection_reports.load_forecast`)."""
    return _forecast(_url(), start, scope, user)


def codes(today: date, scope: int, user: CurrentUser) -> tuple[dict[str, int], pd.DataFrame]:
    """Venues by colour now, and the 90-day trend of each colour."""
    return _codes(_url(), today, scope, user)


def rates(start: date, end: date, scope: int, user: CurrentUser) -> pd.DataFrame:
    """On-time inspection rates of the visits from ``start`` to ``end``."""
    return _rates(_url(), start, end, scope, user)


#: Audit actions of the event loop and of logins: the reads above follow them by their TTLs alone. Any
#: other action written by another process (an app replica, the jobs runner, a command-line import)
#: clears this process's cached reads at its next run (decision 0031).
_FOLLOWED_BY_TTL = ("event.", "attachment.", "reminder.", "auth.", "personal_data.", "audit.", "rollups.")
_SEEN = {"audit_id": None, "at": 0.0}
_SEEN_LOCK = threading.Lock()
SYNC_EVERY_S = 2.0


def follow_other_processes() -> None:
    """Clear the cached reads when another process wrote what they hold (settings, imports,
    inspections, rules): at most one look every :data:`SYNC_EVERY_S` seconds per process, reading only
    the audit rows written since the last look (a primary-key range)."""
    now = time.monotonic()
    with _SEEN_LOCK:
        if now - _SEEN["at"] < SYNC_EVERY_S:
            return
        _SEEN["at"] = now
        last = _SEEN["audit_id"]
    with store.engine().connect() as conn:
        top, changed = written_since(conn, last, ignoring=_FOLLOWED_BY_TTL)
    with _SEEN_LOCK:
        _SEEN["audit_id"] = top
    if changed:
        clear_after_write()


def clear_after_write() -> None:
    """Forget every cached read a write may have changed (a plan setting, an import, an inspection)."""
    for read in (_plan, _forecast, _codes, _rates, _area_risk, _events, _alerts, _wall):
        read.clear()
    _venues.clear()
