"""The inspector's unsaved inspection form, kept through a reload (issue 17, decision 0017).

The inspection form is an ``st.form``: what is ticked and typed stays in the browser until 保存, so the
server cannot see it to keep it. :func:`keep_inspection` adds a small script beside the open form that
reads the form's answers from the page (the checklist, the hazards' level and description, the note;
not photos, dates or the confirmed-fixed list) and sends them, a moment after each change, to
``POST /auth/draft`` (serve.py) with Streamlit's XSRF header; the store keeps them on the browser's
login session (``login_sessions.draft_json``). After a reload (a backgrounded phone tab, F5) the login
cookie brings the session back and :func:`restore_inspection` reopens the venue with those answers.
A save (:func:`forget`), leaving the venue, a logout or the session's end drops the draft.

Only under serve.py (a login session in the store); with ``streamlit run app.py`` nothing is kept.
"""

from __future__ import annotations

import json
import re
from datetime import date

import streamlit as st
import streamlit.components.v1 as components

from components import store
from components.auth import SESSION_KEY, cookie_sessions, route
from components.inspection_forms import MAX_NEW_HAZARDS, OUTCOMES
from domain.vocabulary import HazardSeverity
from services import sessions

PAGE = "my_day"
_RESTORED = "_draft_restored"  # this browser session has looked for a draft once
_NOTICE = "_draft_notice"
#: Draft keys as the page names its widgets (components.inspection_forms), and how each is restored.
_KEYS = re.compile(r"^md_(nh|item|hz_sev|hz_desc|note)_(\d+)(?:_(\w+))?$")
_SEVERITIES = [s.value for s in HazardSeverity]
_MAX_TEXT = {"hz_desc": 500, "note": 1000}

_SCRIPT = """
<script>
(function () {
  var host = window.parent, doc = host.document;
  host.__cockpitDraft = %(config)s;
  if (host.__cockpitDraftInstalled) { return; }
  host.__cockpitDraftInstalled = true;
  var timer = null;
  function answers(venue) {
    var values = {}, found = false;
    doc.querySelectorAll("[class*='st-key-md_']").forEach(function (box) {
      var key = Array.from(box.classList).filter(function (c) { return c.indexOf("st-key-md_") === 0; })[0];
      if (!key) { return; }
      key = key.slice("st-key-".length);
      var m = key.match(/^md_(nh|item|hz_sev|hz_desc|note)_(\\d+)/);
      if (!m || Number(m[2]) !== venue) { return; }
      found = true;
      var radios = box.querySelectorAll("input[type=radio]");
      if (radios.length) {
        radios.forEach(function (r, i) { if (r.checked) { values[key] = i; } });
        return;
      }
      var field = box.querySelector("textarea, input[type=text], input:not([type])");
      if (field && field.value) { values[key] = field.value; }
    });
    return found ? values : null;
  }
  function send(keepalive) {
    var cfg = host.__cockpitDraft;
    if (!cfg || !cfg.venue) { return; }
    var values = answers(cfg.venue);
    if (!values) { return; }
    var xsrf = (doc.cookie.match(/(?:^|; )_streamlit_xsrf=([^;]*)/) || [])[1] || "";
    host.fetch(cfg.url, {
      method: "POST", credentials: "same-origin", keepalive: !!keepalive,
      headers: {"Content-Type": "application/json", "X-Xsrftoken": decodeURIComponent(xsrf)},
      body: JSON.stringify({page: cfg.page, venue: cfg.venue, day: cfg.day, values: values})
    }).catch(function () {});
  }
  function later() { clearTimeout(timer); timer = setTimeout(function () { send(false); }, 600); }
  ["input", "change", "click"].forEach(function (e) { doc.addEventListener(e, later, true); });
  host.addEventListener("pagehide", function () { send(true); });
  doc.addEventListener("visibilitychange", function () { if (doc.visibilityState === "hidden") { send(true); } });
})();
</script>
"""


def keep_inspection(venue_id: int, day: date) -> None:
    """Beside the open inspection form of ``venue_id``: send its answers to the store as they change."""
    if not cookie_sessions() or st.session_state.get(SESSION_KEY) is None:
        return
    config = {"page": PAGE, "venue": int(venue_id), "day": day.isoformat(), "url": route("/auth/draft")}
    components.html(_SCRIPT % {"config": json.dumps(config)}, height=0)


def forget() -> None:
    """Drop the kept answers (the inspection was saved, or the inspector left the venue)."""
    session_id = st.session_state.get(SESSION_KEY)
    if session_id is not None:
        sessions.save_draft(store.engine(), int(session_id), None)


def restore_inspection(venue_key: str, today: date) -> None:
    """Once per browser session: reopen the venue whose inspection was left unsaved today, with the
    answers kept for this login session, and say so."""
    notice = st.session_state.pop(_NOTICE, None)
    if notice:
        st.info(notice)
    session_id = st.session_state.get(SESSION_KEY)
    if session_id is None or st.session_state.get(_RESTORED):
        return
    st.session_state[_RESTORED] = True
    with store.reader() as conn:
        kept = sessions.draft(conn, int(session_id))
    if not kept or kept.get("page") != PAGE or kept.get("day") != today.isoformat():
        return
    try:
        venue = int(kept["venue"])
    except (KeyError, TypeError, ValueError):
        return
    restored, hazards = 0, False
    for key, raw in dict(kept.get("values") or {}).items():
        value = _value(str(key), raw, venue)
        if value is not None:
            st.session_state[str(key)] = value
            restored += 1
            hazards = hazards or str(key).startswith("md_hz_")
    st.session_state[venue_key] = venue
    st.session_state[_NOTICE] = restored_notice(restored, hazards)
    st.rerun()


def restored_notice(restored: int, hazards: bool) -> str:
    """What the inspector is told after a reload brought the answers back. Photos and dates are not
    kept in the draft: a hazard among them is said to need its photo and 整改期限 again (it was saved
    without its photo, or with the default deadline); without one, the visit's own photos are."""
    if hazards:
        return f"已恢复上次未保存的检查记录（{restored} 项）；隐患的现场照片和整改期限未保存，请重新选择并核对后保存。"
    return f"已恢复上次未保存的检查记录（{restored} 项）；照片未保存，如需留存请重新选择，核对后保存。"


def _value(key: str, raw: object, venue: int) -> object | None:
    """The widget value a kept answer stands for, or None when it is not one of this venue's answers."""
    m = _KEYS.match(key)
    if m is None or int(m.group(2)) != venue:
        return None
    kind = m.group(1)
    if kind in _MAX_TEXT:
        return str(raw)[: _MAX_TEXT[kind]] if isinstance(raw, str) and raw.strip() else None
    if not isinstance(raw, int) or isinstance(raw, bool) or raw < 0:
        return None
    options: list = {"nh": list(range(MAX_NEW_HAZARDS + 1)), "item": OUTCOMES, "hz_sev": _SEVERITIES}[kind]
    return options[raw] if raw < len(options) else None
