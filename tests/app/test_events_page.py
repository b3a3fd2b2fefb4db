"""The live event flow page under AppTest: scope, counts, detail with trail, actions only where allowed."""

from sqlalchemy import select

from db.engine import session_factory
from db.models import Event, Venue
from db.uow import UnitOfWork
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
    with engine.connect() as conn:
        lon, lat = conn.execute(select(Venue.lon, Venue.lat).order_by(Venue.id)).first()
    return report_event(
        UnitOfWork(engine),
        source=EventSource.CITIZEN,
        category=EventCategory.URBAN,
        title="测试：占道经营",
        lon=lon,
        lat=lat,
        now=clock.now(),
    ).id


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


def test_a_form_left_open_while_a_colleague_acts_does_nothing_and_says_so(store):
    """The leader chose 退回 with its reason; meanwhile a colleague 受理'd the event. 提交 must not carry
    out another action (the form's options changed: 派单 came first) nor pass the compare-and-set
    against the event read again for the submit: nothing is written, the message says what happened."""
    from db.models import EventTransition
    from domain.event_flow import Action
    from services.events import act

    eid = _new_report(store)
    at = _open(store, "demo_township", eid)
    act(UnitOfWork(store), event_id=eid, action=Action.ACCEPT, now=clock.now())  # the colleague
    at.radio[0].set_value(Action.REJECT)
    next(t for t in at.text_input if "说明" in t.label).input("重复上报")
    at.button(key=f"FormSubmitter:act_{eid}-提交").click().run()
    assert not at.exception
    assert any("已被他人处理（当前状态：已受理）" in e.value and "未执行" in e.value for e in at.error)
    assert not at.success
    with store.connect() as conn:
        assert conn.execute(select(Event.status).where(Event.id == eid)).scalar_one() == EventStatus.ACCEPTED
        steps = conn.execute(select(EventTransition.action).where(EventTransition.event_id == eid)).scalars()
        assert list(steps) == ["report", "accept"]
    # the form now offers what the event allows as it is, and the next submit acts
    assert at.radio[0].options == ["派单", "上移"]
    at.radio[0].set_value(Action.ESCALATE)
    next(t for t in at.text_input if "说明" in t.label).input("需区级协调")
    at.button(key=f"FormSubmitter:act_{eid}-提交").click().run()
    assert any("已上移" in m.value for m in at.success)
    with store.connect() as conn:
        steps = conn.execute(select(EventTransition.action).where(EventTransition.event_id == eid)).scalars()
        assert list(steps) == ["report", "accept", "escalate"]


def test_a_double_tap_on_submit_acts_once_and_does_not_blame_a_colleague(store):
    """On a phone the second tap of 受理 is sent from the form as first drawn, after the first moved the
    event: it is the user's own step repeated, said so, not "已被他人处理…请重新办理"."""
    from db.models import EventTransition
    from domain.event_flow import Action

    eid = _new_report(store)
    at = _open(store, "demo_township", eid)
    drawn = at.session_state[f"act_shown_{eid}"]
    at.radio[0].set_value(Action.ACCEPT)
    at.button(key=f"FormSubmitter:act_{eid}-提交").click().run()
    assert any("已受理" in m.value for m in at.success)
    at.session_state[f"act_shown_{eid}"] = drawn  # the second tap, from the form the first was sent from
    at.button(key=f"FormSubmitter:act_{eid}-提交").click().run()
    assert not at.exception and not at.error
    assert any("重复提交已忽略" in m.value for m in at.info)
    with store.connect() as conn:
        steps = conn.execute(select(EventTransition.action).where(EventTransition.event_id == eid)).scalars()
        assert list(steps) == ["report", "accept"]


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

    with engine.connect() as conn:
        lon, lat = conn.execute(select(Venue.lon, Venue.lat).order_by(Venue.id)).first()
    eid = report_event(
        UnitOfWork(engine),
        source=EventSource.HOTLINE_12345,
        category=EventCategory.DISPUTE,
        title="测试：工地拖欠工资",
        lon=lon,
        lat=lat,
        now=clock.now(),
    ).id
    act(UnitOfWork(engine), event_id=eid, action=Action.ACCEPT, now=clock.now())
    return eid


