"""Browser fixtures: the app served from a seeded store, driven by Debian's chromium through Playwright."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlparse

import pytest

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = "/usr/bin/chromium"
LOCAL_HOSTS = {"127.0.0.1", "localhost", "[::1]", "::1"}
# Flags measured to keep headless chromium off the network (FACTS.md).
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]

pytestmark = pytest.mark.e2e


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def browser():
    if not os.path.exists(CHROMIUM):
        if os.environ.get("CI"):
            pytest.fail(f"{CHROMIUM} is missing: CI requires the browser tests (.ci/run installs chromium)")
        pytest.skip(f"{CHROMIUM} not installed (apt-get install chromium fonts-noto-cjk); CI runs these")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        yield b
        b.close()


@contextmanager
def start_app(store_url: str, script: str = "app.py") -> Iterator[str]:
    """``streamlit run <script>`` on a free local port over ``store_url``; yields the base URL.

    ``script``: ``app.py`` (the pages alone) or ``serve.py`` (the ASGI entry `make run` starts, with the
    login cookie routes beside the pages)."""
    port = _free_port()
    env = {**os.environ, "DATABASE_URL": store_url, "PYTHONPATH": str(ROOT)}
    (ROOT / "test-results").mkdir(exist_ok=True)
    with open(ROOT / "test-results" / f"streamlit-{port}.log", "w") as log:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "streamlit",
                "run",
                script,
                "--server.port",
                str(port),
                "--server.address",
                "127.0.0.1",
                "--server.headless",
                "true",
            ],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        base = f"http://127.0.0.1:{port}"
        try:
            deadline = time.time() + 60
            while time.time() < deadline:
                try:
                    with urllib.request.urlopen(f"{base}/_stcore/health", timeout=1) as r:
                        if r.status == 200:
                            break
                except OSError:
                    time.sleep(0.3)
            else:
                raise RuntimeError(f"{script} did not start on {base}")
            yield base
        finally:
            proc.terminate()
            proc.wait(10)


@pytest.fixture(scope="session")
def app_url(seeded_store_url) -> Iterator[str]:
    """The app served from the seeded store, shared by the browser tests."""
    with start_app(seeded_store_url) as url:
        yield url


class RequestLog(list):
    """Every URL the page asked for; ``off_host()`` lists those to any host but this machine."""

    def off_host(self) -> list[str]:
        out = []
        for url in self:
            parsed = urlparse(url)
            if parsed.scheme in ("data", "blob", "about", "chrome-extension"):
                continue
            if parsed.hostname not in {h.strip("[]") for h in LOCAL_HOSTS}:
                out.append(url)
        return out


@pytest.fixture
def page(browser):
    """A fresh page that records every request it makes."""
    context = browser.new_context(viewport={"width": 1440, "height": 900}, locale="zh-CN")
    p = context.new_page()
    p.requests = RequestLog()
    p.on("request", lambda r: p.requests.append(r.url))
    yield p
    context.close()


# Streamlit marks its root with the script's state (what its own browser tests wait on): 'notRunning'
# once a run, a fragment's included, has ended; the status widget only shows after a delay.
SETTLED_JS = """() => { const app = document.querySelector('[data-testid=stApp]');
  return !!app && app.getAttribute('data-test-script-state') === 'notRunning'
    && app.getAttribute('data-test-connection-state') === 'CONNECTED'; }"""


def wait_for_app(page, timeout: float = 30_000) -> None:
    """Wait until Streamlit has finished running the script and the page shows its figures."""
    page.wait_for_selector("[data-testid='stApp']", timeout=timeout)
    page.wait_for_function(
        f"() => ({SETTLED_JS})() && document.querySelectorAll('[data-testid=\"stMetric\"]').length > 0",
        timeout=timeout,
    )


def login(page, app_url: str, username: str, password: str = "demo-cockpit", path: str = "/") -> None:
    """Open ``path`` and log in through the 用户名 / 密码 / 登录 form."""
    page.goto(app_url + path)
    page.get_by_label("用户名").fill(username)
    page.get_by_label("密码").fill(password)
    page.get_by_role("button", name="登录", exact=True).click()
    page.wait_for_selector("[data-testid='stSidebar']", timeout=30_000)


def settle(page, timeout: float = 30_000, after_ms: int = 0) -> None:
    """Wait until no script run is in progress; ``after_ms`` first lets a just-sent event start its run."""
    if after_ms:
        page.wait_for_timeout(after_ms)
    page.wait_for_function(SETTLED_JS, timeout=timeout)


def open_from_menu(page, label: str, heading: str, path: str, attempts: int = 3) -> None:
    """Click ``label`` in the sidebar menu until the browser is on ``/path``, then wait for the page
    titled ``heading``.

    A click that lands while a run is still redrawing the menu (the first run after a login, on a
    loaded CI machine) can be dropped: click again only while the address has not changed, since a
    second click on a page that is loading restarts its (cold, slow) first run."""
    import re

    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    sidebar = page.locator("[data-testid='stSidebar']")
    at_page = re.compile(rf"/{re.escape(path)}(\?|$)")
    for _ in range(attempts):
        settle(page)
        sidebar.get_by_text(label, exact=True).first.click()
        try:
            page.wait_for_url(at_page, timeout=10_000)
            break
        except PlaywrightTimeout:
            continue
    else:
        raise AssertionError(f"{label} in the menu never led to /{path} in {attempts} attempts")
    page.get_by_role("heading", name=heading).wait_for(timeout=90_000)


def choose(page, field, index: int = 0, attempts: int = 4) -> None:
    """Open the select box ``field`` (a locator) and pick its option number ``index``.

    A script run that ends while the list is open (a map component reporting its first value, a
    fragment) redraws the box and closes the list, so a click can meet no option (CI, a loaded
    machine): wait for the run to end, open the list again, and try again."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    for _ in range(attempts):
        settle(page)
        field.click()
        option = page.get_by_role("option").nth(index)
        try:
            option.click(timeout=5_000)
            return
        except PlaywrightTimeout:
            page.keyboard.press("Escape")
    raise AssertionError(f"option {index} of {field} never became clickable in {attempts} attempts")
