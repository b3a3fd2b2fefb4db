"""Two app replicas behind nginx on one store (``make cluster``, decision 0031): a report filed on replica
A reaches a leader watching replica B; a leader behind the proxy whose replica is killed (kill -9) is
carried to the other one, still signed in, and sees what is filed afterwards; one jobs runner leads."""

from __future__ import annotations

import os
import re
import signal
import socket
import time
import uuid
from collections.abc import Iterator

import pytest

from deploy.cluster import NGINX, Cluster, start
from tests.e2e.conftest import choose, login, settle

pytestmark = pytest.mark.e2e
TIMEOUT = 30_000


def _free_ports(n: int) -> list[int]:
    socks = [socket.socket() for _ in range(n)]
    try:
        for s in socks:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


@pytest.fixture(scope="module")
def cluster(seeded_store_url) -> Iterator[Cluster]:
    if not os.path.exists(NGINX):
        if os.environ.get("CI"):
            pytest.fail("nginx is missing: CI requires the replica test (.ci/run installs nginx)")
        pytest.skip("nginx not installed (apt-get install nginx); CI runs this")
    proxy, *replicas = _free_ports(3)
    with start(seeded_store_url, replicas=2, port=proxy, replica_ports=replicas) as running:
        yield running


def _file_report(browser, base: str, title: str) -> str:
    context = browser.new_context(viewport={"width": 1280, "height": 900}, locale="zh-CN")
    page = context.new_page()
    try:
        page.goto(base + "/report")
        page.get_by_label("标题").wait_for(timeout=TIMEOUT)
        choose(page, page.get_by_label("事项类别"))
        page.get_by_label("标题").fill(title)
        page.get_by_label("问题描述").fill("多副本测试：楼道堆放杂物")
        page.get_by_role("button", name="提交").click()
        done = page.get_by_text("上报成功，事件编号", exact=False)
        again = page.get_by_role("button", name="不是同一件事，仍然新建")
        done.or_(again).first.wait_for(timeout=TIMEOUT)
        if again.count():
            again.click()
        done.wait_for(timeout=TIMEOUT)
        return re.search(r"#(\d+)", done.inner_text()).group(1)
    finally:
        context.close()


def _sees_in_feed(page, event_id: str) -> None:
    page.locator("[role='gridcell']").filter(has_text=event_id).first.wait_for(
        state="attached", timeout=TIMEOUT
    )


def test_a_report_on_one_replica_reaches_a_leader_on_the_other(browser, cluster):
    a, b = list(cluster.replicas)
    context = browser.new_context(viewport={"width": 1440, "height": 900}, locale="zh-CN")
    leader = context.new_page()
    try:
        login(leader, b, "demo_township", path="/events")
        leader.get_by_text("实时动态（", exact=False).wait_for(timeout=TIMEOUT)
        event_id = _file_report(browser, a, f"副本A上报 {uuid.uuid4().hex[:6]}")
        _sees_in_feed(leader, event_id)
    finally:
        context.close()


def test_a_leader_whose_replica_dies_is_carried_to_the_other_still_signed_in(browser, cluster):
    context = browser.new_context(viewport={"width": 1440, "height": 900}, locale="zh-CN")
    leader = context.new_page()
    try:
        login(leader, cluster.url, "demo_township", path="/events")
        leader.get_by_text("实时动态（", exact=False).wait_for(timeout=TIMEOUT)
        settle(leader)
        answer = leader.request.get(cluster.url + "/_stcore/health")
        serving = "http://" + answer.headers["x-cockpit-replica"]
        assert serving in cluster.replicas, (serving, list(cluster.replicas))
        before = _file_report(browser, cluster.url, f"切换前 {uuid.uuid4().hex[:6]}")

        victim = cluster.replicas[serving]
        os.killpg(victim.pid, signal.SIGKILL)  # the replica and anything it started
        victim.wait(10)
        survivor = next(u for u in cluster.replicas if u != serving)

        # Streamlit reconnects by itself; nginx sends it to the survivor, whose cookie login signs it in.
        after = _file_report(browser, survivor, f"切换后 {uuid.uuid4().hex[:6]}")
        leader.get_by_text("实时动态（", exact=False).wait_for(timeout=60_000)
        assert leader.get_by_label("用户名").count() == 0  # not sent back to the login form
        _sees_in_feed(leader, after)
        _sees_in_feed(leader, before)  # and nothing filed before the failure is lost
        # nginx names every replica it tried: the dead one may come first, the survivor answered.
        tried = leader.request.get(cluster.url + "/_stcore/health").headers["x-cockpit-replica"]
        assert "http://" + tried.split(",")[-1].strip() == survivor, tried
    finally:
        context.close()


def test_exactly_one_jobs_runner_leads(cluster):
    mine = [cluster.folder / f"jobs-{u.rsplit(':', 1)[1]}.log" for u in cluster.replicas]
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        texts = [p.read_text(errors="replace") for p in mine]
        if all(("leading" in t) or ("standby" in t) for t in texts):
            break
        time.sleep(0.5)
    leading = [t for t in texts if "leading" in t]
    assert len(leading) == 1, texts
