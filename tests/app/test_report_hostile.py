"""The 随手拍 page under AppTest with input a careless or curious visitor gives (review B)."""

import pytest
from sqlalchemy import func, select

from db.models import Event
from tests.app.conftest import page


def _events(engine) -> int:
    with engine.connect() as conn:
        return conn.execute(select(func.count()).select_from(Event)).scalar_one()


def _fill(at, *, title, text="堆了很多纸箱，影响通行", category="城镇管理"):
    next(s for s in at.selectbox if s.label == "事项类别").set_value(category)
    at.text_input[0].input(title)
    at.text_area[0].input(text)
    return at.button[0].click().run()


@pytest.mark.parametrize("title", ["\u200b\u200b", "\u3000\u200d\u3000", "\u200f\u202e", "\ufeff \u2060"])
def test_a_title_of_only_invisible_characters_is_refused_as_empty(store, title):
    """A title of zero-width spaces, ideographic spaces or direction marks passed str.strip() and was
    stored: an event whose title shows nothing on every list."""
    before = _events(store)
    at = _fill(page("pages/report.py").run(), title=title)
    assert any("标题" in e.value and "请填写标题" in e.value for e in at.error), [e.value for e in at.error]
    assert _events(store) == before


def test_the_possible_duplicates_shown_to_anyone_carry_no_phone_or_house_number(store):
    """The page needs no login, and its list of possible duplicates showed other reporters' titles as they
    typed them: a visitor choosing a place and a category read their phone numbers."""
    at = _fill(
        page("pages/report.py").run(), title="紫荆路88号3幢门口垃圾 回拨13812345678", category="生态环境"
    )
    if at.warning:
        at = next(b for b in at.button if b.label == "不是同一件事，仍然新建").click().run()
    assert any("上报成功" in s.value for s in at.success)
    visitor = _fill(page("pages/report.py").run(), title="垃圾", category="生态环境")
    listed = " ".join(m.value for m in visitor.markdown if "距此约" in m.value)
    assert "门口垃圾" in listed  # the report is offered as a possible duplicate
    assert "12345678" not in listed and "88号" not in listed, listed
