"""A few hot statements run on the driver's own cursor (decision 0058).

SQLAlchemy's execution of a compiled, cached Core statement still costs ~0.1 ms of Python per call (the
execution context, the result object, the driver's column descriptions): a report filed through the API
runs several such statements, a large share of the server's CPU per request. :class:`Direct` compiles a
Core statement once per dialect and runs it on the DBAPI cursor of the caller's Connection, doing what
SQLAlchemy's execution does that matters here:
- the types' bind processors (a datetime into SQLite's text) and, on SQLite, result processors (back
  again; psycopg returns Python values itself);
- the engine's ``before_cursor_execute`` and ``after_cursor_execute`` listeners (the audit guard of
  db.engine sees the statement, a test can pause or count it), with no execution context (None);
- a driver error raised as SQLAlchemy's ``DBAPIError`` subclass, its values hidden as the engine hides
  them, and a lost connection invalidated.

Refused at build time: expanding ``IN`` parameters (bind an array, ``= ANY(…)``, or a JSON list) and
Python-side column defaults (every value is given). On SQLite a statement that writes, met outside a
transaction, takes ``Connection.execute`` (which begins one as the engine says): a write never runs
outside its unit of work.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, cast

from sqlalchemy import Connection, Select
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session
from sqlalchemy.sql import ClauseElement
from sqlalchemy.sql.base import Executable
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.dml import UpdateBase

_Process = Callable[[Any], Any]


@dataclass(frozen=True)
class _Compiled:
    sql: str
    compiled: SQLCompiler
    #: the bind names in the order the driver takes them (positional styles), or None (named styles)
    order: tuple[str, ...] | None
    binds: dict[str, _Process]
    #: a processor per result column (None: as the driver gives it), or None when no column has one
    results: tuple[_Process | None, ...] | None
    reads: bool


class Direct:
    """``statement`` (a Core statement) ready to run on the driver: :meth:`rows`, :meth:`run`."""

    def __init__(self, statement: Executable) -> None:
        self.statement = statement
        self._compiled: dict[str, _Compiled] = {}

    def _for(self, conn: Connection) -> _Compiled:
        dialect = conn.dialect
        found = self._compiled.get(dialect.name)
        if found is not None:
            return found
        compiled = cast(SQLCompiler, cast(ClauseElement, self.statement).compile(dialect=dialect))
        if compiled.literal_execute_params or compiled.post_compile_params:
            raise ValueError("Direct: a statement with expanding parameters (bind an array: = ANY(…))")
        if compiled.insert_prefetch or compiled.update_prefetch:
            raise ValueError("Direct: a statement that leaves a column to its Python-side default")
        binds: dict[str, _Process] = {}
        for name, bind in compiled.binds.items():
            process = bind.type.dialect_impl(dialect).bind_processor(dialect)
            if process is not None:
                binds[name] = process
        types: Sequence[Any] = ()
        if dialect.name == "postgresql":
            pass  # psycopg returns Python values (SQLAlchemy's own processors there need the column's OID)
        elif isinstance(self.statement, Select):
            types = [c.type for c in self.statement.selected_columns]
        elif isinstance(self.statement, UpdateBase):
            types = [d["type"] for d in self.statement.returning_column_descriptions]
        results = tuple(t.dialect_impl(dialect).result_processor(dialect, None) for t in types)
        found = _Compiled(
            sql=compiled.string,
            compiled=compiled,
            order=tuple(compiled.positiontup or ()) if compiled.positional else None,
            binds=binds,
            results=results if any(p is not None for p in results) else None,
            reads=isinstance(self.statement, Select),
        )
        self._compiled[dialect.name] = found
        return found

    def rows(self, conn: Connection | Session, params: Mapping[str, Any]) -> list[tuple[Any, ...]]:
        """The rows the statement returns (plain tuples, in its columns' order) for ``params`` on ``conn``."""
        return self._execute(conn, params, fetch=True)

    def run(self, conn: Connection | Session, params: Mapping[str, Any]) -> None:
        """Run a statement that returns no rows."""
        self._execute(conn, params, fetch=False)

    def _execute(
        self, conn: Connection | Session, params: Mapping[str, Any], fetch: bool
    ) -> list[tuple[Any, ...]]:
        if isinstance(conn, Session):  # a unit of work's session: its transaction's connection
            conn = conn.connection()
        c = self._for(conn)
        if conn.dialect.name != "postgresql" and not c.reads and not conn.in_transaction():
            result = conn.execute(self.statement, dict(params))  # begins the transaction as the engine says
            return [tuple(r) for r in result.all()] if fetch else []
        values = c.compiled.construct_params(dict(params), escape_names=False)
        for name, process in c.binds.items():
            values[name] = process(values[name])
        bound: Any
        if c.order is not None:
            bound = tuple(values[name] for name in c.order)
        else:
            escaped = c.compiled.escaped_bind_names
            bound = {escaped.get(k, k): v for k, v in values.items()} if escaped else values
        driver = conn.connection.driver_connection
        dbapi = conn.dialect.loaded_dbapi
        events = conn.dispatch
        try:
            cursor = driver.cursor()  # type: ignore[union-attr]
            try:
                events.before_cursor_execute(conn, cursor, c.sql, bound, None, False)
                cursor.execute(c.sql, bound)
                events.after_cursor_execute(conn, cursor, c.sql, bound, None, False)
                found = cursor.fetchall() if fetch else []
            finally:
                cursor.close()
        except dbapi.Error as exc:
            lost = conn.dialect.is_disconnect(exc, driver, None)
            if lost:
                conn.invalidate(exc)
            raise DBAPIError.instance(
                c.sql,
                bound,
                exc,
                dbapi.Error,
                hide_parameters=conn.engine.hide_parameters,
                connection_invalidated=lost,
                dialect=conn.dialect,
            ) from exc
        if c.results is None:
            return found
        processors = c.results
        return [tuple(p(v) if p else v for p, v in zip(processors, row, strict=True)) for row in found]
