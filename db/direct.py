"""A few hot statements run on the driver's own cursor (decision 0058).

SQLAlchemy's execution of a compiled, cached Core statement still costs ~0.1 ms of Python per call (the
execution context, the result object, the driver's column descriptions): on the API's and intake's path
a report runs three such statements, ~15 % of the server's CPU per request. :class:`Direct` compiles a
Core statement once per dialect and runs it on the DBAPI cursor of the caller's Connection, with the
same bind processing and the same error classes (a driver error is raised as SQLAlchemy's
``DBAPIError`` subclass, a lost connection invalidates the Connection as SQLAlchemy would).

Used on PostgreSQL only (:func:`Direct.rows` falls back to ``Connection.execute`` elsewhere). The engine's
``before_cursor_execute`` and ``after_cursor_execute`` listeners run as for any statement (the audit guard
of db.engine sees it, a test can pause or count it), with no execution context (``context`` is None).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, cast

from sqlalchemy import Connection
from sqlalchemy.exc import DBAPIError
from sqlalchemy.sql import ClauseElement
from sqlalchemy.sql.base import Executable
from sqlalchemy.sql.compiler import SQLCompiler


class Direct:
    """``statement`` (a Core statement without expanding ``IN`` parameters) ready to run on the driver."""

    def __init__(self, statement: Executable) -> None:
        self.statement = statement
        self._compiled: dict[str, tuple[str, SQLCompiler, dict[str, Callable[[Any], Any]]]] = {}

    def _for(self, conn: Connection) -> tuple[str, SQLCompiler, dict[str, Callable[[Any], Any]]]:
        dialect = conn.dialect
        found = self._compiled.get(dialect.name)
        if found is None:
            compiled = cast(SQLCompiler, cast(ClauseElement, self.statement).compile(dialect=dialect))
            if compiled.literal_execute_params or compiled.post_compile_params:
                raise ValueError("Direct: a statement with expanding parameters (use = ANY(array))")
            if compiled.positional:
                raise ValueError(f"Direct: {dialect.name} binds by position; only named styles are run")
            processors: dict[str, Callable[[Any], Any]] = {}
            for name, bind in compiled.binds.items():
                process = bind.type.dialect_impl(dialect).bind_processor(dialect)
                if process is not None:
                    processors[compiled.escaped_bind_names.get(name, name)] = process
            found = (compiled.string, compiled, processors)
            self._compiled[dialect.name] = found
        return found

    def rows(self, conn: Connection, params: Mapping[str, Any]) -> list[tuple[Any, ...]]:
        """The rows the statement returns (plain tuples, in its columns' order) for ``params`` on ``conn``."""
        if conn.dialect.name != "postgresql":
            return [tuple(r) for r in conn.execute(self.statement, dict(params)).all()]
        sql, compiled, processors = self._for(conn)
        bound = compiled.construct_params(dict(params), escape_names=True)
        for name, process in processors.items():
            if bound.get(name) is not None:
                bound[name] = process(bound[name])
        driver = conn.connection.driver_connection
        dbapi = conn.dialect.loaded_dbapi
        events = conn.dispatch
        try:
            with driver.cursor() as cursor:  # type: ignore[union-attr]
                events.before_cursor_execute(conn, cursor, sql, bound, None, False)
                cursor.execute(sql, bound)
                events.after_cursor_execute(conn, cursor, sql, bound, None, False)
                return cursor.fetchall()
        except dbapi.Error as exc:
            lost = conn.dialect.is_disconnect(exc, driver, None)
            if lost:
                conn.invalidate(exc)
            raise DBAPIError.instance(
                sql,
                bound,
                exc,
                dbapi.Error,
                hide_parameters=conn.engine.hide_parameters,
                connection_invalidated=lost,
                dialect=conn.dialect,
            ) from exc
