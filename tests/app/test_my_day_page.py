"""我的今日 under AppTest: the route in order, the venue card, recording an inspection, refusal of other roles.

The shared demo store is only read, except for venues each test creates for itself.
"""

from __future__ import annotations

import json
from datetime import timedelta

from sqlalchemy import insert, select

from db.engine import session_factory
from db.models import InspectorGrid, SafetyCodeChange, Venue
from domain.safety_code import checklist_for
from domain.vocabulary import SafetyCode
from services import clock
from services.auth import user_by_username
from tests.app.conftest import page


def own_venue(engine, username: str = "demo_inspector", name: str = "测试：我的今日小店") -> int:
    """A yellow street shop long overdue (the newest the most) in the inspector's first grid: first after the reds."""
    with session_factory(engine).begin() as s:
        uid = user_by_username(s, username).id
        grid = (
            s.execute(
                select(InspectorGrid.grid_id)
                .where(InspectorGrid.user_id == uid)
                .order_by(InspectorGrid.grid_id)
            )
            .scalars()
            .first()
        )
        lon, lat = s.execute(select(Venue.lon, Venue.lat).where(Venue.grid_id == grid)).first()
        n = s.execute(select(Venue.id).order_by(Venue.id.desc())).scalars().first() + 1
        vid = s.execute(
            insert(Venue).returning(Venue.id),
            {
                "code": f"TEST{n}",
                "name": f"{name}{n}",
                "category": "street_shop",
                "address": "测试路1号",
                "lon": lon,
                "lat": lat,
                "grid_id": grid,
                "safety_code": "yellow",
                "responsible_person": "测试人",
                "responsible_phone": "13912345678",
                "inspector_id": uid,
                "next_due_on": clock.today() - timedelta(days=900 + n % 1000),
                "created_at": clock.now() - timedelta(days=1000),
            },
        ).scalar_one()
        s.execute(
            insert(SafetyCodeChange),
            {
                "venue_id": vid,
                "changed_at": clock.now() - timedelta(days=1000),
                "from_code": None,
                "to_code": "yellow",
                "reason": "测试赋码",
            },
        )
    return vid


def _open(engine, username: str):
    with session_factory(engine)() as s:
        user = user_by_username(s, username)
    at = page("pages/my_day.py")
    at.session_state["current_user"] = user
    at.run()
    return at


def _venue(engine, vid):
    with engine.connect() as conn:
        return conn.execute(select(Venue.safety_code, Venue.next_due_on).where(Venue.id == vid)).one()


def test_the_inspector_sees_their_day_in_route_order_on_an_offline_map(store):
    vid = own_venue(store)
    at = _open(store, "demo_inspector")
    assert not at.exception
    assert [m.label for m in at.metric] == ["待检查", "已检查", "路线（公里）"]
    stops = [b.key for b in at.button if b.key and b.key.startswith("md_open_") and "done" not in b.key]
    assert f"md_open_{vid}" in stops and 0 < len(stops) <= 100  # the suite's capacity for the demo inspector
    titles = [m.value for m in at.markdown if m.value.startswith("**") and ". " in m.value]
    assert [int(t[2:].split(".")[0]) for t in titles] == list(range(1, len(stops) + 1))
    deck = json.loads(at.get("deck_gl_json_chart")[0].proto.json)
    assert {layer["id"] for layer in deck["layers"]} >= {"stops", "stop_numbers", "route"}
    assert deck["mapStyle"].startswith("/app/static/")


def test_the_venue_card_shows_the_masked_phone_and_the_checklist_of_its_category(store):
    vid = own_venue(store)
    at = _open(store, "demo_inspector")
    at.button(key=f"md_open_{vid}").click().run()
    assert not at.exception
    text = "\n".join(m.value for m in at.markdown).replace("\\", "")  # Markdown source: user text is escaped
    assert "139****5678" in text and "13912345678" not in text
    items = [r.key for r in at.radio if r.key.startswith(f"md_item_{vid}_")]
    assert items == [f"md_item_{vid}_{i.key}" for i in checklist_for("street_shop")]


def test_recording_a_failed_inspection_with_a_major_hazard_turns_the_venue_red_and_due_tomorrow(store):
    vid = own_venue(store)
    at = _open(store, "demo_inspector")
    at.button(key=f"md_open_{vid}").click().run()
    at.radio(key=f"md_nh_{vid}").set_value(1).run()
    for i, item in enumerate(checklist_for("street_shop")):
        at.radio(key=f"md_item_{vid}_{item.key}").set_value("fail" if i == 0 else "pass")
    at.radio(key=f"md_hz_sev_{vid}_0").set_value("major")
    at.text_input(key=f"md_hz_desc_{vid}_0").input("消防通道堆放杂物")
    at.button(key=f"FormSubmitter:md_form_{vid}-保存检查结果").click().run()
    assert not at.exception and not at.error
    assert "黄码 → 红码" in at.success[0].value
    tomorrow = clock.today() + timedelta(days=1)
    assert _venue(store, vid) == (SafetyCode.RED, tomorrow)
    # Back to the list: the venue is done today and in tomorrow's list.
    at.button(key="md_back").click().run()
    assert f"md_open_done_{vid}" in [b.key for b in at.button]
    at.button(key="md_tomorrow").click().run()
    assert not at.exception
    assert at.date_input(key="md_day").value == tomorrow
    assert f"md_open_{vid}" in [b.key for b in at.button]


