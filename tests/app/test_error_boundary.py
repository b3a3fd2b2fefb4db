"""No traceback reaches a person: every page, with its store gone, says in Chinese what to do."""

from __future__ import annotations

import pytest
from streamlit.testing.v1 import AppTest

from domain.access import CurrentUser
from domain.vocabulary import Role
from tests.app.conftest import ROOT

PAGES = ["home", "risk_map", "events", "report", "inspections", "my_day", "big_screen", "admin"]
ADMIN = CurrentUser(1, "demo_admin", "管理员", Role.ADMIN, 1)


@pytest.fixture
def lost_store(tmp_path, monkeypatch):
    """A store that cannot be opened (its path is a folder): what a lost disk or mount looks like."""
    gone = tmp_path / "cockpit.db"
    gone.mkdir()
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{gone}")


@pytest.mark.parametrize("page", PAGES)
def test_a_page_whose_store_is_gone_shows_what_to_do_and_an_incident_id(lost_store, page, caplog):
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=30)
    at.session_state["current_user"] = ADMIN
    at.switch_page(f"pages/{page}.py").run()
    assert not at.exception, [e.value for e in at.exception]
    shown = " ".join(e.value for e in at.error)
    assert "与数据库的连接中断" in shown and "事件编号" in shown
    assert any(b.label == "重试" for b in at.button)
    incident = shown.split("事件编号：", 1)[1][:8]
    assert any(incident in r.getMessage() and r.exc_info for r in caplog.records if r.name == "faults")
