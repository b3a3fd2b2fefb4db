"""The error boundary: whatever a page or a refreshing panel meets, the person reads what to do, never a trace.

``app.py`` runs every page inside :func:`boundary`; a fragment that refreshes itself (the wall screen,
the live feed) wraps its body with :func:`guarded`, since a fragment's rerun does not pass through
``app.py``. Streamlit's own control flow (``st.stop``, ``st.rerun``) is not an error and passes.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

import streamlit as st

from services.faults import incident

F = TypeVar("F", bound=Callable[..., Any])


def show_incident(exc: BaseException, where: str) -> None:
    """The Chinese message, the incident id, and a 重试 button (the detail went to the log)."""
    found = incident(exc, where)
    st.error(f"{found.message}（事件编号：{found.incident_id}）", icon=":material/error:")
    if st.button("重试", key=f"retry_{found.incident_id}"):
        st.rerun()


@contextmanager
def boundary(where: str) -> Iterator[None]:
    """Run a page's code; any exception becomes :func:`show_incident` (st.stop/st.rerun pass through)."""
    try:
        yield
    except Exception as exc:  # the boundary: everything a person can meet ends here, logged
        show_incident(exc, where)


def guarded(where: str) -> Callable[[F], F]:
    """Decorate a fragment's body with :func:`boundary` (its reruns do not pass through app.py)."""

    def wrap(fn: F) -> F:
        @functools.wraps(fn)
        def run(*args: Any, **kwargs: Any) -> Any:
            with boundary(where):
                return fn(*args, **kwargs)
            return None

        return run  # type: ignore[return-value]

    return wrap
