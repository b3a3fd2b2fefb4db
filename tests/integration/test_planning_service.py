"""The planner over the store: inputs from rows and settings, capacity, proposals, campaigns, forecast, rates."""

from __future__ import annotations

from datetime import date, datetime, timedelta

import pytest
from sqlalchemy import insert, select

from db.engine import make_engine, session_factory
from db.models import AdminUnit, Hazard, Inspection, InspectorGrid, SafetyCodeChange, User, Venue
from db.uow import UnitOfWork
from domain.access import CurrentUser
from domain.planner import Capacity
from domain.safety_code import checklist_for
from domain.vocabulary import Role
from services import clock
from services.access import OutOfScope
from services.auth import user_by_username
from services.inspection_reports import (
    code_distribution,
    code_trend,
    load_forecast,
    on_time_rates,
    overdue_hazards,
    overdue_venues,
)
from services.inspections import record_inspection, venue_card_for
from services.locate import forget_index
from services.planning import inspector_day, plan_for
from services.planning_settings import (
    InvalidSetting,
    accept_proposals,
    add_campaign,
    load_campaigns,
    load_capacity,
    load_reassignments,
    remove_campaign,
    save_capacity,
)
from tests.builders import X0, Y0, D, make_square_area

DAY = date(2026, 11, 21)
NOW = datetime(2026, 11, 21, 8, 0)
GRIDS = ["990001001001001", "990001001001002", "990001001002001", "990001001002002"]


class Area:
    def __init__(self, engine):
        self.engine = engine
        with engine.connect() as conn:
            self.ids = dict(conn.execute(select(AdminUnit.code, AdminUnit.id)).all())
        self.n = 0

    def user(self, name: str, role: Role, scope: str, grids: tuple[int, ...] = (), home=None) -> CurrentUser:
        with self.engine.begin() as conn:
            uid = conn.execute(
                insert(User).returning(User.id),
                {
                    "username": name,
                    "display_name": name,
                    "role": role,
                    "scope_unit_id": self.ids[scope],
                    "home_lon": home[0] if home else None,
                    "home_lat": home[1] if home else None,
                    "created_at": datetime(2026, 1, 1),
                },
            ).scalar_one()
            for g in grids:
                conn.execute(insert(InspectorGrid), {"user_id": uid, "grid_id": self.ids[GRIDS[g]]})
        return CurrentUser(uid, name, name, role, self.ids[scope])

    def venue(
        self,
        grid: int,
        code="green",
        due: date | None = DAY,
        category="street_shop",
        created=datetime(2026, 1, 1),
        inspected: bool = False,
    ) -> int:
        self.n += 1
        with self.engine.begin() as conn:
            return conn.execute(
                insert(Venue).returning(Venue.id),
                {
                    "code": f"T{self.n}",
                    "name": f"场所{self.n}",
                    "category": category,
                    "address": f"方城路{self.n}号",
                    "lon": X0 + (grid + 0.1 + 0.08 * (self.n % 10)) * D,
                    "lat": Y0 + 0.5 * D,
                    "grid_id": self.ids[GRIDS[grid]],
                    "safety_code": code,
                    "responsible_person": "某某",
                    "next_due_on": due,
                    # inspected: a month before it is due (else never, as an imported venue)
                    "last_inspected_on": due - timedelta(days=30) if inspected and due else None,
                    "created_at": created,
                },
            ).scalar_one()


@pytest.fixture
def area(empty_engine):
    forget_index()
    with empty_engine.begin() as conn:
        make_square_area(conn)
    a = Area(empty_engine)
    a.a = a.user("甲", Role.INSPECTOR, "990001001001", (0, 1), home=(X0 + 0.5 * D, Y0 + 0.5 * D))
    a.b = a.user("乙", Role.INSPECTOR, "990001001002", (2,))
    a.c = a.user("丙", Role.INSPECTOR, "990001001002", (3,))
    a.leader = a.user("领导", Role.TOWNSHIP_LEADER, "990001001")
    a.township = a.ids["990001001"]
    return a


def _plan(area, day=DAY):
    with area.engine.connect() as conn:
        return plan_for(conn, day, area.township)


