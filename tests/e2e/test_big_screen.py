"""The wall screen in a real browser: every panel inside the screen at 1920×1080 and 3840×2160, no
scrollbar, no text cut off, fonts that grow with the screen; and a soak with 1-second refreshes."""

from __future__ import annotations

import os
import time

import psutil
import pytest

from db.engine import make_engine
from services import clock
from services.display import create_token

PANELS = ["bs-title", "bs-kpis", "bs-map", "bs-flow", "bs-ticker", "bs-alerts", "bs-rank"]
SOAK_SECONDS = int(os.environ.get("SOAK_SECONDS", "60"))  # `make soak` runs 600


pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("webgl")]  # WebGL-heavy tests take turns on one worker


@pytest.fixture(scope="module")
def token(seeded_store_url):
    engine = make_engine(seeded_store_url)
    with engine.begin() as conn:
        value = create_token(conn, area_code="330802", label="测试大屏", now=clock.now())
    engine.dispose()
    return value


def _base_path_probe(url: str) -> bool:
    """Streamlit's front end, opened at /big_screen, first looks for its server under that path
    (/big_screen/_stcore/health, /host-config) and then at the root: expected 404s, not errors."""
    return "/big_screen/_stcore/" in url


def _open(browser, url, width, height):
    context = browser.new_context(viewport={"width": width, "height": height}, locale="zh-CN")
    page = context.new_page()
    page.requests, page.console_errors = [], []
    page.on("request", lambda r: page.requests.append(r.url))
    # A failed load is judged by its response (below), which knows the URL; the console line does not.
    page.on("console", lambda m: m.type == "error" and not m.text.startswith("Failed to load resource")
            and page.console_errors.append(m.text))
    page.on("pageerror", lambda e: page.console_errors.append(str(e)))
    page.on("response", lambda r: r.status >= 400 and not _base_path_probe(r.url)
            and page.console_errors.append(f"{r.status} {r.url}"))
    page.goto(url)
    page.wait_for_selector("[data-testid='bs-rank']", timeout=60_000)
    page.wait_for_function("() => document.querySelectorAll('[data-testid=stDeckGlJsonChart] canvas').length >= 1",
                           timeout=60_000)
    page.wait_for_timeout(1500)
    return context, page


LAYOUT_JS = """(panels) => {
  const root = document.scrollingElement;
  const vw = innerWidth, vh = innerHeight;
  const boxes = Object.fromEntries(panels.map(p => {
    const el = document.querySelector(`[data-testid='${p}']`);
    if (!el) return [p, null];
    const r = el.getBoundingClientRect();
    return [p, {top: r.top, left: r.left, bottom: r.bottom, right: r.right}];
  }));
  const deck = document.querySelector("[data-testid='stDeckGlJsonChart']").getBoundingClientRect();
  const cut = [...document.querySelectorAll('.bs-tile .v, .bs-flow .lv b, .bs-panel h3')]
      .filter(el => el.scrollWidth > el.clientWidth + 1).map(el => el.textContent);
  const sizes = [...document.querySelectorAll('.bs-tile .k, .bs-row span, .bs-panel h3')]
      .map(el => parseFloat(getComputedStyle(el).fontSize));
  return {scrollH: root.scrollHeight, scrollW: root.scrollWidth, vw, vh, boxes,
          deckBottom: deck.bottom, cut, minFont: Math.min(...sizes)};
}"""


@pytest.mark.parametrize(("width", "height"), [(1920, 1080), (3840, 2160)])
def test_every_panel_fits_the_screen_with_no_scrollbar_and_no_cut_text(browser, app_url, token, width, height):
    context, page = _open(browser, f"{app_url}/big_screen?token={token}&area=330802&refresh=60", width, height)
    try:
        page.screenshot(path=f"test-results/big_screen_{width}x{height}.png")
        m = page.evaluate(LAYOUT_JS, PANELS)
        assert m["scrollH"] <= m["vh"] + 1 and m["scrollW"] <= m["vw"] + 1, m
        for name, box in m["boxes"].items():
            assert box is not None, f"panel {name} missing"
            assert box["top"] >= 0 and box["left"] >= 0, (name, box)
            assert box["bottom"] <= m["vh"] + 1 and box["right"] <= m["vw"] + 1, (name, box)
        assert m["deckBottom"] <= m["vh"] + 1
        assert m["cut"] == [], f"text cut off: {m['cut']}"
        assert m["minFont"] >= 16 * width / 1920 * 0.95, m["minFont"]  # readable from 5 m, scaling with the wall
        assert [u for u in page.requests if not u.startswith(("http://127.0.0.1", "data:", "blob:"))] == []
    finally:
        context.close()


def _server_pid(app_url: str) -> int:
    port = int(app_url.rsplit(":", 1)[1])
    for conn in psutil.net_connections("tcp"):
        if conn.laddr.port == port and conn.status == psutil.CONN_LISTEN:
            return conn.pid
    raise RuntimeError("server process not found")


def test_soak_with_one_second_refresh_keeps_memory_flat_and_the_console_clean(browser, app_url, token):
    server = psutil.Process(_server_pid(app_url))
    context, page = _open(browser, f"{app_url}/big_screen?token={token}&area=330802&refresh=1&rotate=5", 1920, 1080)
    try:
        warm_up = min(60, SOAK_SECONDS // 3)
        page.wait_for_timeout(warm_up * 1000)
        base = server.memory_info().rss
        samples = []
        end = time.time() + SOAK_SECONDS - warm_up
        while time.time() < end:
            page.wait_for_timeout(5000)
            samples.append(server.memory_info().rss)
        ticks = page.locator("[data-testid='bs-title']").inner_text()
        growth = (max(samples) - base) / base
        print(f"soak {SOAK_SECONDS}s: rss after warm-up {base / 1e6:.0f} MB, max {max(samples) / 1e6:.0f} MB, "
              f"end {samples[-1] / 1e6:.0f} MB, growth {growth * 100:.1f}%")
        assert growth <= 0.10, f"server memory grew {growth * 100:.1f}% after warm-up"
        assert page.console_errors == [], page.console_errors
        assert "指挥大屏" in ticks
    finally:
        context.close()
