"""进度查询 under AppTest: a citizen finds the status of their report by its number and the last four digits
of the phone they gave; nothing personal is shown; a wrong guess says the same as an unknown number and
failed guesses are limited; a closed report shows its reply and rating. And 随手拍's form is empty again
after a report went through."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from db.models import Department, Event
from db.uow import UnitOfWork
from domain.event_flow import Action
from domain.intake import ReportForm
from domain.vocabulary import EventCategory, Rating
from services import clock, tracking
from services.events import act
from services.intake import submit_report
from tests.app.conftest import page
from tests.security.conftest import shown_text

PHONE = "13912345678"


@pytest.fixture(autouse=True)
def fresh_limits():
    tracking.reset_limits()
    yield
    tracking.reset_limits()


def reported(engine, title: str, phone: str = PHONE, merge_into: int | None = None) -> int:
    """A 随手拍 report at a grid's centre of the demo store, through the use case."""
    with engine.connect() as conn:
        lon, lat = conn.execute(select(Event.lon, Event.lat).order_by(Event.id)).first()
    form = ReportForm(
        category=EventCategory.URBAN.value,
        title=title,
        description="路灯不亮，晚上看不见路",
        lon=lon,
        lat=lat,
        reporter_name="王小明",
        reporter_phone=phone,
    )
    return submit_report(UnitOfWork(engine), form, now=clock.now(), merge_into=merge_into).id


def ask(number, tail):
    at = page("pages/track.py").run()
    at.text_input[0].input(str(number))
    at.text_input[1].input(tail)
    return at.button[0].click().run()


def test_a_citizen_finds_the_status_by_number_and_phone_digits_and_sees_nothing_personal(store):
    eid = reported(store, "测试：进度查询路灯")
    at = ask(eid, PHONE[-4:])
    assert not at.exception and not at.error
    text = shown_text(at)
    assert f"事件 \\#{eid}" in text and "当前状态：已上报" in text and "处理中" in text
    assert "办理层级" in text and "尚未派单" in text
    for personal in ("王小明", PHONE, PHONE[:3], "路灯不亮", "测试：进度查询路灯"):
        assert personal not in text


def test_a_wrong_phone_and_an_unknown_number_get_the_same_answer(store):
    eid = reported(store, "测试：进度查询错号")
    wrong = ask(eid, "0000")
    unknown = ask(10**9, PHONE[-4:])
    assert [e.value for e in wrong.error] == [e.value for e in unknown.error] == [tracking.NOT_FOUND]
    assert "当前状态" not in shown_text(wrong)


def test_bad_input_names_each_field(store):
    at = ask("一二三", "12")
    errors = " ".join(e.value for e in at.error)
    assert "事件编号：" in errors and "手机号后四位：" in errors


def test_after_five_wrong_guesses_at_one_report_even_the_right_digits_wait(store):
    eid = reported(store, "测试：进度查询限次")
    for guess in ("0001", "0002", "0003", "0004", "0005"):
        assert [e.value for e in ask(eid, guess).error] == [tracking.NOT_FOUND]
    assert [e.value for e in ask(eid, PHONE[-4:]).error] == [tracking.TOO_MANY]
    other = reported(store, "测试：进度查询另一件", phone="13700001234")
    assert not ask(other, "1234").error  # another report is not held up


def test_a_closed_report_shows_the_department_its_reply_with_phones_masked_and_the_rating(store):
    eid = reported(store, "测试：进度查询办结", phone="13688889999")
    with store.connect() as conn:
        department, name = conn.execute(
            select(Department.id, Department.name).order_by(Department.id)
        ).first()
    now = clock.now()
    for step in (
        {"action": Action.ACCEPT},
        {"action": Action.DISPATCH, "department_id": department},
        {"action": Action.START},
        {"action": Action.RESOLVE, "note": "已修复紫荆路88号3幢路灯，如有问题请联系 13812345678"},
        {"action": Action.VERIFY},
        {"action": Action.RATE, "rating": Rating.SATISFIED},
    ):
        act(UnitOfWork(store), event_id=eid, now=now, **step)
    text = shown_text(ask(eid, "9999"))
    assert "当前状态：已评价" in text and "已办结" in text and f"处置部门：{name}" in text
    assert "已修复紫荆路" in text and "138\\*\\*\\*\\*5678" in text and "13812345678" not in text
    assert "88号" not in text and "3幢" not in text  # the exact address stays inside, as Open311's
    assert "评价：满意" in text


