"""The pydeck risk map and the folium detail map in a real browser: drawn, clickable, and fully offline."""

from __future__ import annotations

import io
import os
import shutil
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from PIL import Image

from components import offline
from components.maps import AREA_ALPHA
from components.palette import CLASS_RGB
from domain.risk import RiskClass
from tests.e2e.conftest import ROOT, _free_port

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("webgl")]  # WebGL-heavy tests take turns on one worker

DEMO = Path(__file__).parent / "apps" / "maps_demo.py"
TILE_RGB = (90, 60, 200)
TOLERANCE = 12


def _hex_rgb(colour: str) -> tuple[int, int, int]:
    return tuple(int(colour[i : i + 2], 16) for i in (1, 3, 5))


def _over(rgb, background, alpha: int = AREA_ALPHA) -> tuple[int, ...]:
    a = alpha / 255
    return tuple(round(c * a + b * (1 - a)) for c, b in zip(rgb, background, strict=True))


def _close(px, expected, tol: int = TOLERANCE) -> bool:
    return all(abs(a - b) <= tol for a, b in zip(px[:3], expected, strict=True))


@pytest.fixture(scope="module")
def start_demo(tmp_path_factory) -> Iterator[Callable[[dict[str, str]], str]]:
    """Serve tests/e2e/apps/maps_demo.py with ``streamlit run``; returns a starter taking extra env.

    Streamlit serves ``static/`` next to the main script, so the script is copied into a temporary
    folder beside a symlink to the repository's ``static/``; the cwd is the repository (its config).
    """
    procs: list[subprocess.Popen] = []
    (ROOT / "test-results").mkdir(exist_ok=True)

    def start(extra_env: dict[str, str]) -> str:
        folder = tmp_path_factory.mktemp("maps_demo")
        shutil.copy(DEMO, folder / DEMO.name)
        (folder / "static").symlink_to(ROOT / "static", target_is_directory=True)
        port = _free_port()
        env = {**os.environ, "PYTHONPATH": str(ROOT), **extra_env}
        for key in (offline.TILE_URL_ENV, offline.TILE_CRS_ENV):
            if key not in extra_env:
                env.pop(key, None)
        log = open(ROOT / "test-results" / f"maps-demo-{port}.log", "w")  # noqa: SIM115 (closed with the process)
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "streamlit",
                "run",
                str(folder / DEMO.name),
                "--server.port",
                str(port),
                "--server.address",
                "127.0.0.1",
                "--server.headless",
                "true",
                "--server.enableStaticServing",
                "true",
            ],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        procs.append(proc)
        base = f"http://127.0.0.1:{port}"
        deadline = time.time() + 60
        while time.time() < deadline:
            try:
                with urllib.request.urlopen(f"{base}/_stcore/health", timeout=1) as r:
                    if r.status == 200:
                        return base
            except OSError:
                time.sleep(0.3)
        raise RuntimeError(f"streamlit did not start on {base}")

    yield start
    for proc in procs:
        proc.terminate()
        proc.wait(10)


@pytest.fixture(scope="module")
def tile_server() -> Iterator[tuple[str, list[str]]]:
    """A stand-in intranet tile server on this machine: every tile is one flat colour (with CORS).

    The demo writes ``static/map/tiles-style*.json`` for it; those written here are removed afterwards.
    """
    styles = [offline.STATIC_DIR / offline.TILES_STYLE, offline.STATIC_DIR / offline.TILES_STYLE_DARK]
    existed = {p for p in styles if p.exists()}
    buf = io.BytesIO()
    Image.new("RGB", (256, 256), TILE_RGB).save(buf, format="PNG")
    tile = buf.getvalue()
    served: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):
            served.append(self.path)
            self.send_response(200)
            self.send_header("Content-Type", "image/png")
            self.send_header("Content-Length", str(len(tile)))
            self.send_header("Access-Control-Allow-Origin", "*")
            self.end_headers()
            self.wfile.write(tile)

        def log_message(self, *args):
            pass

    class Server(ThreadingHTTPServer):
        def handle_error(self, request, client_address):
            pass  # the browser closing while tiles load is not a failure

    server = Server(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_port}/tiles/{{z}}/{{x}}/{{y}}.png", served
    server.shutdown()
    for path in set(styles) - existed:
        path.unlink(missing_ok=True)


