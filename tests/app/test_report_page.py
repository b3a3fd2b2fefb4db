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
        next(s for s in at.selectbox if s.label == "事项类别").set_value(category)
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
    assert any("上报成功" in s.value and "未附照片" in s.value for s in at.success)  # said, so a photo
    assert _events(store) == before + 1  # the widget refused is not believed sent


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


def _success_number(at) -> str:
    done = [s.value for s in at.success if "上报成功" in s.value]
    assert done, [e.value for e in at.error]
    return done[0]


def _new_anyway(at):
    """Past the possible-duplicate offer (the page shows it for the form's own earlier report too)."""
    if at.warning:
        at = next(b for b in at.button if b.label == "不是同一件事，仍然新建").click().run()
    return at


def test_the_same_report_sent_again_from_one_session_returns_the_same_number_and_stores_once(store):
    before = _events(store)
    at = _new_anyway(_fill(page("pages/report.py").run(), title="测试：重复点击提交"))
    first = _success_number(at)
    at = _new_anyway(_fill(at, title="测试：重复点击提交"))  # the emptied form, filled and sent the same
    assert _success_number(at) == first
    assert _events(store) == before + 1


def test_a_new_report_after_a_success_gets_its_own_number(store):
    at = _new_anyway(_fill(page("pages/report.py").run(), title="测试：第一件"))
    first = _success_number(at)
    at = _new_anyway(_fill(at, title="测试：第二件"))  # the form is empty again after a success
    assert _success_number(at) != first


def test_a_sixth_report_from_one_browser_session_is_refused_saying_when_to_try_again(store):
    at = page("pages/report.py").run()
    for k in range(5):
        at = _new_anyway(_fill(at, title=f"测试：频率{k}"))
        _success_number(at)
    before = _events(store)
    at = _new_anyway(_fill(at, title="测试：频率5"))
    errors = " ".join(e.value for e in at.error)
    assert "提交过于频繁：本设备 10 分钟内最多上报 5 次，请于" in errors and "后再试" in errors
    assert _events(store) == before


def test_typed_coordinates_move_the_place_shown_and_the_report_lands_where_it_was_shown(store):
    """经度/纬度 typed by hand were read only on 提交: 所在位置 still named the map's grid while the report
    went to another one (found on a new county's first day)."""
    from db.models import AdminUnit
    from domain.vocabulary import AdminLevel

    with store.connect() as conn:
        grids = conn.execute(
            select(AdminUnit.id, AdminUnit.name, AdminUnit.centroid_lon, AdminUnit.centroid_lat)
            .where(AdminUnit.level == AdminLevel.GRID)
            .order_by(AdminUnit.code.desc())
            .limit(1)
        ).all()
    target = grids[0]
    at = page("pages/report.py").run()
    assert target.name not in " ".join(m.value for m in at.markdown)  # the map opens elsewhere
    at.number_input[0].set_value(target.centroid_lon)
    at.number_input[1].set_value(target.centroid_lat).run()
    where = " ".join(m.value for m in at.markdown if "所在位置" in m.value)
    assert target.name in where
    at = _new_anyway(_fill(at))
    assert target.name in _success_number(at)
    with store.connect() as conn:
        last = conn.execute(select(Event.grid_id).order_by(Event.id.desc()).limit(1)).scalar_one()
    assert last == target.id
