"""Entry point: page config, login, and the role-filtered navigation of the township digital cockpit.

``make run`` serves it through ``serve.py`` (decision 0017), which adds the login-cookie routes; run
alone (``streamlit run app.py``) a login lasts as long as the browser tab.
"""

from __future__ import annotations

from pathlib import Path

import streamlit as st

from components import cached
from components.auth import (
    citizen_links,
    end_of_run,
    landing_page,
    login_form,
    logout,
    needs_password_change,
    password_change_required,
    verified_current_user,
)
from components.connection import watch_connection
from components.errors import boundary
from domain.access import CurrentUser
from services.personal_data import redact_logs

redact_logs()  # no log line carries a phone number, whoever writes it (PIPL)
st.set_page_config(page_title="乡镇数字驾驶舱", page_icon="static/favicon.png", layout="wide")
# Phones: titles that fit 360 px, no English input hints, nothing wider than the screen.
st.html(Path(__file__).resolve().parent / "static" / "phone.css")

# Every page is registered (stable URLs); the menu shows only those the role may open, and a page
# opened by URL without the right refuses itself (components.auth.require_page).
PAGES = {
    "home": ("pages/home.py", "总览", ":material/home:"),
    "risk_map": ("pages/risk_map.py", "五色图", ":material/map:"),
    "events": ("pages/events.py", "事件流", ":material/list_alt:"),
    "report": ("pages/report.py", "随手拍上报", ":material/photo_camera:"),
    "inspections": ("pages/inspections.py", "平安检查", ":material/fact_check:"),
    "my_day": ("pages/my_day.py", "我的今日", ":material/today:"),
    "big_screen": ("pages/big_screen.py", "指挥大屏", ":material/tv:"),
    "admin": ("pages/admin.py", "账号管理", ":material/manage_accounts:"),
    "boundaries": ("pages/boundaries.py", "区划导入", ":material/map_search:"),
    "track": ("pages/track.py", "进度查询", ":material/search:"),
}
# Pages that decide access themselves: the citizens' channel (随手拍) and its follow-up (进度查询) are
# open to everyone; the wall screen accepts a revocable read-only display token instead of a login.
PUBLIC = {"report", "track", "big_screen"}
#: Pages for citizens only in the menu: staff follow events on 事件流.
NOT_IN_STAFF_MENU = {"track"}


def _root() -> None:
    """The root URL is no page of its own: run() sends a visitor to the login form and a user to the
    home of their role (/home, /my_day, /events), so every page, the overview too, has its own URL."""


def pages(user: CurrentUser | None) -> dict[str, st.Page]:
    """Every page at its stable URL; in the menu only those ``user`` may open (none for a visitor)."""
    registered = {
        key: st.Page(
            path,
            title=title,
            icon=icon,
            url_path=key,
            visibility="visible"
            if user is not None and user.may_open(key) and key not in NOT_IN_STAFF_MENU
            else "hidden",
        )
        for key, (path, title, icon) in PAGES.items()
    }
    root = st.Page(_root, title="乡镇数字驾驶舱", url_path="start", default=True, visibility="hidden")
    return {"": root, **registered}


def run() -> None:
    """Login (or the first administrator), the forced password change, the role's menu, then the page."""
    user = verified_current_user(hand_to_page=True)  # the session's claim checked against the store (0007)
    menu = user is not None and not needs_password_change(user)
    registered = pages(user if menu else None)
    # Streamlit's own menu: on a phone it closes once a page is chosen.
    nav = st.navigation(list(registered.values()), position="sidebar" if menu else "hidden")
    page = nav.url_path  # "" at the root
    watch_connection()  # 断网提示 on every page, the citizen's too
    if user is None:
        if page in PUBLIC:
            nav.run()
        else:
            login_form(page)
            citizen_links()
        st.stop()
    if password_change_required(user):  # an administrator's initial or reset password: 修改密码 only
        st.stop()
    if not page:  # the root (a bookmark, the phone's home screen, the logo): the role's home
        st.switch_page(registered[landing_page(user)])
    with st.sidebar:
        st.markdown(f"**{user.display_name}**  \n{user.role.label}")
        if st.button("退出登录"):
            logout(clear_cookie=True)
            st.switch_page(registered[""])  # the next person logs in to their own home, not this page
    with boundary(page):  # whatever goes wrong, the person reads what to do (no trace)
        cached.follow_other_processes()  # another replica's or the runner's writes clear this one's reads
        nav.run()


try:
    with boundary("app"):
        run()
finally:
    end_of_run()  # the check handed to the page never outlives this run