def _chart_pixels(page, timeout: float = 45.0, want=None):
    """Screenshots of the deck chart until ``want(image)`` holds; returns the last image."""
    chart = page.locator("[data-testid='stDeckGlJsonChart']")
    chart.wait_for(timeout=30_000)
    page.wait_for_function(
        "() => document.querySelectorAll('[data-testid=stDeckGlJsonChart] canvas').length >= 2",
        timeout=30_000,
    )
    deadline = time.time() + timeout
    while True:
        img = Image.open(io.BytesIO(chart.screenshot())).convert("RGB")
        if want(img) or time.time() > deadline:
            return img
        time.sleep(0.5)


def _open(page, url: str) -> list[str]:
    dialogs: list[str] = []

    def on_dialog(d):
        dialogs.append(d.message)
        d.dismiss()

    page.on("dialog", on_dialog)
    page.goto(url + "/")
    return dialogs


def test_both_maps_render_from_this_machine_only(page, start_demo):
    dialogs = _open(page, start_demo({}))
    background = _hex_rgb(offline.LIGHT_BACKGROUND)
    red_area = _over(CLASS_RGB[RiskClass.RED], background)

    def red_at(img):
        w, h = img.size
        return _close(img.getpixel((int(w * 0.42), h // 2)), red_area)

    img = _chart_pixels(page, want=red_at)
    w, h = img.size
    area_px, side_px = img.getpixel((int(w * 0.42), h // 2)), img.getpixel((8, h // 2))
    # The red area is drawn with its colour at alpha 170 over the local style's background, which
    # shows beside the areas: the style came from static/ and was applied.
    assert _close(area_px, red_area), (area_px, red_area)
    assert _close(side_px, background), (side_px, background)

    box = page.locator("[data-testid='stDeckGlJsonChart']").bounding_box()
    page.mouse.move(box["x"] + box["width"] * 0.42, box["y"] + box["height"] / 2)
    tooltip = page.locator(".deck-tooltip")
    tooltip.wait_for(state="visible", timeout=10_000)
    assert "红区街道" in tooltip.inner_text() and "重大风险 · 45.2" in tooltip.inner_text()

    frame = page.frame_locator("iframe[title='streamlit_folium.st_folium']")
    markers = frame.locator("path.leaflet-interactive")
    markers.nth(3).wait_for(timeout=30_000)
    assert markers.count() == 4
    # The venue named <script>alert(1)</script> (first of the red group): its card shows the name as text.
    markers.first.click()
    card = frame.locator(".leaflet-popup-content")
    card.wait_for(timeout=10_000)
    assert "<script>alert(1)</script>" in card.inner_text()
    assert "张三" in card.inner_text() and "2026-11-01" in card.inner_text() and "红码" in card.inner_text()
    assert card.locator("script, b").count() == 0
    # The click reaches Python through st_folium(returned_objects=["last_object_clicked"]).
    page.get_by_text("clicked: {'lat': 28.93, 'lng': 118.9}").wait_for(timeout=15_000)

    requested = list(page.requests)
    assert any(u.endswith("/app/static/map/blank-style.json") for u in requested)
    assert any(u.endswith("/app/static/vendor/leaflet/leaflet.js") for u in requested)
    assert page.requests.off_host() == []
    assert dialogs == []


def test_intranet_tiles_are_drawn_from_the_configured_server(page, start_demo, tile_server):
    template, served = tile_server
    dialogs = _open(page, start_demo({offline.TILE_URL_ENV: template}))
    img = _chart_pixels(page, want=lambda im: _close(im.getpixel((8, im.size[1] // 2)), TILE_RGB))
    side_px = img.getpixel((8, img.size[1] // 2))
    assert _close(side_px, TILE_RGB), side_px  # the raster tiles, not the blank background
    frame = page.frame_locator("iframe[title='streamlit_folium.st_folium']")
    frame.locator("img.leaflet-tile-loaded").first.wait_for(timeout=30_000)
    assert served and all(p.startswith("/tiles/") for p in served)
    attribution = frame.locator(".leaflet-control-attribution")
    assert attribution.inner_text().strip() == "内网底图"  # no Leaflet prefix link
    assert any("/app/static/map/tiles-style.json?v=" in u for u in page.requests)
    assert page.requests.off_host() == []
    assert dialogs == []