def _departments(engine, eid):
    from db.models import AdminUnit, Department

    with engine.connect() as conn:
        grid = conn.execute(select(Event.grid_id).where(Event.id == eid)).scalar_one()
        village = conn.execute(select(AdminUnit.parent_id).where(AdminUnit.id == grid)).scalar_one()
        town = conn.execute(select(AdminUnit.parent_id).where(AdminUnit.id == village)).scalar_one()
        return dict(
            conn.execute(select(Department.kind, Department.id).where(Department.unit_id == town)).all()
        )


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
            EventStatus.DISPATCHED,
            dept["综治"],
        )
        stored = set(
            conn.execute(
                select(EventCooperator.department_id).where(EventCooperator.event_id == eid)
            ).scalars()
        )
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
    act(
        UnitOfWork(store),
        event_id=eid,
        action=Action.DISPATCH,
        now=clock.now(),
        department_id=lead,
        cooperating_department_ids=[handler.department_id],
    )
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

        last = conn.execute(
            select(EventTransition.action, EventTransition.note, EventTransition.department_id)
            .where(EventTransition.event_id == eid)
            .order_by(EventTransition.seq.desc())
        ).first()
        status = conn.execute(select(Event.status).where(Event.id == eid)).scalar_one()
    assert tuple(last) == ("comment", "建议联合执法，司法所可提供调解员", handler.department_id)
    assert status == EventStatus.DISPATCHED


def test_clicking_a_row_of_the_feed_or_of_overdue_opens_that_event_in_place(store):
    at = _open(store, "demo_township")
    assert not at.exception
    feed = next(d.value for d in at.dataframe if "提醒" in d.value.columns)
    late = next(d.value for d in at.dataframe if "超期" in d.value.columns and "时限" in d.value.columns)
    second = int(feed.iloc[1]["编号"])
    at.session_state["ev_feed_pick"] = {"selection": {"rows": [1], "columns": [], "cells": []}}
    at = at.run()
    assert not at.exception
    assert at.number_input(key="ev_detail_id").value == second
    assert any(f"**#{second} " in m.value for m in at.markdown)
    assert _scrolls(at)  # a phone's screen is brought down to 事件详情
    last = len(late) - 1
    at.session_state["ev_late_pick"] = {"selection": {"rows": [last], "columns": [], "cells": []}}
    at = at.run()
    assert at.number_input(key="ev_detail_id").value == int(late.iloc[last]["编号"])
    # The same selection on the next run does not take the box back: a typed number still opens its event.
    at = at.number_input(key="ev_detail_id").set_value(second).run()
    assert at.number_input(key="ev_detail_id").value == second
    assert not _scrolls(at)  # typed beside the heading: nothing moves


def _scrolls(at) -> bool:
    return any("scrollIntoView" in (getattr(e.proto, "srcdoc", "") or "") for e in at.get("iframe"))


def test_after_an_action_a_success_message_the_new_state_and_an_empty_note(store):
    eid = _new_report(store)
    at = _open(store, "demo_township", eid)
    from domain.event_flow import Action

    at.radio[0].set_value(Action.ACCEPT)
    at.text_input[0].set_value("已电话核实")
    at.button(key=f"FormSubmitter:act_{eid}-提交").click().run()
    assert not at.exception
    assert any(f"已受理：事件 #{eid} 现为“已受理”" in s.value for s in at.success)
    assert at.text_input[0].value == ""


# -- 我的待办, 办结 with its result and photos, the timeline, one toast -------------------------------------


def _todo(at):
    """The 我的待办 table (its columns: 待办 and 期限), or None when the list is empty."""
    return next((d.value for d in at.dataframe if "待办" in d.value.columns), None)


def _at_venue_in(engine, grid_id=None) -> tuple[float, float]:
    with engine.connect() as conn:
        q = select(Venue.lon, Venue.lat).order_by(Venue.id)
        return tuple(conn.execute(q if grid_id is None else q.where(Venue.grid_id == grid_id)).first())


def _report_at(engine, lonlat, title="测试：待办", urgency=None, now=None) -> int:
    from domain.vocabulary import Urgency

    return report_event(
        UnitOfWork(engine),
        source=EventSource.GRID_WORKER,
        category=EventCategory.URBAN,
        title=title,
        lon=lonlat[0],
        lat=lonlat[1],
        now=now or clock.now(),
        urgency=urgency or Urgency.NORMAL,
    ).id


