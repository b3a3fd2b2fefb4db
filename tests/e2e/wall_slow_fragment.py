"""A fragment as slow as the wall's at city scale (seconds per refresh), under the wall's own style;
``?plain=1`` leaves the style out (Streamlit's default: elements of a running fragment fade out after
0.5 s). Served by tests/e2e/test_big_screen.py only."""

import time

import streamlit as st

from components import wall

if st.query_params.get("plain") != "1":
    st.markdown(wall.STYLE, unsafe_allow_html=True)


@st.fragment(run_every=3)
def panel() -> None:
    time.sleep(2.0)  # the refresh's work, before any element of the fragment is sent again
    st.markdown(
        f"<div class='bs-panel' data-testid='slow-panel'>{time.time():.0f}</div>", unsafe_allow_html=True
    )


panel()
