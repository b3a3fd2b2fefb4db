"""The live event flow page under AppTest: scope, counts, detail with trail, actions only where allowed."""

from sqlalchemy import select

from db.engine import session_factory
from db.models import Event, Venue
from domain.vocabulary import EventCategory, EventSource, EventStatus
from services import clock
from services.auth import user_by_username
from services.events import report_event
from tests.app.conftest import page


def _open(engine, username, event_id=None):
    with session_factory(engine)() as s:
        user = user_by_username(s, username)
    at = page("pages/events.py")
    at.session_state["current_user"] = user
    at.run()
    if event_id is not None:
        at.number_input(key="ev_detail_id").set_value(event_id).run()
    return at


def _new_report(engine) -> int:
    """A fresh event reported at a demo-town venue (the shared store is otherwise only read)."""
    with session_factory(engine).begin() as s:
        lon, lat = s.execute(select(Venue.lon, Venue.lat).order_by(Venue.id)).first()
        return report_event(s, source=EventSource.CITIZEN, category=EventCategory.URBAN, title="测试：占道经营",
                            lon=lon, lat=lat, now=clock.now()).id


def test_the_township_leader_sees_kpis_feed_and_counts(store):
    at = _open(store, "demo_township")
    assert not at.exception
    labels = [m.label for m in at.metric]
    assert labels == ["今日新增", "在办", "超期", "今日办结"]
    assert len(at.dataframe) >= 2


def test_an_event_shows_its_trail_and_only_the_actions_the_loop_allows(store):
    eid = _new_report(store)
    at = _open(store, "demo_township", eid)
    assert not at.exception
    radio = at.radio[0]
    assert set(radio.options) == {"受理", "退回"}


def test_accepting_an_event_moves_it_and_writes_the_trail(store):
    eid = _new_report(store)
    at = _open(store, "demo_township", eid)
    from domain.event_flow import Action

    at.radio[0].set_value(Action.ACCEPT)
    at.button(key=f"FormSubmitter:act_{eid}-提交").click().run()
    assert not at.exception
    with store.connect() as conn:
        assert conn.execute(select(Event.status).where(Event.id == eid)).scalar_one() == EventStatus.ACCEPTED


def test_a_reject_without_a_reason_is_refused(store):
    eid = _new_report(store)
    at = _open(store, "demo_township", eid)
    from domain.event_flow import Action

    at.radio[0].set_value(Action.REJECT)
    at.button(key=f"FormSubmitter:act_{eid}-提交").click().run()
    assert any("请填写原因" in e.value for e in at.error)
    with store.connect() as conn:
        assert conn.execute(select(Event.status).where(Event.id == eid)).scalar_one() == EventStatus.REPORTED


def test_the_leader_ranks_villages_with_n_shown(store):
    at = _open(store, "demo_township")
    at.segmented_control(key="ev_view").set_value("分析排名").run()
    assert not at.exception
    table = at.dataframe[0].value
    assert "事件数(N)" in table.columns and "排名" in table.columns
    assert len(table) == 25


def test_an_inspector_has_only_the_live_view(store):
    at = _open(store, "demo_inspector")
    assert not at.exception
    assert at.segmented_control(key="ev_view").options == ["实时"]


def test_the_admin_edits_rules_and_bad_json_is_refused_without_saving(store):
    at = _open(store, "demo_admin")
    at.segmented_control(key="ev_view").set_value("规则").run()
    assert not at.exception
    at.text_area[1].set_value("{不是JSON")
    at.button(key="FormSubmitter:event_rules-保存规则").click().run()
    assert any("规则未保存" in e.value for e in at.error)


def _accepted_joint_matter(engine) -> int:
    """A fresh accepted 劳资纠纷 (a 一件事: 综治 leads, 司法/公安/住建 cooperate) at a demo-town venue."""
    from domain.event_flow import Action
    from services.events import act

    with session_factory(engine).begin() as s:
        lon, lat = s.execute(select(Venue.lon, Venue.lat).order_by(Venue.id)).first()
        eid = report_event(s, source=EventSource.HOTLINE_12345, category=EventCategory.DISPUTE,
                           title="测试：工地拖欠工资", lon=lon, lat=lat, now=clock.now()).id
        act(s, event_id=eid, action=Action.ACCEPT, now=clock.now())
    return eid


