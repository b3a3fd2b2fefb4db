"""One jobs runner leads among several (decision 0031): the lease is exclusive, a second runner waits in
standby, and when the leader is killed (kill -9) the standby takes over; on both stores."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from db.engine import make_engine
from db.migrate import upgrade
from services.leader import Lease

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def store(new_store_url):
    url = new_store_url()
    engine = make_engine(url)
    upgrade(engine)
    yield url, engine
    engine.dispose()


def test_the_lease_is_held_by_one_holder_at_a_time_and_passes_on_release(store):
    _url, engine = store
    first, second = Lease(engine, "test"), Lease(engine, "test")
    assert first.acquire() and first.held()
    assert not second.acquire() and not second.held()
    assert first.acquire()  # asking again while holding it keeps it
    first.release()
    assert not first.held()
    assert second.acquire() and second.held()
    second.release()


def _runner(url: str, log: Path) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "services.jobs", "--every", "1"],
        cwd=ROOT,
        env={**os.environ, "DATABASE_URL": url, "PYTHONPATH": str(ROOT)},
        stdout=log.open("w"),
        stderr=subprocess.STDOUT,
    )


def _wait_for(log: Path, words: str, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if words in log.read_text(encoding="utf-8", errors="replace"):
            return
        time.sleep(0.2)
    raise AssertionError(f"{words!r} not in {log}: {log.read_text(errors='replace')[-2000:]}")


def test_a_standby_runner_takes_over_when_the_leader_is_killed(store, tmp_path):
    url, _engine = store
    logs = tmp_path / "a.log", tmp_path / "b.log"
    a = _runner(url, logs[0])
    b = None
    try:
        _wait_for(logs[0], "leading")
        b = _runner(url, logs[1])
        _wait_for(logs[1], "standby")
        time.sleep(2)
        assert "leading" not in logs[1].read_text()  # two passes later, still behind the leader
        a.send_signal(signal.SIGKILL)
        a.wait(10)
        _wait_for(logs[1], "leading", seconds=30)
    finally:
        for p in (a, b):
            if p is not None and p.poll() is None:
                p.terminate()
                p.wait(20)
