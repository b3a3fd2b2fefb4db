"""The five-colour map in a real browser: drill from the city to a grid by clicking the map, check the
colours drawn against the legend's counts at every level, and make no request off this machine."""

from __future__ import annotations

import io
import math
import re
from urllib.parse import parse_qs, urlparse

import pytest
from PIL import Image
from playwright.sync_api import TimeoutError as PlaywrightTimeout
from playwright.sync_api import expect
from shapely.ops import polylabel

from components import maps
from components.palette import CLASS_RGB
from db.engine import make_engine
from domain.risk import RiskClass
from services.geography import load_units
from tests.e2e.conftest import SETTLED_JS, login, settle

BACKGROUND = (238, 240, 243)  # static/map/blank-style.json
ALPHA = 170 / 255  # the area layer's fill opacity
MAP_W, MAP_H = 820, 620  # what the page passes to risk_deck


pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("webgl")]  # WebGL-heavy tests take turns on one worker


def _drawn(rgb):
    return tuple(round(c * ALPHA + b * (1 - ALPHA)) for c, b in zip(rgb, BACKGROUND, strict=True))


EXPECTED = {cls: _drawn(rgb) for cls, rgb in CLASS_RGB.items()}


@pytest.fixture(scope="module")
def units(seeded_store_url):
    engine = make_engine(seeded_store_url)
    with engine.connect() as conn:
        frame = load_units(conn).set_index("code")
    engine.dispose()
    return frame


def _world(lon, lat, zoom):
    size = 512 * 2**zoom
    x = (lon + 180) / 360 * size
    y = (1 - math.log(math.tan(math.pi / 4 + math.radians(lat) / 2)) / math.pi) / 2 * size
    return x, y


def _screen_points(units, area_code, children):
    """Where each child's inner label point lands on the canvas, from the page's own initial view."""
    view = maps.fit_view(units.loc[area_code, "geometry"].bounds, width=MAP_W, height=MAP_H)
    cx, cy = _world(view.longitude, view.latitude, view.zoom)
    out = {}
    for code in children:
        geom = units.loc[code, "geometry"]
        part = max(getattr(geom, "geoms", [geom]), key=lambda g: g.area)
        p = polylabel(part, tolerance=1e-5)
        x, y = _world(p.x, p.y, view.zoom)
        out[code] = (x - cx, y - cy)
    return out


def _legend(page) -> dict[RiskClass, int]:
    text = page.locator("[data-testid='risk-legend']").inner_text()
    return {c: int(re.search(re.escape(c.label) + r"\s*(\d+)", text).group(1)) for c in RiskClass}


def _nearest_class(rgb):
    cls, dist = min(((c, math.dist(rgb, e)) for c, e in EXPECTED.items()), key=lambda t: t[1])
    return cls if dist < 30 else None


def _canvas(page):
    """The current chart, settled and scrolled into view. Streamlit may swap the element while a rerun
    finishes, so a chart that detached under us is looked up again."""
    chart = page.locator("[data-testid='stDeckGlJsonChart']").last
    for attempt in range(3):
        try:
            page.wait_for_function(
                # one chart (the previous area's has gone) with its canvas drawn
                f"() => ({SETTLED_JS})()"
                " && document.querySelectorAll('[data-testid=stDeckGlJsonChart]').length === 1"
                " && document.querySelectorAll('[data-testid=stDeckGlJsonChart] canvas').length >= 1",
                timeout=60_000,
            )
            page.wait_for_timeout(1500)  # WebGL draws after layout
            chart.scroll_into_view_if_needed(timeout=10_000)
            return chart
        except Exception:
            page.screenshot(path="test-results/risk_map_last.png")
            if attempt == 2:
                raise
    return chart


# A quick tap as deck.gl's gesture recogniser should see one: pointer down and up at one place, no time
# between. The recogniser (mjolnir's hammer) times a tap with Date.now() when it *handles* each event, not
# when the press happened, and deck.gl's pointerdown handler renders a picking pass first: on a starved
# software renderer that handler alone took 300 ms (Chromium throttled 30×, measured), past the 250 ms a
# tap may last, so no click was ever recognised (CI, stop 23). The clock is held at the moment of the
# press while the two events are handled, which is what a quick press on that machine was.
TAP_JS = """([x, y]) => {
  const target = document.elementFromPoint(x, y);
  const at = {clientX: x, clientY: y, bubbles: true, cancelable: true, composed: true, view: window,
              pointerId: 1, pointerType: 'mouse', isPrimary: true, button: 0};
  const realNow = Date.now, pressed = realNow();
  Date.now = () => pressed;
  try {
    target.dispatchEvent(new PointerEvent('pointerdown', {...at, buttons: 1}));
    target.dispatchEvent(new PointerEvent('pointerup', {...at, buttons: 0}));
    target.dispatchEvent(new MouseEvent('click', at));
  } finally {
    Date.now = realNow;
  }
  return target.tagName;
}"""

