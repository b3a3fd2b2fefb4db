"""Load with real browsers (issue 15.6): ``SESSIONS`` concurrent Chromium sessions across the roles walk
their pages on the app as ``make run`` serves it (serve.py, one process) for ``SECONDS``; each page
visit is timed from navigation to a settled page (Streamlit's script state ``notRunning`` and the main
area drawn). Opt-in: ``python -m bench --reuse --only load`` (needs /usr/bin/chromium).

Figures: visits, time to a settled page p50/p95/max (ms), errors (an exception or incident shown, a
JavaScript error, or a page that never settled: 0 allowed), server memory idle and at its peak (MB, the
serve.py process) and the growth per session (MB), and the store's floor in the same run (one indexed
aggregate), so a loaded machine shows in the floor.
"""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

import numpy as np
import psutil
from sqlalchemy import func, select

from db.engine import make_engine
from db.models import Event

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-sync"]
SERVER_FLAGS = ("--server.address", "127.0.0.1", "--server.headless", "true")
SESSIONS = int(os.environ.get("BENCH_LOAD_SESSIONS", "20"))
#: 1: serve.py alone; N > 1: ``make cluster``'s N replicas behind nginx (deploy/cluster.py).
REPLICAS = int(os.environ.get("BENCH_LOAD_REPLICAS", "1"))
SECONDS = float(os.environ.get("BENCH_LOAD_SECONDS", "300"))
PASSWORD = "demo-cockpit"
#: Who walks which pages: the demo accounts of every role, and citizens without a login.
WALKS: list[tuple[str | None, tuple[str, ...]]] = [
    ("demo_city", ("/home", "/risk_map", "/events", "/big_screen")),
    ("demo_county", ("/home", "/events", "/risk_map", "/inspections")),
    ("demo_township", ("/home", "/events", "/inspections", "/risk_map")),
    ("demo_department", ("/events", "/home")),
    ("demo_inspector", ("/my_day", "/inspections", "/report")),
    (None, ("/report", "/track")),
]
SETTLED = """() => { const app = document.querySelector('[data-testid=stApp]');
  const main = document.querySelector('[data-testid=stMain]');
  return !!app && app.getAttribute('data-test-script-state') === 'notRunning'
    && app.getAttribute('data-test-connection-state') === 'CONNECTED'
    && !!main && main.innerText.trim().length > 20; }"""
FAILED = "[data-testid=stException]"
INCIDENT = ("系统出现意外错误", "与数据库的连接中断")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _serve(url: str) -> tuple[subprocess.Popen, str]:
    port = _free_port()
    (ROOT / "test-results").mkdir(exist_ok=True)
    log = open(ROOT / "test-results" / "load-server.log", "w")  # noqa: SIM115 (closed with the process)
    proc = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", "serve.py", "--server.port", str(port), *SERVER_FLAGS],
        cwd=ROOT,
        env={**os.environ, "DATABASE_URL": url, "PYTHONPATH": str(ROOT)},
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    deadline = time.time() + 90
    while time.time() < deadline:
        try:
            with urllib.request.urlopen(f"{base}/_stcore/health", timeout=1) as r:
                if r.status == 200:
                    return proc, base
        except OSError:
            time.sleep(0.3)
    proc.terminate()
    raise SystemExit("load bench: serve.py did not start")


def _rss_mb(procs: list[subprocess.Popen]) -> float:
    """The app processes' resident memory together (MB)."""
    total = 0
    for proc in procs:
        with suppress(psutil.Error):
            total += psutil.Process(proc.pid).memory_info().rss
    return total / 2**20


