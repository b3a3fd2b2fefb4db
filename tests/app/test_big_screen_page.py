"""The wall screen under AppTest: a display token opens it read-only; a revoked one does not."""

from datetime import datetime

from services import clock
from services.display import create_token, list_tokens, revoke_token, rotation_index
from tests.app.conftest import page


def _screen(token: str | None, area: str = "330802001"):
    at = page("pages/big_screen.py")
    if token:
        at.query_params["token"] = token
    at.query_params["area"] = area
    return at.run()


def test_a_display_token_opens_every_panel_without_a_login(store):
    with store.begin() as conn:
        token = create_token(conn, area_code="330802", label="柯城区指挥大厅", now=clock.now())
    at = _screen(token)
    assert not at.exception
    html = " ".join(m.value for m in at.markdown)
    for panel in ("bs-kpis", "bs-map", "bs-flow", "bs-ticker", "bs-alerts", "bs-rank"):
        assert panel in html
    assert "今日事件" in html and "红码场所" in html
    assert at.get("deck_gl_json_chart")


def test_a_revoked_token_shows_the_login_form_instead(store):
    with store.begin() as conn:
        token = create_token(conn, area_code="330802", label="临时大屏", now=clock.now())
        token_id = next(t["id"] for t in list_tokens(conn) if t["label"] == "临时大屏")
        assert revoke_token(conn, token_id, clock.now())
    at = _screen(token)
    assert [t.label for t in at.text_input] == ["用户名", "密码"]
    assert not at.get("deck_gl_json_chart")


def test_a_token_cannot_show_an_area_outside_its_own(store):
    with store.begin() as conn:
        token = create_token(conn, area_code="330802001", label="双港街道大屏", now=clock.now())
    at = _screen(token, area="330881")
    assert "不在此大屏的管辖范围内" in at.error[0].value


def test_the_playlist_keeps_its_place_by_the_clock():
    t = datetime(2026, 11, 22, 9, 0, 0)
    assert rotation_index(t, 30, 6) == rotation_index(t.replace(second=29), 30, 6)
    assert rotation_index(t.replace(second=30), 30, 6) == (rotation_index(t, 30, 6) + 1) % 6