def _dispatched_to(engine, username, *, started=False, late=False) -> int:
    """A fresh event dispatched to ``username``'s department (started: 处置中), its deadline passed if late."""
    from datetime import timedelta

    from sqlalchemy import update

    from domain.event_flow import Action
    from services.events import act

    with session_factory(engine)() as s:
        dept = user_by_username(s, username).department_id
    eid = _report_at(engine, _at_venue_in(engine), title="测试：处置待办")
    for action in (Action.ACCEPT, Action.DISPATCH, *([Action.START] if started else [])):
        act(UnitOfWork(engine), event_id=eid, action=action, now=clock.now(), department_id=dept)
    if late:
        with engine.begin() as conn:
            conn.execute(update(Event).where(Event.id == eid).values(due_at=clock.now() - timedelta(days=30)))
    return eid


def _pick_todo(at, row: int):
    at.session_state["ev_todo_pick"] = {"selection": {"rows": [row], "columns": [], "cells": []}}
    return at.run()


def test_a_department_handlers_todo_holds_its_dispatched_events_overdue_first_and_a_click_opens_one(store):
    eid = _dispatched_to(store, "demo_township_department", late=True)
    at = _open(store, "demo_township_department")
    assert not at.exception
    todo = _todo(at)
    assert int(todo.iloc[0]["编号"]) == eid  # thirty days late: nothing waits longer
    assert todo.iloc[0]["待办"] == "开始处置" and todo.iloc[0]["期限"].startswith("超期")
    assert any("我的待办（" in h.value and "超期" in h.value for h in at.subheader)
    late = list(todo["期限"].str.startswith("超"))
    assert late == sorted(late, reverse=True)  # every overdue row above every running one
    at = _pick_todo(at, 0)
    assert at.number_input(key="ev_detail_id").value == eid
    assert any(f"**#{eid} " in m.value for m in at.markdown)
    assert at.radio[0].options[:2] == ["退单", "开始处置"]


def test_a_grid_workers_todo_holds_a_report_in_their_grid_to_accept(store):
    from db.models import InspectorGrid

    with session_factory(store)() as s:
        uid = user_by_username(s, "demo_inspector").id
    with store.connect() as conn:
        grid = conn.execute(
            select(InspectorGrid.grid_id).where(InspectorGrid.user_id == uid).order_by(InspectorGrid.grid_id)
        ).scalar()
    eid = _report_at(store, _at_venue_in(store, grid), title="测试：网格员待办")
    at = _open(store, "demo_inspector")
    assert not at.exception
    todo = _todo(at)
    row = todo.index[todo["编号"] == eid][0]
    assert todo.loc[row, "待办"] == "受理"
    at = _pick_todo(at, int(row))
    assert at.number_input(key="ev_detail_id").value == eid
    assert "受理" in at.radio[0].options


def test_a_township_leaders_todo_holds_an_accepted_event_to_dispatch_and_not_a_departments_work(store):
    from domain.event_flow import Action
    from services.events import act

    to_dispatch = _report_at(store, _at_venue_in(store), title="测试：待派单")
    act(UnitOfWork(store), event_id=to_dispatch, action=Action.ACCEPT, now=clock.now())
    handled = _dispatched_to(store, "demo_township_department")
    at = _open(store, "demo_township")
    todo = _todo(at)
    steps = dict(zip(todo["编号"].astype(int), todo["待办"], strict=True))
    assert steps[to_dispatch] == "派单"
    assert handled not in steps  # the department's to start, not the leader's


