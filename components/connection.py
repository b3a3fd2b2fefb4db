"""断网提示: a banner across the top of every page while the browser has lost its connection to the app.

Streamlit greys the page out when its websocket drops and says so only in a small status in a corner,
which a phone does not show: an inspector on a weak signal tapped 保存 on a greyed form, nothing happened
and nothing said why (the answers stay in the form; the tap is lost). The app's root carries the
connection's state (``data-test-connection-state``); a script installed once in the page's own window
watches it and shows the banner after a moment without a connection, and hides it when it is back.

Streamlit's own English dialog (Connection error …) is hidden: the banner says it in Chinese.
The script is built in the page's window (``new host.Function``), so it outlives the hidden frame that
installs it; nothing is fetched (an offline intranet).
"""

from __future__ import annotations

import json

import streamlit as st
import streamlit.components.v1 as components

#: What the banner says: what happened, that nothing typed is lost, what to do once it is back.
MESSAGE = "网络连接已断开，正在重新连接……已填写的内容仍在页面上；连接恢复后，请再点一次“保存”或“提交”。"
#: A drop shorter than this (a page change, a server restart) shows nothing.
DELAY_MS = 1500

_WATCH = """
var doc = document, banner = null, timer = null;
function lost() {
  var app = doc.querySelector("[data-testid=stApp]");
  var state = app && app.getAttribute("data-test-connection-state");
  return !!state && state !== "CONNECTED";
}
function show() {
  if (banner) { return; }
  banner = doc.createElement("div");
  banner.setAttribute("data-testid", "connection-lost");
  banner.setAttribute("role", "alert");
  banner.textContent = MESSAGE;
  banner.style.cssText = "position:fixed;top:0;left:0;right:0;z-index:1000000;padding:10px 14px;" +
    "background:#c0392b;color:#fff;font-size:15px;line-height:1.5;text-align:center";
  doc.body.appendChild(banner);
}
function hideEnglish() {
  // Streamlit's own "Connection error / Streamlit server is not responding" dialog: the banner says it
  doc.querySelectorAll("[data-testid=stDialog]").forEach(function (d) {
    if (/Connection error|not responding/.test(d.textContent || "")) { d.style.display = "none"; }
  });
}
function check() {
  hideEnglish();
  if (lost()) {
    if (!timer && !banner) { timer = setTimeout(function () { timer = null; if (lost()) { show(); } }, DELAY); }
  } else {
    if (timer) { clearTimeout(timer); timer = null; }
    if (banner) { banner.remove(); banner = null; }
  }
}
new MutationObserver(check).observe(doc.body, {
  attributes: true, subtree: true, attributeFilter: ["data-test-connection-state"]
});
new MutationObserver(check).observe(doc.body, {childList: true});  // a dialog is added under <body>
check();
"""

_SCRIPT = """<script>
(function () {
  var host = window.parent;
  if (host.__cockpitConnectionWatch) { return; }
  host.__cockpitConnectionWatch = true;
  new host.Function("MESSAGE", "DELAY", %(body)s)(%(message)s, %(delay)d);
})();
</script>"""


def watch_connection() -> None:
    """Install the banner's watcher in this browser tab (once; later runs find it there)."""
    st.html("<style>.st-key-connection_watch{display:none}</style>")
    with st.container(key="connection_watch"):
        components.html(
            _SCRIPT % {"body": json.dumps(_WATCH), "message": json.dumps(MESSAGE), "delay": DELAY_MS},
            height=0,
        )