async def _walk(browser, base: str, who: str | None, paths: tuple[str, ...], until: float, out: dict) -> None:
    context = await browser.new_context(viewport={"width": 1440, "height": 900}, locale="zh-CN")
    page = await context.new_page()
    page.on("pageerror", lambda _e: out["errors"].append(f"{who}: javascript error"))
    try:
        if who:
            await page.goto(base + "/", timeout=120_000)
            await page.get_by_label("用户名").fill(who)
            await page.get_by_label("密码").fill(PASSWORD)
            await page.get_by_role("button", name="登录").click()
            await page.wait_for_selector("[data-testid='stSidebar']", timeout=120_000)
        k = 0
        while time.time() < until:
            path = paths[k % len(paths)]
            k += 1
            t0 = time.perf_counter()
            try:
                await page.goto(base + path, timeout=120_000)
                await page.wait_for_function(SETTLED, timeout=120_000)
            except Exception:  # never settled: counted, and the walk goes on
                out["errors"].append(f"{who} {path}: not settled")
                continue
            out["ms"].append((time.perf_counter() - t0) * 1000)
            shown = await page.locator("[data-testid=stMain]").inner_text()
            if await page.locator(FAILED).count() or any(w in shown for w in INCIDENT):
                out["errors"].append(f"{who} {path}: error shown")
    finally:
        await context.close()


async def _load(base: str, until: float) -> dict:
    from playwright.async_api import async_playwright

    out: dict = {"ms": [], "errors": []}
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        walks = [WALKS[i % len(WALKS)] for i in range(SESSIONS)]
        await asyncio.gather(*(_walk(browser, base, who, paths, until, out) for who, paths in walks))
        await browser.close()
    return out


def _floor_ms(url: str) -> float:
    """The store's floor in this run: one indexed aggregate (events per grid of the last week), median of 5."""
    engine = make_engine(url)
    times = []
    with engine.connect() as conn:
        since = conn.execute(select(func.max(Event.reported_at))).scalar_one()
        for _ in range(5):
            t0 = time.perf_counter()
            conn.execute(
                select(Event.grid_id, func.count()).where(Event.reported_at >= since).group_by(Event.grid_id)
            ).all()
            times.append((time.perf_counter() - t0) * 1000)
    engine.dispose()
    return float(np.median(times))


@contextmanager
def _app(url: str) -> Iterator[tuple[str, list[subprocess.Popen]]]:
    if REPLICAS > 1:
        from deploy.cluster import start

        with start(
            url, replicas=REPLICAS, port=_free_port(), replica_ports=[_free_port() for _ in range(REPLICAS)]
        ) as c:
            yield c.url, list(c.replicas.values())
        return
    proc, base = _serve(url)
    try:
        yield base, [proc]
    finally:
        proc.terminate()
        proc.wait(20)


def bench_load(url: str) -> dict[str, float]:
    if not os.path.exists(CHROMIUM):
        raise SystemExit(f"load bench: {CHROMIUM} is missing (apt-get install chromium fonts-noto-cjk)")
    peak = [0.0]
    stop = threading.Event()
    with _app(url) as (base, procs):

        def sample() -> None:
            while not stop.is_set():
                peak[0] = max(peak[0], _rss_mb(procs))
                time.sleep(1)

        urllib.request.urlopen(base + "/", timeout=30).read()
        idle = _rss_mb(procs)
        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        floor_before = _floor_ms(url)
        out = asyncio.run(_load(base, time.time() + SECONDS))
        floor_after = _floor_ms(url)
        stop.set()
        sampler.join(5)
    ms = np.array(out["ms"]) if out["ms"] else np.array([float("nan")])
    if out["errors"]:
        print("load errors:", sorted(set(out["errors"]))[:20])
    tag = "load" if REPLICAS == 1 else f"load_{REPLICAS}replicas"
    figures = {
        "sessions_count": SESSIONS,
        "seconds": SECONDS,
        "visits_count": len(out["ms"]),
        "settled_p50_ms": round(float(np.percentile(ms, 50))),
        "settled_p95_ms": round(float(np.percentile(ms, 95))),
        "settled_max_ms": round(float(np.max(ms))),
        "errors_count": len(out["errors"]),
        "server_rss_idle_mb": round(idle),
        "server_rss_peak_mb": round(peak[0]),
        "server_rss_per_session_mb": round((peak[0] - idle) / SESSIONS, 1),
        "floor_ms": round((floor_before + floor_after) / 2, 2),
    }
    return {f"{tag}_{name}": value for name, value in figures.items()}