def test_an_incomplete_form_is_refused_with_every_missing_item_and_nothing_changes(store):
    vid = own_venue(store)
    before = _venue(store, vid)
    at = _open(store, "demo_inspector")
    at.button(key=f"md_open_{vid}").click().run()
    at.radio(key=f"md_item_{vid}_fire_exits").set_value("pass")
    at.button(key=f"FormSubmitter:md_form_{vid}-保存检查结果").click().run()
    errors = [e.value for e in at.error]
    assert errors[0] == "未保存，请修改以下内容："
    assert "检查项：燃气使用安全：未填写（请选择合格、不合格或不适用）" in errors
    assert not any("消防通道畅通" in e for e in errors)
    assert _venue(store, vid) == before


def test_other_roles_are_refused(store):
    at = _open(store, "demo_township")
    assert "无权访问" in at.error[0].value
    assert not at.metric


def test_the_grid_worker_sees_how_many_events_wait_on_them_linked_to_the_events_page(store):
    from services.access import user_scope
    from services.event_views import my_todo

    with session_factory(store)() as s:
        user = user_by_username(s, "demo_inspector")
    at = _open(store, "demo_inspector")
    assert not at.exception
    with store.connect() as conn:
        rows = my_todo(conn, user, user_scope(conn, user), clock.now())
    # Run on its own the page has no navigation: the link is the plain one (components.auth.link_to).
    links = [m.value for m in at.markdown if "我的待办" in m.value]
    assert len(links) == 1 and links[0].startswith("<a href='events'")
    assert f"我的待办 {len(rows)} 件" in links[0]


def test_a_restored_draft_with_a_hazard_says_its_photo_and_deadline_were_not_kept():
    """The draft keeps answers, not photos or dates: the inspector saved a hazard without its photo."""
    from components.drafts import restored_notice

    assert restored_notice(10, hazards=True) == (
        "已恢复上次未保存的检查记录（10 项）；隐患的现场照片和整改期限未保存，请重新选择并核对后保存。"
    )
    assert restored_notice(3, hazards=False) == (
        "已恢复上次未保存的检查记录（3 项）；照片未保存，如需留存请重新选择，核对后保存。"
    )


def test_the_open_venue_is_in_the_url_so_back_returns_to_the_list_and_a_link_opens_it(store):
    """On a phone the Back button left the app from a venue card: the card is now a URL of its own."""
    vid = own_venue(store)
    at = _open(store, "demo_inspector")
    assert "venue" not in at.query_params
    at.button(key=f"md_open_{vid}").click().run()
    assert at.query_params["venue"] in (str(vid), [str(vid)])
    assert any(b.key == "md_back" for b in at.button)
    del at.query_params["venue"]  # the browser's Back: the URL of the list
    at.run()
    assert not at.exception and not any(b.key == "md_back" for b in at.button)
    assert any(b.key == f"md_open_{vid}" for b in at.button)  # the list again
    linked = page("pages/my_day.py")  # a bookmark or a shared link to the card
    linked.session_state["current_user"] = at.session_state["current_user"]
    linked.query_params["venue"] = str(vid)
    linked.run()
    assert any(b.key == "md_back" for b in linked.button) and not linked.warning
    elsewhere = page("pages/my_day.py")  # a venue not on this inspector's day: refused, the list
    elsewhere.session_state["current_user"] = at.session_state["current_user"]
    elsewhere.query_params["venue"] = "999999999"
    elsewhere.run()
    assert any("不在您当天的检查计划中" in w.value for w in elsewhere.warning)
    assert "venue" not in elsewhere.query_params and not any(b.key == "md_back" for b in elsewhere.button)


def test_a_venue_recorded_twice_today_counts_once_as_checked(store):
    """已检查 counted inspection records: a venue checked again (再次登记检查, or from two phones) counted
    twice beside 待检查, which counts venues."""
    from db.models import Inspection
    from domain.vocabulary import InspectionResult

    vid = own_venue(store)
    at = _open(store, "demo_inspector")
    checked = {m.label: m.value for m in at.metric}["已检查"]
    with store.begin() as conn:
        inspector = conn.execute(select(Venue.inspector_id).where(Venue.id == vid)).scalar_one()
        for minutes in (0, 30):
            conn.execute(
                insert(Inspection),
                {
                    "venue_id": vid,
                    "inspector_id": inspector,
                    "inspected_at": clock.now().replace(hour=9, minute=minutes, second=0, microsecond=0),
                    "result": InspectionResult.PASS,
                    "checklist_json": "{}",
                },
            )
    at = _open(store, "demo_inspector")
    assert not at.exception
    assert int({m.label: m.value for m in at.metric}["已检查"]) == int(checked) + 1