def test_a_venue_no_inspector_covers_is_listed_as_uncovered_not_as_over_anyones_capacity(area):
    """A new county's townships without an inspector yet: their red venues were shown under 超出容量未排入
    as （无人负责）, while every inspector still had room."""
    from sqlalchemy import delete

    with area.engine.begin() as conn:
        conn.execute(delete(InspectorGrid).where(InspectorGrid.user_id == area.c.id))
    red = area.venue(3, code="red")
    view = _plan(area)
    assert view.overflow_table().empty
    table = view.uncovered_table()
    assert table["venue"].tolist() == [f"场所{area.n}"] and table["code"].tolist() == ["red"]
    assert [v.venue_id for v in view.plan.uncovered] == [red]


def test_capacity_comes_from_settings_overflow_is_proposed_and_an_accepted_proposal_moves_the_visit(area):
    vids = [area.venue(0) for _ in range(3)]
    save_capacity(UnitOfWork(area.engine), default=2, now=NOW)
    view = _plan(area)
    a = view.plan.route_of(area.a.id)
    assert len(a.visits) == 2 and [v.venue_id for v in a.overflow] == [vids[2]]
    summary = view.summary().set_index("inspector")
    assert summary.loc["甲", "planned"] == 2 and summary.loc["甲", "overflow"] == 1
    (p,) = view.plan.proposals
    assert p.venue_id == vids[2] and p.to_inspector_id in (area.b.id, area.c.id)
    accept_proposals(UnitOfWork(area.engine), user=area.leader, day=DAY, proposals=[p], now=NOW)
    with area.engine.connect() as conn:
        assert load_reassignments(conn, DAY) == {vids[2]: p.to_inspector_id}
    again = _plan(area)
    assert vids[2] in [v.venue_id for v in again.plan.route_of(p.to_inspector_id).visits]
    assert not again.plan.overflow
    with area.engine.connect() as conn:  # each inspector's own day agrees with the township plan
        taker = inspector_day(conn, p.to_inspector_id, DAY)
        giver = inspector_day(conn, area.a.id, DAY)
    assert vids[2] in taker.stops["venue_id"].tolist() and vids[2] not in giver.stops["venue_id"].tolist()
    assert giver.stops["venue_id"].tolist() == [v.venue_id for v in again.plan.route_of(area.a.id).visits]
    # the taker does not cover the venue's grid: that day the 调配 lets them open and record it, not after
    taker_user = next(u for u in (area.b, area.c) if u.id == p.to_inspector_id)
    with area.engine.connect() as conn:
        assert venue_card_for(conn, taker_user, vids[2], DAY).venue["id"] == vids[2]
        with pytest.raises(OutOfScope):
            venue_card_for(conn, taker_user, vids[2], DAY + timedelta(days=1))
    record_inspection(
        UnitOfWork(area.engine),
        user=taker_user,
        venue_id=vids[2],
        now=NOW,
        checklist={i.key: "pass" for i in checklist_for("street_shop")},
    )
    with pytest.raises(InvalidSetting):
        accept_proposals(UnitOfWork(area.engine), user=area.a, day=DAY, proposals=[p], now=NOW)
    with pytest.raises(InvalidSetting) as exc:
        save_capacity(UnitOfWork(area.engine), default=0, now=NOW)
    assert exc.value.problems == {"每日检查容量": "须为 1–100 之间的整数"}


def test_a_leader_sets_their_inspectors_own_capacity_and_only_an_administrator_the_default(area):
    """每日检查容量 (nothing could set it but code): a township leader gives one inspector 1 visit a day,
    which the plan follows; a leader of another village may not change everyone's default, nor an
    inspector outside their village, nor set 0."""
    vids = [area.venue(0) for _ in range(3)]
    west = area.user("村领导", Role.TOWNSHIP_LEADER, "990001001002")
    with pytest.raises(InvalidSetting) as exc:
        save_capacity(
            UnitOfWork(area.engine), default=5, inspectors={area.a.id: 3, area.b.id: 0}, now=NOW, user=west
        )
    assert set(exc.value.problems) == {"每日检查容量", f"检查员{area.a.id}", f"检查员{area.b.id}"}
    with area.engine.connect() as conn:
        assert load_capacity(conn) == Capacity()  # nothing stored
    save_capacity(UnitOfWork(area.engine), inspectors={area.a.id: 1}, now=NOW, user=area.leader)
    route = _plan(area).plan.route_of(area.a.id)
    assert len(route.visits) == 1 and len(route.overflow) == 2 and route.visits[0].venue_id in vids
    save_capacity(UnitOfWork(area.engine), inspectors={area.a.id: None}, now=NOW, user=area.leader)
    with area.engine.connect() as conn:
        assert load_capacity(conn).of(area.a.id) == Capacity().default
    save_capacity(UnitOfWork(area.engine), inspectors={area.b.id: 4}, now=NOW, user=area.leader)
    save_capacity(
        UnitOfWork(area.engine), inspectors={area.b.id: Capacity().default}, now=NOW, user=area.leader
    )
    with area.engine.connect() as conn:  # the default's own value is no capacity of one's own
        assert load_capacity(conn) == Capacity()