def test_a_report_merged_into_another_is_followed_through_the_one_it_joined(store):
    first = reported(store, "测试：进度查询原件", phone="13511112222")
    second = reported(store, "测试：进度查询同一件", phone="13533334444", merge_into=first)
    for number in (first, second):  # the number shown at submission (the target) or the report's own
        text = shown_text(ask(number, "4444"))
        assert "当前状态：已上报" in text and "13533334444" not in text
    assert f"并入事件 #{first}" in shown_text(ask(second, "4444"))


def test_the_open311_shape_carries_no_personal_field(store):
    eid = reported(store, "测试：进度查询接口")
    with store.connect() as conn:
        found = tracking.lookup(conn, str(eid), PHONE[-4:], now=clock.now(), client="test")
    request = tracking.as_open311(found)
    assert request["service_request_id"] == str(eid) and request["status"] == "open"
    assert request["requested_datetime"].endswith("+08:00")
    assert not {"address", "lat", "long", "phone", "first_name", "last_name", "email"} & set(request)


def test_the_report_form_is_empty_again_after_a_report_went_through(store):
    at = page("pages/report.py").run()
    next(s for s in at.selectbox if s.label == "事项类别").set_value("城镇管理")
    at.text_input[0].input("测试：提交后清空")
    at.text_area[0].input("堆了很多纸箱，影响通行")
    at.text_input[2].input(PHONE)
    at = at.button[0].click().run()
    if at.warning:  # a nearby open report of the same kind: a new one anyway
        at = next(b for b in at.button if b.label == "不是同一件事，仍然新建").click().run()
    assert any("上报成功" in s.value and "进度查询" in s.value for s in at.success)
    assert [t.value for t in at.text_input] == ["", "", ""] and at.text_area[0].value == ""
    assert next(s for s in at.selectbox if s.label == "事项类别").value is None


def test_full_width_digits_from_a_chinese_input_method_find_the_report_and_a_superscript_is_refused(store):
    """１２３４ (full-width, as a Chinese input method types them) was compared as typed and never matched;
    a number such as ² passed isdigit() and then failed in int() (an incident instead of an answer)."""
    phone = "13700002468"  # its own number: 随手拍 limits reports per phone
    eid = reported(store, "测试：全角数字查询", phone=phone)
    wide = str.maketrans("0123456789", "０１２３４５６７８９")
    at = ask(str(eid).translate(wide), phone[-4:].translate(wide))
    assert not at.exception and not at.error
    assert f"事件 \\#{eid}" in shown_text(at)
    at = ask("²", phone[-4:])  # read as 2, as NFKC reads it: answered like any other number
    assert not at.exception
    assert at.error and not any("事件编号：" in e.value for e in at.error) and "incident" not in str(at.error)
    assert not any("意外错误" in e.value for e in at.error), [e.value for e in at.error]


def test_the_client_limit_counts_the_address_the_proxy_adds_not_one_the_client_writes():
    """Behind the proxy on this machine the last X-Forwarded-For entry is the proxy's own; a client that
    writes a new first entry each time stays the same client (it dodged the limit before)."""
    a = tracking.client_key("127.0.0.1", "1.1.1.1, 203.0.113.9")
    b = tracking.client_key("127.0.0.1", "2.2.2.2, 203.0.113.9")
    assert a == b
    assert a != tracking.client_key("127.0.0.1", "1.1.1.1, 203.0.113.10")
    assert tracking.client_key("198.51.100.7", "9.9.9.9") == tracking.client_key("198.51.100.7", None)
