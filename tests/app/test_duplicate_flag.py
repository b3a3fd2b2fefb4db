"""疑似重复 on the events page: a flagged report names its likely original, and a leader merges it."""

from datetime import timedelta

from sqlalchemy import select

from db.engine import session_factory
from db.models import Event, Venue
from db.uow import UnitOfWork
from domain.intake import ReportForm
from domain.vocabulary import EventSource, EventStatus
from services import clock
from services.auth import user_by_username
from services.intake import submit_report
from tests.app.conftest import page


def _two_reports(engine) -> tuple[int, int]:
    """Two 随手拍 reports 10 m apart at a demo venue: the second is flagged."""
    with engine.connect() as conn:
        lon, lat = conn.execute(select(Venue.lon, Venue.lat).order_by(Venue.id.desc())).first()
    now = clock.now()

    def report(dx, at):
        form = ReportForm("livelihood", "测试：路灯不亮", "", lon + dx, lat)
        return submit_report(UnitOfWork(engine), form, now=at, source=EventSource.GRID_WORKER)

    report(0.0, now - timedelta(minutes=5))
    dup = report(0.0001, now)
    assert dup.duplicate_of_id is not None
    return dup.id, dup.duplicate_of_id


def _open(engine, username, event_id):
    with session_factory(engine)() as s:
        user = user_by_username(s, username)
    at = page("pages/events.py")
    at.session_state["current_user"] = user
    at.run()
    at.number_input(key="ev_detail_id").set_value(event_id).run()
    return at


def test_a_flagged_report_shows_its_likely_original_and_a_leader_merges_it(store):
    dup, original = _two_reports(store)
    at = _open(store, "demo_township", dup)
    assert not at.exception
    assert any(f"疑似重复：可能与事件 #{original}" in w.value for w in at.warning)
    at.button(key=f"merge_{dup}").click().run()
    assert not at.exception and not at.error
    with store.connect() as conn:
        status, into = conn.execute(select(Event.status, Event.merged_into_id).where(Event.id == dup)).one()
    assert (status, into) == (EventStatus.REJECTED, original)
    at = _open(store, "demo_township", dup)
    assert any(f"已合并至事件 #{original}" in c.value for c in at.caption)


def test_a_merge_clicked_after_a_colleague_accepted_the_report_is_told_it_moved_and_nothing_is_merged(store):
    """The page drew 合并 on a report still 已上报; a colleague 受理s it before the click. The click's run read
    the report again, found it 已受理, drew no button and said nothing: the merge was dropped in silence."""
    from domain.event_flow import Action
    from services.events import act

    dup, _ = _two_reports(store)
    at = _open(store, "demo_township", dup)
    act(UnitOfWork(store), event_id=dup, action=Action.ACCEPT, now=clock.now())  # the colleague, first
    at.button(key=f"merge_{dup}").click().run()
    assert not at.exception
    with store.connect() as conn:
        status, into = conn.execute(select(Event.status, Event.merged_into_id).where(Event.id == dup)).one()
    assert (status, into) == (EventStatus.ACCEPTED, None)
    assert any("已被他人处理（当前状态：已受理）" in e.value and "未合并" in e.value for e in at.error), [
        e.value for e in at.error
    ]
