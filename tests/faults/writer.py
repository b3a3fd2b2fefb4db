"""A writer process for the fault suite: reports events one by one and prints each acknowledged title.

``python -m tests.faults.writer URL PREFIX COUNT`` — a title is printed (and flushed) only after its
unit of work committed, so what the parent read before killing this process is exactly what the
store acknowledged.
"""

from __future__ import annotations

import sys

from db.engine import make_engine
from db.uow import UnitOfWork
from domain.vocabulary import EventCategory, EventSource
from services import clock
from services.events import report_event
from tests.builders import grid_centre


def main() -> None:
    url, prefix, count = sys.argv[1], sys.argv[2], int(sys.argv[3])
    engine = make_engine(url)
    for k in range(count):
        lon, lat = grid_centre(k % 4)
        title = f"{prefix}-{k}"
        report_event(
            UnitOfWork(engine),
            source=EventSource.GRID_WORKER,
            category=EventCategory.URBAN,
            title=title,
            lon=lon,
            lat=lat,
            now=clock.now(),
        )
        print(title, flush=True)


if __name__ == "__main__":
    main()