def test_resolving_needs_a_result_and_stores_it_with_its_photos_shown_in_the_timeline(store):
    import io

    from PIL import Image

    from db.models import Attachment, EventTransition
    from domain.event_flow import Action

    eid = _dispatched_to(store, "demo_township_department", started=True)
    at = _open(store, "demo_township_department", eid)
    assert not at.exception
    submit = f"FormSubmitter:act_{eid}-提交"
    at.radio[0].set_value(Action.RESOLVE)
    at.button(key=submit).click().run()  # no result: refused in Chinese, nothing written
    assert any("处置结果" in e.value and "请填写" in e.value for e in at.error)
    with store.connect() as conn:
        assert (
            conn.execute(select(Event.status).where(Event.id == eid)).scalar_one() == EventStatus.IN_PROGRESS
        )
    png = io.BytesIO()
    Image.new("RGB", (40, 30), (200, 30, 30)).save(png, format="PNG")
    result = "已清理占道摊位，并与店主签订门前三包责任书。\n一周后复查无反弹，现场恢复通行。" * 3
    at.radio[0].set_value(Action.RESOLVE)
    at.text_area(key=f"act_result_{eid}_0").set_value(result)
    at.get("file_uploader")[0].set_value(("after.png", png.getvalue(), "image/png"))
    at.button(key=submit).click().run()
    assert not at.exception and not at.error
    assert any(f"已办结：事件 #{eid} 现为“已办结”，附处置照片 1 张" in s.value for s in at.success)
    with store.connect() as conn:
        note, at_ = conn.execute(
            select(EventTransition.note, EventTransition.at).where(
                EventTransition.event_id == eid, EventTransition.action == "resolve"
            )
        ).one()
        photos = conn.execute(select(Attachment.created_at).where(Attachment.event_id == eid)).scalars().all()
    assert note == result and photos == [at_]  # the photo stored with the step, stamped with its moment
    shown = "\n".join(m.value for m in at.markdown)
    assert "处置结果：" in shown and "一周后复查无反弹" in shown and "门前三包责任书" in shown
    assert shown.count("门前三包责任书") >= 3  # the whole result, not cut
    assert [i.captions for i in at.get("image")] == [["处置照片 1"]]  # under the 办结 step
    assert "None" not in shown


def test_a_report_photo_and_a_resolution_photo_of_the_same_second_stay_with_their_own_steps(store):
    """A report filed and resolved within one second: the time cannot tell the photos apart, the step can."""
    import io

    from PIL import Image

    from domain.event_flow import Action
    from services.access import user_scope
    from services.event_views import event_detail
    from services.events import Actor, act
    from services.intake import attach_photo
    from services.resolution import resolve_event

    def png(colour):
        out = io.BytesIO()
        Image.new("RGB", (8, 8), colour).save(out, format="PNG")
        return out.getvalue()

    moment = clock.now()
    with session_factory(store)() as s:
        user = user_by_username(s, "demo_township_department")
    eid = _report_at(store, _at_venue_in(store), title="测试：同一秒", now=moment)
    uow = UnitOfWork(store)
    with uow.begin("test.report_photo"):
        attach_photo(uow.session, eid, png((0, 0, 200)), "image/png", Actor(None, "citizen"), moment)
        uow.commit()
    for action in (Action.ACCEPT, Action.DISPATCH, Action.START):
        act(UnitOfWork(store), event_id=eid, action=action, now=moment, department_id=user.department_id)
    with store.connect() as conn:
        scope = user_scope(conn, user)
    resolved = png((200, 0, 0))
    resolve_event(
        UnitOfWork(store), user, scope, event_id=eid, result="已处理完毕", photos=[resolved], now=moment
    )
    with store.connect() as conn:
        detail = event_detail(conn, scope, eid, user)
    assert detail is not None
    resolve_seq = int(detail.trail.loc[detail.trail["action"] == Action.RESOLVE, "seq"].iloc[0])
    assert len(detail.photos) == 1  # the report's own photo stays with the report
    assert list(detail.step_photos) == [resolve_seq] and len(detail.step_photos[resolve_seq]) == 1


def test_a_bad_photo_refuses_the_resolution_and_writes_nothing(store):
    from db.models import Attachment
    from services.access import user_scope
    from services.resolution import resolve_event

    eid = _dispatched_to(store, "demo_township_department", started=True)
    with session_factory(store)() as s:
        user = user_by_username(s, "demo_township_department")
    with store.connect() as conn:
        scope = user_scope(conn, user)
    import pytest

    from domain.errors import FieldProblems

    with pytest.raises(FieldProblems) as refused:
        resolve_event(
            UnitOfWork(store),
            user,
            scope,
            event_id=eid,
            result="已处理",
            photos=[b"not an image"],
            now=clock.now(),
        )
    assert "处置照片1" in refused.value.problems
    with store.connect() as conn:
        assert (
            conn.execute(select(Event.status).where(Event.id == eid)).scalar_one() == EventStatus.IN_PROGRESS
        )
        assert conn.execute(select(Attachment.id).where(Attachment.event_id == eid)).first() is None


