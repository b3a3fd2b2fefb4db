"""The 随手拍 page under AppTest: a report lands in its grid; bad input is refused field by field."""

from sqlalchemy import func, select

from db.models import Event
from tests.app.conftest import page


def _events(engine) -> int:
    with engine.connect() as conn:
        return conn.execute(select(func.count()).select_from(Event)).scalar_one()


def _fill(at, *, category="城镇管理", title="店门口占道堆物", lon=None, lat=None):
    if lon is not None:
        at.number_input[0].set_value(lon)
        at.number_input[1].set_value(lat)
    if category:
        at.selectbox[0].set_value(category)
    at.text_input[0].input(title)
    at.text_area[0].input("堆了很多纸箱，影响通行")
    return at.button[0].click().run()


def test_a_citizen_without_login_reports_a_problem_and_gets_its_number(store):
    before = _events(store)
    at = _fill(page("pages/report.py").run())
    assert not at.exception
    # Either stored at once, or offered as a possible duplicate of a nearby open event.
    if at.warning:
        at = next(b for b in at.button if b.label == "不是同一件事，仍然新建").click().run()
    assert any("上报成功" in s.value for s in at.success)
    assert _events(store) == before + 1


def test_missing_fields_are_listed_and_nothing_is_stored(store):
    before = _events(store)
    at = _fill(page("pages/report.py").run(), category=None, title="")
    errors = " ".join(e.value for e in at.error)
    assert "事项类别" in errors and "标题" in errors
    assert _events(store) == before


def test_a_location_outside_every_grid_is_refused(store):
    before = _events(store)
    at = _fill(page("pages/report.py").run(), lon=117.0, lat=28.0)
    assert any("不在任何网格内" in e.value for e in at.error)
    assert _events(store) == before