def test_red_venues_rechecks_and_first_visits_are_planned_with_reasons_and_inspections_use_up_capacity(area):
    red = area.venue(
        0, "red", DAY + timedelta(days=5), inspected=True
    )  # red: always due (daily) in the plan's eyes? no: due date
    late = area.venue(1, "yellow", DAY - timedelta(days=4), inspected=True)
    new = area.venue(1, "green", None)
    imported = area.venue(1, "green", DAY)  # the venue import: due on its import day, never inspected
    later = area.venue(0, "green", DAY + timedelta(days=10), inspected=True)
    with area.engine.begin() as conn:
        conn.execute(
            insert(Hazard),
            {
                "venue_id": later,
                "severity": "general",
                "description": "灭火器过期",
                "found_on": DAY - timedelta(days=7),
                "deadline": DAY + timedelta(days=1),
                "status": "open",
            },
        )
    with area.engine.connect() as conn:
        day = inspector_day(conn, area.a.id, DAY)
    reasons = dict(zip(day.stops["venue_id"], day.stops["reason"], strict=True))
    assert red not in reasons  # not due until its date
    assert reasons[late] == "黄码场所，每周复查到期；逾期4天"
    assert reasons[new] == reasons[imported] == "尚无检查记录，需首次检查"
    assert reasons[later] == f"隐患整改期限{DAY + timedelta(days=1)}复查"
    assert day.stops["stop"].tolist() == list(range(1, len(day.stops) + 1))
    assert day.stops["address"].str.startswith("方城路").all()
    save_capacity(UnitOfWork(area.engine), default=3, now=NOW)
    record_inspection(
        UnitOfWork(area.engine),
        user=area.a,
        venue_id=new,
        now=NOW,
        checklist={i.key: "pass" for i in checklist_for("street_shop")},
    )
    with area.engine.connect() as conn:
        after = inspector_day(conn, area.a.id, DAY)
    assert new not in set(after.stops["venue_id"]) and after.done["venue_id"].tolist() == [new]
    assert after.route.capacity == 2  # 3 a day, one already done
    assert after.done.iloc[0]["next_due_on"] == DAY + timedelta(days=30)


def test_an_inspectors_day_over_shared_grids_is_their_route_in_the_township_plan(area):
    d = area.user("丁", Role.INSPECTOR, "990001001001", (1, 2))  # shares grid 1 with 甲 and grid 2 with 乙
    for g in (0, 1, 1, 1, 2, 2, 3):
        area.venue(g, "yellow", DAY - timedelta(days=g))
    save_capacity(UnitOfWork(area.engine), default=2, now=NOW)
    township = _plan(area).plan
    with area.engine.connect() as conn:
        for who in (area.a, area.b, area.c, d):
            mine = inspector_day(conn, who.id, DAY)
            assert mine.stops["venue_id"].tolist() == [v.venue_id for v in township.route_of(who.id).visits]
            assert mine.overflow["venue_id"].tolist() == [
                v.venue_id for v in township.route_of(who.id).overflow
            ]


