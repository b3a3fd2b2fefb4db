"""Event imports killed with SIGKILL mid-write (the bench runs 200, ``FAULT_IMPORT_KILLS``): each file's
rows are afterwards all in the store or none of them, whatever moment the kill met."""

from __future__ import annotations

import random

from bench.faults import _import_kills


def test_an_import_killed_at_any_moment_leaves_all_of_its_rows_or_none(area_store):
    url = area_store.url.render_as_string(hide_password=False)
    result = _import_kills(url, random.Random(11), kills=3)
    assert result["import_partial_count"] == 0
    assert result["import_whole_count"] + result["import_none_count"] == 3
    assert result["import_whole_count"] >= result["import_done_before_kill_count"]
