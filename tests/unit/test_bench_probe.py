"""The bench's view of the machine (bench/probe.py): the busy CPU it reads holds this process's work, and
the probe is the median of its runs."""

from __future__ import annotations

import time

import bench.probe as probe


def _burn(seconds: float) -> None:
    end = time.process_time() + seconds
    while time.process_time() < end:
        pass


def test_machine_busy_holds_this_process_work():
    before = probe.machine_busy_s()
    _burn(0.3)
    # this process's 0.3 s of CPU is in the machine's busy time (others' may add to it, never less)
    assert probe.machine_busy_s() - before >= 0.25


def test_probe_is_the_median_of_its_runs(monkeypatch):
    clock = iter([0.0, 0.010, 1.0, 1.050, 2.0, 2.020])  # runs of 10, 50 and 20 ms
    monkeypatch.setattr(probe.time, "perf_counter", lambda: next(clock))
    assert probe.cpu_probe_ms(repeat=3, n=10) == 20.0