def test_campaigns_are_validated_stored_planned_and_removed(area):
    shop = area.venue(2, "green", DAY + timedelta(days=20))

    def add(user, **fields):
        return add_campaign(UnitOfWork(area.engine), user=user, now=NOW, **fields)

    with pytest.raises(InvalidSetting) as exc:
        add(
            area.leader,
            name=" ",
            category=None,
            area_ids=[],
            start=DAY,
            end=DAY - timedelta(days=1),
            every_days=0,
        )
    assert exc.value.problems == {
        "名称": "请填写专项整治名称",
        "场所类别": "请选择场所类别",
        "区域": "请至少选择一个村（社区）或乡镇（街道）",
        "结束日期": "结束日期不能早于开始日期",
        "检查周期": "检查周期须为 1–90 天",
    }
    village_user = CurrentUser(area.a.id, "甲", "甲", Role.TOWNSHIP_LEADER, area.ids["990001001001"])
    gas = {"name": "燃气", "category": "street_shop", "start": DAY, "end": DAY, "every_days": 1}
    with pytest.raises(InvalidSetting) as exc:
        add(village_user, **gas, area_ids=[area.ids["990001001002"]])
    assert exc.value.problems == {"区域": "西村不在您的管辖范围内"}
    add(
        area.leader,
        name="燃气安全专项整治",
        category="street_shop",
        area_ids=[area.ids["990001001002"]],
        start=DAY,
        end=DAY + timedelta(days=6),
        every_days=1,
    )
    with pytest.raises(InvalidSetting) as exc:
        add(area.leader, **(gas | {"name": "燃气安全专项整治"}), area_ids=[area.township])
    assert "同名" in exc.value.problems["名称"]
    with area.engine.connect() as conn:
        assert [c.name for c in load_campaigns(conn)] == ["燃气安全专项整治"]
    visit = next(v for v in _plan(area).plan.route_of(area.b.id).visits if v.venue_id == shop)
    assert visit.reason == "专项整治：燃气安全专项整治"
    remove_campaign(UnitOfWork(area.engine), user=area.leader, name="燃气安全专项整治", now=NOW)
    with area.engine.connect() as conn:
        assert load_campaigns(conn) == []
    assert not _plan(area).plan.route_of(area.b.id).visits


def test_the_30_day_forecast_projects_due_dates_by_cadence(area):
    area.venue(0, "red", DAY)  # every day: 30
    area.venue(0, "yellow", DAY + timedelta(days=2))  # days 2, 9, 16, 23
    green = area.venue(2, "green", DAY - timedelta(days=3))  # overdue: day 0 (then day 30, outside)
    with area.engine.begin() as conn:
        conn.execute(
            insert(Hazard),
            {
                "venue_id": green,
                "severity": "major",
                "description": "x",
                "found_on": DAY - timedelta(days=3),
                "deadline": DAY + timedelta(days=10),
                "status": "open",
            },
        )
    with area.engine.connect() as conn:
        fc = load_forecast(conn, DAY, area.township)
    a, b = fc.by_inspector.loc["甲"], fc.by_inspector.loc["乙"]
    assert a.sum() == 34 and a.iloc[2] == 2 and a.iloc[1] == 1
    assert b.sum() == 2 and b.iloc[0] == 1 and b.iloc[9] == 1  # the re-check the day before the deadline
    assert fc.by_inspector.loc["丙"].sum() == 0
    assert fc.by_village.loc["东村"].sum() == 34 and fc.by_village.loc["西村"].sum() == 2
    assert list(fc.by_inspector.columns)[:2] == [DAY.isoformat(), (DAY + timedelta(days=1)).isoformat()]