def test_the_rating_shows_in_the_timeline(store):
    from domain.event_flow import Action
    from domain.vocabulary import Rating
    from services.events import act

    eid = _dispatched_to(store, "demo_township_department", started=True)
    act(UnitOfWork(store), event_id=eid, action=Action.RESOLVE, now=clock.now(), note="已处理")
    act(UnitOfWork(store), event_id=eid, action=Action.VERIFY, now=clock.now())
    at = _open(store, "demo_township", eid)
    at.radio[0].set_value(Action.RATE)
    at.selectbox(key=f"act_rating_{eid}").set_value(Rating.BASICALLY)
    at.text_input[0].set_value("回访：群众认可，但希望加快速度")
    at.button(key=f"FormSubmitter:act_{eid}-提交").click().run()
    assert not at.exception and not at.error
    shown = "\n".join(m.value for m in at.markdown)
    assert "满意度：基本满意；回访：群众认可，但希望加快速度" in shown
    assert at.text_input[0].value == ""  # the note box cleared after the action
    assert any("现为“已评价”" in s.value for s in at.success)


def test_several_arrivals_between_refreshes_make_one_toast_naming_the_most_urgent(store):
    from datetime import timedelta

    from domain.vocabulary import Urgency

    at = _open(store, "demo_township")
    assert not at.exception
    later = clock.now() + timedelta(seconds=1)
    here = _at_venue_in(store)
    ids = [
        _report_at(store, here, title="测试：一般", now=later),
        _report_at(store, here, title="测试：特急", urgency=Urgency.CRITICAL, now=later),
        _report_at(store, here, title="测试：紧急", urgency=Urgency.URGENT, now=later),
    ]
    at = at.run()
    assert not at.exception
    toasts = [t.value for t in at.toast]
    assert len(toasts) == 1, toasts
    assert toasts[0].startswith("新事件 ") and "件，最紧急：" in toasts[0]
    assert f"#{ids[1]}：测试：特急（特急" in toasts[0]


def test_a_click_on_any_cell_of_a_list_opens_its_event_and_the_same_cell_again_after_typing(store):
    at = _open(store, "demo_township")
    late = next(d.value for d in at.dataframe if "超期" in d.value.columns and "时限" in d.value.columns)
    row = min(2, len(late) - 1)
    cell = {"selection": {"rows": [], "columns": [], "cells": [[row, "事件"]]}}
    at.session_state["ev_late_pick"] = cell
    at = at.run()
    assert at.number_input(key="ev_detail_id").value == int(late.iloc[row]["编号"])
    other = int(late.iloc[0 if row else 1]["编号"]) if len(late) > 1 else 1
    at = at.number_input(key="ev_detail_id").set_value(other).run()  # typed: the list does not take it back
    assert at.number_input(key="ev_detail_id").value == other
    at.session_state["ev_late_pick"] = cell  # the same cell clicked again
    at = at.run()
    assert at.number_input(key="ev_detail_id").value == int(late.iloc[row]["编号"])


def test_merging_a_flagged_duplicate_says_so_with_the_new_state(store):
    from tests.app.test_duplicate_flag import _two_reports

    dup, original = _two_reports(store)
    at = _open(store, "demo_township", dup)
    at.button(key=f"merge_{dup}").click().run()
    assert not at.exception
    assert any(f"已合并至事件 #{original}" in s.value and "现为“已退回”" in s.value for s in at.success)


def test_a_result_typed_into_the_note_box_is_kept_as_the_result(store):
    from db.models import EventTransition
    from domain.event_flow import Action

    eid = _dispatched_to(store, "demo_township_department", started=True)
    at = _open(store, "demo_township_department", eid)
    at.radio[0].set_value(Action.RESOLVE)
    at.text_input[0].set_value("已修复破损井盖")
    at.button(key=f"FormSubmitter:act_{eid}-提交").click().run()
    assert not at.exception and not at.error
    with store.connect() as conn:
        note = conn.execute(
            select(EventTransition.note).where(
                EventTransition.event_id == eid, EventTransition.action == "resolve"
            )
        ).scalar_one()
    assert note == "已修复破损井盖"
