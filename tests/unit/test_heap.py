"""services.heap (decision 0065): the start-up heap frozen once, out of later full collections."""

from __future__ import annotations

import gc
import subprocess
import sys


def test_the_start_up_heap_is_frozen_once_and_full_collections_walk_only_what_came_after():
    # In a process of its own: freezing is for the process's life.
    code = """
import gc, json
import pandas  # a start-up's imports
from services.heap import freeze_startup_heap
before = len(gc.get_objects())
frozen = freeze_startup_heap()
after = len(gc.get_objects())
again = freeze_startup_heap()
made = [[i] for i in range(1000)]  # made after: still collected, still seen by the collector
cycle = []; cycle.append(cycle); del cycle
print(json.dumps([before, frozen, after, again, len(gc.get_objects()), gc.collect()]))
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    before, frozen, after, again, later, collected = (int(v) for v in out.stdout.strip()[1:-1].split(","))
    assert frozen > 0.8 * before and after < 0.05 * before  # the imports' objects left the collector's walk
    assert again == 0  # once per process
    assert later >= after + 1000  # what came after is walked as before
    assert collected >= 1  # and a cycle made after is still collected
    assert gc.isenabled()