def _departments(engine, eid):
    from db.models import AdminUnit, Department

    with engine.connect() as conn:
        grid = conn.execute(select(Event.grid_id).where(Event.id == eid)).scalar_one()
        village = conn.execute(select(AdminUnit.parent_id).where(AdminUnit.id == grid)).scalar_one()
        town = conn.execute(select(AdminUnit.parent_id).where(AdminUnit.id == village)).scalar_one()
        return dict(conn.execute(select(Department.kind, Department.id).where(Department.unit_id == town)).all())


def test_the_dispatch_form_offers_cooperators_prefilled_from_the_rules_and_stores_them(store):
    from db.models import EventCooperator
    from domain.event_flow import Action

    eid = _accepted_joint_matter(store)
    dept = _departments(store, eid)
    at = _open(store, "demo_township", eid)
    assert not at.exception
    coop = at.multiselect(key=f"coop_{eid}")
    assert coop.value == [dept["司法"], dept["公安"], dept["住建"]]
    assert at.selectbox[0].value == dept["综治"]
    at.radio[0].set_value(Action.DISPATCH)
    at.button(key=f"FormSubmitter:act_{eid}-提交").click().run()
    assert not at.exception and not at.error
    with store.connect() as conn:
        assert conn.execute(select(Event.status, Event.lead_department_id).where(Event.id == eid)).one() == (
            EventStatus.DISPATCHED, dept["综治"])
        stored = set(conn.execute(select(EventCooperator.department_id).where(EventCooperator.event_id == eid)).scalars())
    assert stored == {dept["司法"], dept["公安"], dept["住建"]}
    assert any("协办部门：" in m.value and "司法" in m.value for m in at.markdown)


def test_the_lead_department_chosen_as_a_cooperator_too_is_refused_and_nothing_is_dispatched(store):
    from db.models import EventCooperator
    from domain.event_flow import Action

    eid = _accepted_joint_matter(store)
    dept = _departments(store, eid)
    at = _open(store, "demo_township", eid)
    at.radio[0].set_value(Action.DISPATCH)
    at.multiselect(key=f"coop_{eid}").set_value([dept["综治"], dept["司法"]])
    at.button(key=f"FormSubmitter:act_{eid}-提交").click().run()
    assert any("已是牵头部门" in e.value for e in at.error)
    with store.connect() as conn:
        assert conn.execute(select(Event.status).where(Event.id == eid)).scalar_one() == EventStatus.ACCEPTED
        assert not conn.execute(select(EventCooperator).where(EventCooperator.event_id == eid)).first()


def test_a_cooperating_departments_handler_sees_the_event_and_may_only_write_an_opinion(store):
    from domain.event_flow import Action
    from services.events import act

    with session_factory(store)() as s:
        handler = user_by_username(s, "demo_department")
    eid = _accepted_joint_matter(store)
    dept = _departments(store, eid)
    lead = next(i for i in dept.values() if i != handler.department_id)
    with session_factory(store).begin() as s:
        act(s, event_id=eid, action=Action.DISPATCH, now=clock.now(), department_id=lead,
            cooperating_department_ids=[handler.department_id])
    at = _open(store, "demo_department", eid)
    assert not at.exception
    assert any("协办部门" in i.value for i in at.info)
    assert [r.options for r in at.radio] == [["处置意见"]] and not at.multiselect  # no dispatch fields
    submit = f"FormSubmitter:act_{eid}-提交"
    at.button(key=submit).click().run()  # no text: told to write one, nothing stored
    assert any("填写意见内容" in x.value for x in at.error)
    at.text_input[0].set_value("建议联合执法，司法所可提供调解员")
    at.button(key=submit).click().run()
    assert not at.exception and not at.error
    with store.connect() as conn:
        from db.models import EventTransition

        last = conn.execute(select(EventTransition.action, EventTransition.note, EventTransition.department_id)
                            .where(EventTransition.event_id == eid).order_by(EventTransition.seq.desc())).first()
        status = conn.execute(select(Event.status).where(Event.id == eid)).scalar_one()
    assert tuple(last) == ("comment", "建议联合执法，司法所可提供调解员", handler.department_id)
    assert status == EventStatus.DISPATCHED