def test_on_time_rate_overdue_lists_distribution_and_red_trend(area):
    today = DAY
    v1 = area.venue(0, "green", today - timedelta(days=5), created=datetime(2026, 6, 1))
    v2 = area.venue(1, "yellow", today + timedelta(days=2), created=datetime(2026, 6, 1))
    with area.engine.begin() as conn:
        rows = [(v1, -45, None), (v1, -5, None), (v2, -19, None), (v2, -12, None), (v2, -6, None)]
        for vid, d, _ in rows:
            conn.execute(
                insert(Inspection),
                {
                    "venue_id": vid,
                    "inspected_at": NOW + timedelta(days=d),
                    "result": "pass",
                    "checklist_json": "{}",
                },
            )
        changes = [
            (v1, datetime(2026, 6, 1), None, "green"),
            (v2, datetime(2026, 6, 1), None, "green"),
            (v2, NOW - timedelta(days=20), "green", "red"),
            (v2, NOW - timedelta(days=13), "red", "yellow"),
        ]
        for vid, at, f, t in changes:
            conn.execute(
                insert(SafetyCodeChange),
                {"venue_id": vid, "changed_at": at, "from_code": f, "to_code": t, "reason": "测试"},
            )
        conn.execute(
            insert(Hazard),
            {
                "venue_id": v1,
                "severity": "general",
                "description": "堆物",
                "found_on": today - timedelta(days=9),
                "deadline": today - timedelta(days=2),
                "status": "open",
            },
        )
        rates = on_time_rates(conn, today - timedelta(days=29), today, area.township)
        late = overdue_venues(conn, today, area.township)
        late_hz = overdue_hazards(conn, today, area.township)
        dist = code_distribution(conn, area.township)
        trend = code_trend(conn, today, area.township, days=30)
    # v1: -45 → -5 is 40 days after a green visit (late); v2: red at -19, visited -12 (late: due -18), then
    # yellow at -12 (the change at -13 is before the end of that day), visited -6 (on time: due -5).
    total = rates[rates["area"].isna()].set_index("code")  # every area together
    assert total.loc["green", "visits"] == 1 and total.loc["green", "on_time"] == 0
    assert total.loc["red", "visits"] == 1 and total.loc["red", "on_time"] == 0
    assert total.loc["yellow", "visits"] == 1 and total.loc["yellow", "on_time"] == 1
    assert set(rates["area"].dropna()) == {"东村"} and rates["area"].head(3).isna().all()  # totals first
    assert late["venue_id"].tolist() == [v1] and late.iloc[0]["overdue_days"] == 5
    assert late.iloc[0]["inspector"] == "甲"  # who covers its grid now, not who did at its import
    assert late_hz.iloc[0]["overdue_days"] == 2
    assert dist == {"red": 0, "yellow": 1, "green": 1}
    red = trend["red"]
    assert red.loc[today - timedelta(days=21)] == 0 and red.loc[today - timedelta(days=20)] == 1
    assert red.loc[today - timedelta(days=13)] == 0 and trend.loc[today, "yellow"] == 1


def test_a_venue_recorded_twice_on_one_day_from_two_phones_counts_one_visit_in_the_on_time_rate(area):
    """Two inspectors at one venue on one day, each recording it: the second record counted as a visit due
    the same day, on time, so a green venue visited 40 days late showed two visits and 50 % on time."""
    today = DAY
    v1 = area.venue(0, "green", today - timedelta(days=5), created=datetime(2026, 6, 1))
    with area.engine.begin() as conn:
        for at in (NOW - timedelta(days=45), NOW - timedelta(days=5), NOW - timedelta(days=5, hours=-1)):
            conn.execute(
                insert(Inspection),
                {"venue_id": v1, "inspected_at": at, "result": "pass", "checklist_json": "{}"},
            )
        conn.execute(
            insert(SafetyCodeChange),
            {
                "venue_id": v1,
                "changed_at": datetime(2026, 6, 1),
                "from_code": None,
                "to_code": "green",
                "reason": "测试",
            },
        )
        rates = on_time_rates(conn, today - timedelta(days=29), today, area.township)
    total = rates[rates["area"].isna()].set_index("code")
    assert total.loc["green", "visits"] == 1 and total.loc["green", "on_time"] == 0
    assert total.loc["green", "rate"] == 0


# --- the seeded demo town -----------------------------------------------------------------------


def test_the_demo_town_plan_respects_capacity_and_grids_and_matches_the_inspectors_day(seeded_store_url):
    engine = make_engine(seeded_store_url)
    today = clock.today()
    with session_factory(engine)() as s:
        leader = user_by_username(s, "demo_township")
        insp = user_by_username(s, "demo_inspector")
    with engine.connect() as conn:
        view = plan_for(conn, today, leader.scope_unit_id)
        grids = {}
        for uid, gid in conn.execute(select(InspectorGrid.user_id, InspectorGrid.grid_id)):
            grids.setdefault(uid, set()).add(gid)
        mine = inspector_day(conn, insp.id, today)
    engine.dispose()
    assert view.plan.planned > 0
    for r in view.plan.routes:
        assert len(r.visits) <= r.capacity
        assert all(v.grid_id in grids[r.inspector_id] or v.venue_id in view.inputs.reassign for v in r.visits)
    route = view.plan.route_of(insp.id)
    assert mine.stops["venue_id"].tolist() == [v.venue_id for v in route.visits]