#: What lies under a point, for a failure's message.
UNDER_JS = """([x, y]) => { const e = document.elementFromPoint(x, y);
  return e ? e.outerHTML.slice(0, 160) : 'nothing'; }"""


def _area(page) -> str | None:
    return parse_qs(urlparse(page.url).query).get("area", [None])[0]


def test_drilling_from_city_to_grid_shows_the_legends_colours_and_stays_offline(page, app_url, units):
    page.set_viewport_size({"width": 1700, "height": 1100})
    login(page, app_url, "demo_city", path="/risk_map?layers=区域风险")
    area = "330800"
    for _depth in range(4):
        chart = _canvas(page)
        page.mouse.move(1, 1)  # no tooltip over the map while sampling
        page.wait_for_timeout(300)
        box = chart.bounding_box()
        shot = Image.open(io.BytesIO(page.screenshot(clip=box))).convert("RGB")
        children = list(units[units["parent_code"] == area].index)
        points = _screen_points(units, area, children)
        seen: dict[RiskClass, int] = dict.fromkeys(RiskClass, 0)
        for dx, dy in points.values():
            x, y = round(box["width"] / 2 + dx), round(box["height"] / 2 + dy)
            assert 0 <= x < shot.width and 0 <= y < shot.height, "an area lies outside the drawn map"
            cls = _nearest_class(shot.getpixel((x, y)))
            assert cls is not None, f"pixel {shot.getpixel((x, y))} at ({x}, {y}) is no risk colour"
            seen[cls] += 1
        assert seen == _legend(page), f"drawn {seen} but the legend says {_legend(page)}"
        # Click the child with the most data: the demo town's branch when present.
        target = next(
            (c for c in children if "330802001".startswith(c) or c.startswith("330802001")), children[0]
        )
        dx, dy = points[target]
        # deck.gl picks what is under the pointer: hover first, as a person does, then click. On a busy
        # machine a click can land before the chart listens, or its press and release arrive too far apart
        # to count as a tap: after each run settles, look whether the drill happened, else click again.
        arrived = f"() => location.search.includes('area={target}')"
        for _attempt in range(6):
            settle(page, timeout=60_000)  # never click while a run is going: a new event would cut it short
            if page.evaluate(arrived):
                break
            box = chart.bounding_box()
            if _attempt:  # a click whose run was lost can leave the area selected in the chart, where a
                # second click on it changes nothing: click the empty corner first to clear the selection
                page.mouse.click(box["x"] + 8, box["y"] + 8)
                settle(page, timeout=60_000, after_ms=500)
            x, y = box["x"] + box["width"] / 2 + dx, box["y"] + box["height"] / 2 + dy
            page.mouse.move(x, y, steps=5)
            page.wait_for_timeout(300)
            if _attempt == 0:
                page.mouse.click(x, y)
            else:  # a starved renderer handles press and release further apart than deck.gl allows a tap
                # (250 ms): the same tap, press and release in one go, through the same pointer events
                page.evaluate(TAP_JS, [x, y])
            settle(page, timeout=60_000, after_ms=500)  # the run the click caused, and the drill's rerun
            try:
                page.wait_for_function(arrived, timeout=5_000)
                break
            except PlaywrightTimeout:
                continue
        else:
            page.screenshot(path="test-results/risk_map_click.png")
            under = page.evaluate(UNDER_JS, [x, y])
            raise AssertionError(
                f"clicking {target} on the map never drilled into it; under ({x:.0f}, {y:.0f}): {under}"
            )
        area = target
    assert len(area) == 15, "the drill should end at a grid"
    page.wait_for_selector("text=为什么是这个颜色", timeout=30_000)
    assert page.requests.off_host() == []


def test_a_township_leader_drills_to_a_grid_with_the_child_selector_and_back_by_the_breadcrumb(
    page, app_url, units
):
    """No URL typed and no map click: 下钻到下级区域 twice (township → village → grid), then the breadcrumb."""
    from tests.e2e.conftest import choose

    page.set_viewport_size({"width": 1700, "height": 1100})
    login(page, app_url, "demo_township", path="/risk_map")
    settle(page)
    start = _area(page) or "330802001"
    path = [start]
    for _ in range(2):
        choose(page, page.get_by_label("下钻到下级区域"), 0)
        page.wait_for_function(
            "(was) => { const a = new URLSearchParams(location.search).get('area') || '';"
            " return a.startsWith(was) && a.length > was.length; }",
            arg=path[-1],
            timeout=60_000,
        )
        settle(page)
        here = _area(page)
        assert here is not None and here.startswith(path[-1]) and len(here) > len(path[-1])
        path.append(here)
    assert units.loc[path[-1], "level"] == "grid"
    expect(page.get_by_label("下钻到下级区域")).to_have_count(0, timeout=30_000)  # a grid has no children
    top = units.loc["330802001", "name"]
    page.get_by_role("button", name=top).click()
    page.wait_for_function("() => new URLSearchParams(location.search).get('area') === '330802001'")
    settle(page)
