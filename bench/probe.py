"""The machine's speed at the moment of a measurement (速度探针).

The 2-core machines the bench runs on are shared: the same pure-Python loop took 339–606 ms from one
few seconds to the next (2026-12-06), so a rate measured in a slow phase says as much about the host as
about the code. :func:`cpu_probe_ms` times a fixed piece of interpreter work (a dict, integer arithmetic,
string formatting: what a request's Python does) in the process that asks, and the sections that
measure a rate record it just before and just after their window (``intake_cpu_probe_ms``,
``api_cpu_probe_ms``), beside the store's floor. A run whose rate is low and whose probe is high met a
slow host; a low rate beside a usual probe is the code's doing. :func:`machine_busy_s` tells whether
something else (another job, a neighbour) took the machine's cores during a window.
"""

from __future__ import annotations

import statistics
import time


def _work(n: int) -> int:
    table: dict[int, int] = {}
    total = 0
    for i in range(n):
        k = i & 1023
        table[k] = table.get(k, 0) + i
        total += len(f"{i}-{k}")
    return total


def cpu_probe_ms(repeat: int = 5, n: int = 60_000) -> float:
    """The median wall time, in ms, of ``repeat`` runs of the fixed work (~20–40 ms each here)."""
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        _work(n)
        times.append((time.perf_counter() - t0) * 1000)
    return round(statistics.median(times), 1)


def machine_busy_s() -> float:
    """CPU seconds the whole machine has been busy so far (every process, the kernel, and time the host
    took back: steal), all cores together."""
    import psutil

    t = psutil.cpu_times()
    return t.user + t.nice + t.system + t.irq + t.softirq + getattr(t, "steal", 0.0)
