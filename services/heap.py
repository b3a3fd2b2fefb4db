"""The process's heap after start-up, out of the cyclic garbage collector's walk (decision 0065).

A full collection walks every container object of the process: in the app's server ~180 k of them
from the imports alone (Streamlit, pandas, SQLAlchemy, shapely, the pages' modules), 70–140 ms on
this machine, and it falls inside whichever request allocated last — a township's 预警, for one,
every few calls. What is alive once the server has imported its modules stays alive for the process's
life, so it is collected once and frozen (``gc.freeze``): later full collections walk only what was
made after. The server (serve.py), the jobs runner and the bench (which measures the views as the
server runs them) call :func:`freeze_startup_heap` once their imports are done.
"""

from __future__ import annotations

import gc
import logging
import threading

log = logging.getLogger(__name__)

_lock = threading.Lock()
_frozen = False


def freeze_startup_heap() -> int:
    """Collect, then freeze every object alive now (once per process; later calls do nothing).
    Returns how many objects were frozen (0 on a later call)."""
    global _frozen
    with _lock:
        if _frozen:
            return 0
        gc.collect()
        gc.freeze()
        _frozen = True
        frozen = gc.get_freeze_count()
    log.info("start-up heap frozen: %s objects out of the collector's walk", frozen)
    return frozen
