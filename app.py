"""Entry point: page config, login, and the role-filtered navigation of the township digital cockpit."""

from __future__ import annotations

import streamlit as st

from components.auth import end_of_run, login_form, logout, verified_current_user
from services.personal_data import redact_logs

redact_logs()  # no log line carries a phone number, whoever writes it (PIPL)
st.set_page_config(page_title="乡镇数字驾驶舱", page_icon="static/favicon.png", layout="wide")

# Every page is registered (stable URLs); the menu shows only those the role may open, and a page
# opened by URL without the right refuses itself (components.auth.require_page).
PAGES = {
    "home": st.Page("pages/home.py", title="总览", icon=":material/home:", url_path="home", default=True),
    "risk_map": st.Page("pages/risk_map.py", title="五色图", icon=":material/map:", url_path="risk_map"),
    "events": st.Page("pages/events.py", title="事件流", icon=":material/list_alt:", url_path="events"),
    "report": st.Page("pages/report.py", title="随手拍上报", icon=":material/photo_camera:", url_path="report"),
    "inspections": st.Page("pages/inspections.py", title="平安检查", icon=":material/fact_check:", url_path="inspections"),
    "my_day": st.Page("pages/my_day.py", title="我的今日", icon=":material/today:", url_path="my_day"),
    "big_screen": st.Page("pages/big_screen.py", title="指挥大屏", icon=":material/tv:", url_path="big_screen"),
}
# Pages that decide access themselves: the citizens' channel (随手拍) is open to everyone; the wall
# screen accepts a revocable read-only display token instead of a login.
PUBLIC = {"report", "big_screen"}

nav = st.navigation(list(PAGES.values()), position="hidden")
user = verified_current_user(hand_to_page=True)  # the session's claim checked against the store (decision 0007)
if user is None:
    if nav.url_path in PUBLIC:
        nav.run()
    else:
        login_form()
    st.stop()

with st.sidebar:
    st.markdown(f"**{user.display_name}**  \n{user.role.label}")
    for key, page in PAGES.items():
        if user.may_open(key):
            st.page_link(page)
    if st.button("退出登录"):
        logout()
        st.rerun()
try:
    nav.run()
finally:
    end_of_run()  # the check handed to the page never outlives this run
