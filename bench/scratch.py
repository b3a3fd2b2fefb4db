"""A scratch copy of a bench store for a section that writes (intake, the API): every run starts from
the store as seeded, not from one earlier runs filled with reports at the same places, and the store is
left as it was for the sections that read."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import make_url

from db.engine import make_engine


@contextmanager
def store_copy(url: str, purpose: str) -> Iterator[str]:
    """A copy of the store at ``url`` for one run that writes (``purpose``: its name's suffix), dropped
    afterwards; yields its URL.

    SQLite: the file, its WAL folded in first. PostgreSQL: ``CREATE DATABASE … TEMPLATE`` (a file copy
    after a checkpoint), which needs the source free of other sessions: this process's own are closed
    by the caller (bench/__main__.py disposes its engine before each section)."""
    if url.startswith("sqlite"):
        src = Path(url.split("///", 1)[-1])
        copy = src.with_name(f"{src.stem}_{purpose}{src.suffix}")
        engine = make_engine(url)
        with engine.connect() as conn:  # fold the WAL in so the copy is the whole store
            conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
        engine.dispose()
        shutil.copyfile(src, copy)
        try:
            yield f"sqlite:///{copy}"
        finally:
            for suffix in ("", "-wal", "-shm"):
                Path(f"{copy}{suffix}").unlink(missing_ok=True)
        return
    source = make_url(url)
    name = f"{source.database}_{purpose}"
    admin = make_engine(source.set(database="postgres").render_as_string(hide_password=False))
    admin = admin.execution_options(isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}"')
        try:
            conn.exec_driver_sql(f'CREATE DATABASE "{name}" TEMPLATE "{source.database}" STRATEGY FILE_COPY')
        except Exception as exc:
            raise SystemExit(
                f"{purpose} bench: could not copy {source.database} ({exc.__class__.__name__}): close the other"
                " sessions on it (an app, a psql) and run again"
            ) from exc
    try:
        yield source.set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()
