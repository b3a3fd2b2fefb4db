"""A few hot statements run on the driver's own cursor (decision 0058).

SQLAlchemy's execution of a compiled, cached Core statement still costs ~0.1 ms of Python per call (the
execution context, the result object, the driver's column descriptions): a report filed through the API
runs several such statements, a large share of the server's CPU per request. :class:`Direct` compiles a
Core statement once per dialect and runs it on the DBAPI cursor of the caller's Connection, doing what
SQLAlchemy's execution does that matters here:
- the types' bind processors (a datetime into SQLite's text);
- the engine's ``before_cursor_execute`` and ``after_cursor_execute`` listeners (the audit guard of
  db.engine sees the statement, a test can pause or count it), with no execution context (None);
- the transaction begun as ``Connection.execute`` begins it, when none is (SQLAlchemy's autobegin): a
  write never runs outside its unit of work, and a read on SQLite is in its reading's snapshot;
- a driver error raised through SQLAlchemy's own handling: its exception classes (values hidden as the
  engine hides them), ``handle_error`` events, and on a lost connection the connection and the pool's
  others invalidated.

Rows come back as plain tuples, on PostgreSQL as psycopg gives them (no result processors: SQLAlchemy's
there need the column's OID), on SQLite through the columns' result processors. Refused at build time:
expanding ``IN`` parameters (bind an array, ``= ANY(…)``, or a JSON list) and Python-side column
defaults (every value is given).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, cast

from sqlalchemy import (
    JSON,
    BigInteger,
    BindParameter,
    ColumnElement,
    Connection,
    FromClause,
    Select,
    any_,
    bindparam,
    func,
    select,
)
from sqlalchemy.dialects import postgresql
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


class Direct:
    """``statement`` (a Core statement) ready to run on the driver: :meth:`rows`, :meth:`run`."""

    def __init__(self, statement: Executable) -> None:
        self.statement = statement
        #: by the dialect's class and parameter style (two engines of one driver share it)
        self._compiled: dict[tuple[type, str], _Compiled] = {}

    def _for(self, conn: Connection) -> _Compiled:
        dialect = conn.dialect
        key = (type(dialect), dialect.paramstyle)
        found = self._compiled.get(key)
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
        )
        self._compiled[key] = found
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
        if not conn.in_transaction():
            # as Connection.execute would: the transaction begins as the engine says (SQLite's BEGIN
            # IMMEDIATE in a unit of work; on PostgreSQL the driver's own), and SQLAlchemy knows of it
            conn._autobegin()
        sql, cursor = c.sql, None
        bound: Any = None
        driver = conn.connection.driver_connection
        events = conn.dispatch
        try:
            values = c.compiled.construct_params(dict(params), escape_names=False)
            for name, process in c.binds.items():
                values[name] = process(values[name])
            if c.order is not None:
                bound = tuple(values[name] for name in c.order)
            else:
                escaped = c.compiled.escaped_bind_names
                bound = {escaped.get(k, k): v for k, v in values.items()} if escaped else values
            cursor = driver.cursor()  # type: ignore[union-attr]
            try:
                events.before_cursor_execute(conn, cursor, sql, bound, None, False)
                cursor.execute(sql, bound)
                events.after_cursor_execute(conn, cursor, sql, bound, None, False)
                found = cursor.fetchall() if fetch else []
            finally:
                cursor.close()
        except BaseException as exc:
            # SQLAlchemy's own handling: its exception classes (values hidden as the engine says), the
            # handle_error events, and on a lost connection this one and the pool's others invalidated
            conn._handle_dbapi_exception(exc, sql, bound, cursor, None)
        if c.results is None:
            return found
        processors = c.results
        return [tuple(p(v) if p else v for p, v in zip(processors, row, strict=True)) for row in found]


def bound_columns(table: FromClause, names: Iterable[str] | None = None) -> dict[str, BindParameter[Any]]:
    """``{column: bindparam(column)}`` for an INSERT's ``values`` that binds every column named (default:
    all but ``id``), each with its column's type (a statement here leaves nothing to a default)."""
    wanted = [c for c in table.columns if c.name != "id"] if names is None else [table.c[n] for n in names]
    return {c.name: bindparam(c.name, type_=c.type) for c in wanted}


def one_of(column: Any, name: str) -> dict[str, ColumnElement[bool]]:
    """``column IN (the ids bound as one parameter `name`)`` by dialect, for a statement run here (no
    expanding ``IN``): ``= ANY(array)`` on PostgreSQL, a JSON list read by ``json_each`` on SQLite; both
    keep to an index on ``column``."""
    return {
        "postgresql": column == any_(bindparam(name, type_=postgresql.ARRAY(BigInteger))),
        "sqlite": column.in_(
            select(func.json_each(bindparam(name, type_=JSON)).table_valued("value").c.value)
        ),
    }


def in_transaction(conn: Connection) -> bool:
    """Whether the driver still holds the transaction ``conn`` began: False once the connection is lost
    or the store has rolled the whole transaction back on its own (SQLite does on a full disk, an I/O
    error or out of memory), when a savepoint has nothing left to roll back to."""
    if conn.invalidated:
        return False
    driver = conn.connection.driver_connection
    if conn.dialect.name == "sqlite":
        return bool(driver.in_transaction)  # type: ignore[union-attr]
    status = driver.info.transaction_status  # type: ignore[union-attr]
    return status.name in ("INTRANS", "INERROR")
