"""An importer process for the fault runs: one event file of ``ROWS`` rows imported in one unit of work.

``python -m tests.faults.importer URL PREFIX ROWS`` — prints ``started`` before the import and ``done``
(flushed) only after it committed: a parent that killed this process before reading ``done`` may find
all the file's rows or none, never some.
"""

from __future__ import annotations

import sys

import pandas as pd

from db.engine import make_engine
from db.uow import UnitOfWork
from services import clock
from services.event_import import TEMPLATE_COLUMNS, import_events
from services.events import Actor
from tests.builders import grid_centre


def event_file(prefix: str, rows: int) -> bytes:
    """A CSV of ``rows`` 12345 work orders, 外部编号 ``<prefix>-<k>``, spread over the square's grids."""
    records = []
    for k in range(rows):
        lon, lat = grid_centre(k % 4)
        records.append(
            {
                "来源": "12345热线",
                "外部编号": f"{prefix}-{k}",
                "类别": "城镇管理",
                "标题": f"导入 {prefix}-{k}",
                "描述": "故障注入：导入中途被杀",
                "地址": "",
                "纬度": f"{lat:.6f}",
                "经度": f"{lon:.6f}",
                "上报时间": "2026-11-21 09:30",
                "紧急程度": "一般",
                "反映人": "",
                "联系电话": "",
            }
        )
    return pd.DataFrame(records, columns=TEMPLATE_COLUMNS).to_csv(index=False).encode("utf-8")


def main() -> None:
    url, prefix, rows = sys.argv[1], sys.argv[2], int(sys.argv[3])
    data = event_file(prefix, rows)
    engine = make_engine(url)
    print("started", flush=True)
    outcome = import_events(
        UnitOfWork(engine), data, f"{prefix}.csv", actor=Actor(None, "admin"), now=clock.now()
    )
    if outcome.imported != rows:
        print(f"refused {outcome.errors[:3]}", flush=True)
        sys.exit(2)
    print("done", flush=True)


if __name__ == "__main__":
    main()
