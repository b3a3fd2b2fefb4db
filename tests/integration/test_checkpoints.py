"""SQLite's WAL folded into the store's file by the checkpointer thread, not by the writer whose commit
crossed SQLite's 1,000-page mark (decision 0060): that commit took 5–190 ms in an API batch."""

from __future__ import annotations

import os
import time

import pytest

from db import engine as engines
from db.engine import WRITER_CHECKPOINT_PAGES, checkpointed, fold_wal, make_engine

pytestmark = pytest.mark.skipif(
    not str(os.environ.get("DATABASE_URL", "sqlite")).startswith("sqlite"), reason="SQLite's WAL"
)


def _written(path):
    """A store at ``path`` with a few hundred WAL pages of committed rows."""
    engine = make_engine(f"sqlite:///{path}")
    with engine.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE t (id INTEGER PRIMARY KEY, body TEXT)")
    for i in range(20):
        with engine.begin() as conn:
            conn.exec_driver_sql("INSERT INTO t (body) VALUES (?)", ((f"{i}-" + "x" * 4000),))
    return engine


def test_a_store_s_wal_is_folded_by_the_checkpointer_thread(tmp_path):
    path = tmp_path / "store.db"
    engine = _written(path)
    assert checkpointed(engine)
    with engine.connect() as conn:  # a writer folds the WAL itself only past this many pages
        assert conn.exec_driver_sql("PRAGMA wal_autocheckpoint").scalar() == WRITER_CHECKPOINT_PAGES
    wal = f"{path}-wal"
    key = str(path.resolve())
    for _ in range(100):  # the thread looks every 0.1 s: it records the WAL's change it folded
        with engines._stores_lock:
            seen = engines._stores[key][1]
        if seen == os.stat(wal).st_mtime_ns:
            break
        time.sleep(0.05)
    else:
        raise AssertionError("the checkpointer did not fold the WAL")
    _, result = fold_wal(str(path))  # nothing left to fold: every page of the WAL is in the file
    assert result is not None and result[0] == result[1] > 0
    engine.dispose()


def test_one_fold_copies_the_committed_pages_and_skips_an_unchanged_wal(tmp_path):
    path = tmp_path / "store.db"
    engine = _written(path)
    with engines._stores_lock:  # this test folds by hand
        engines._stores.pop(str(path.resolve()))
    for _ in range(40):  # the thread may be folding this WAL right now (it took the list before the
        seen, result = fold_wal(str(path))  # pop): SQLite says busy to a second checkpoint meanwhile
        if result is not None:
            break
        time.sleep(0.05)
    assert seen == os.stat(f"{path}-wal").st_mtime_ns
    assert result is not None and result[0] == result[1] > 0
    assert fold_wal(str(path), seen) == (seen, None)  # unchanged since: not opened at all
    engine.dispose()


def test_a_missing_store_is_neither_folded_nor_created(tmp_path):
    path = tmp_path / "gone.db"
    assert fold_wal(str(path)) == (None, None)
    open(f"{path}-wal", "wb").close()  # a WAL left without its store
    assert fold_wal(str(path))[1] is None
    assert not path.exists()


def test_an_in_memory_store_has_no_checkpointer():
    assert not checkpointed(make_engine("sqlite:///:memory:"))
