"""断网提示 in a real browser: the app reached through a proxy that can be cut, as a phone loses its signal.

Playwright's offline mode does not close an open websocket, so the test puts a TCP proxy between the
browser and the app and cuts it (every connection dropped, new ones refused), then restores it."""

from __future__ import annotations

import asyncio
import socket
import threading
from urllib.parse import urlparse

import pytest

from components.connection import MESSAGE
from tests.e2e.conftest import login, settle

pytestmark = pytest.mark.e2e


class CutProxy:
    """127.0.0.1:<port> → the app; :meth:`cut` drops every connection and refuses new ones."""

    def __init__(self, target_port: int) -> None:
        self.target, self.cut_off = target_port, False
        self.loop = asyncio.new_event_loop()
        self.links: set[asyncio.StreamWriter] = set()
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        ready = threading.Event()
        self.thread = threading.Thread(target=self._serve, args=(ready,), daemon=True)
        self.thread.start()
        ready.wait(10)

    def _serve(self, ready: threading.Event) -> None:
        asyncio.set_event_loop(self.loop)
        server = self.loop.run_until_complete(asyncio.start_server(self._link, "127.0.0.1", self.port))
        ready.set()
        self.loop.run_forever()
        server.close()
        for w in list(self.links):  # what is left open is dropped before the loop goes
            w.transport.abort()
        self.loop.run_until_complete(asyncio.sleep(0.1))

    async def _pipe(self, reader, writer) -> None:
        try:
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            writer.close()

    async def _link(self, reader, writer) -> None:
        if self.cut_off:
            writer.transport.abort()
            return
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target)
        self.links |= {writer, up_writer}
        await asyncio.gather(self._pipe(reader, up_writer), self._pipe(up_reader, writer))
        self.links -= {writer, up_writer}

    def cut(self) -> None:
        def drop() -> None:
            self.cut_off = True
            for w in list(self.links):
                w.transport.abort()
            self.links.clear()

        self.loop.call_soon_threadsafe(drop)

    def restore(self) -> None:
        self.loop.call_soon_threadsafe(setattr, self, "cut_off", False)

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)


@pytest.fixture
def proxied(app_url):
    proxy = CutProxy(urlparse(app_url).port or 80)
    yield proxy, f"http://127.0.0.1:{proxy.port}"
    proxy.close()


def test_a_lost_connection_is_said_in_chinese_and_the_banner_goes_when_it_is_back(page, proxied):
    proxy, base = proxied
    login(page, base, "demo_inspector", path="/my_day")
    page.set_viewport_size({"width": 360, "height": 740})  # a phone, once signed in
    page.get_by_role("heading", name="我的今日").wait_for(timeout=60_000)
    settle(page)
    banner = page.get_by_test_id("connection-lost")
    assert banner.count() == 0
    proxy.cut()
    banner.wait_for(timeout=30_000)
    assert banner.inner_text() == MESSAGE
    page.wait_for_timeout(6_000)  # long enough for Streamlit's own dialog to come up
    english = page.locator("[data-testid=stDialog]").filter(has_text="Connection error")
    assert english.count() == 0 or not english.first.is_visible()
    page.screenshot(path="test-results/connection_lost.png")
    proxy.restore()
    page.wait_for_function(
        "() => document.querySelector('[data-testid=stApp]')"
        ".getAttribute('data-test-connection-state') === 'CONNECTED'",
        timeout=60_000,
    )
    banner.wait_for(state="detached", timeout=10_000)
