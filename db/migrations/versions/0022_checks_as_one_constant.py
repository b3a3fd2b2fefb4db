"""PostgreSQL: each CHECK of a stored enum as one array constant (decision 0062)

PostgreSQL reads every CHECK constraint of a table from its stored node tree, and plans it again, at each
INSERT or UPDATE statement that writes the table (ExecRelCheck: ``stringToNode`` then ``ExecPrepareExpr``,
once per statement). SQLAlchemy's enum constraint ``status IN ('reported', …)`` is stored as an ARRAY[...]
of one constant per value, each with its type, collation and bytes, which the planner folds into one array
again each time: 2.2–2.5 kB of node text per constraint, eight of them on ``events``. Measured with
``perf`` on the town store, reading and planning them took ~14 % of the server's CPU per report filed.

The same test written ``status::text = ANY ('{reported,…}'::text[])`` is one constant: 0.6–1.0 kB, nothing
to fold. Only constraints whose values are plain words (not ``null``) and whose text the catalog gives
back exactly as parsed are rewritten. It accepts and refuses exactly the values it did (NULL still passes, as a CHECK lets NULL pass).
The latitude/longitude ranges lose their integer-to-float casts the same way. Both are rewritten from what
the catalog holds, so the values are the store's own; a constraint whose text is not in the expected form
is left as it is (only slower). Each table's constraints change in one ALTER TABLE, one scan to validate.

SQLite compiles its checks into the prepared statement once: nothing changes there.

Revision ID: 0022
Revises: 0021
Create Date: 2026-12-06 07:00:00
"""

from __future__ import annotations

import re
from collections.abc import Callable

import sqlalchemy as sa
from alembic import op

revision = "0022"
down_revision = "0021"
branch_labels = None
depends_on = None

# pg_get_constraintdef of SQLAlchemy's enum constraint, and of the rewritten one.
_AS_LIST = re.compile(r"CHECK \(\(\((\w+)\)::text = ANY \(\(ARRAY\[(.*)\]\)::text\[\]\)\)\)")
_AS_CONSTANT = re.compile(r"CHECK \(\(\((\w+)\)::text = ANY \('\{([\w,]*)\}'::text\[\]\)\)\)")
_LIST_VALUE = re.compile(r"'([^']*)'::character varying")
_VALUE = re.compile(r"\w+")
#: The lon/lat range as the models write it (``lon BETWEEN -180 AND 180 AND lat BETWEEN -90 AND 90``).
_RANGE_AS_WRITTEN = "lon BETWEEN -180 AND 180 AND lat BETWEEN -90 AND 90"
_RANGE_AS_CONSTANTS = (
    "lon >= '-180'::float8 AND lon <= '180'::float8 AND lat >= '-90'::float8 AND lat <= '90'::float8"
)
_RANGE_STORED_AS_WRITTEN = "(lon >= ('-180'::integer)::double precision)"


def _plain(values: list[str]) -> bool:
    """Values an unquoted array literal keeps as they are: words, none read as NULL (``null`` in any case
    would be a NULL element, and a CHECK with one passes every value). Anything else: left as it was."""
    return bool(values) and all(_VALUE.fullmatch(v) and v.lower() != "null" for v in values)


def _checks(conn: sa.Connection) -> list[tuple[str, str, str]]:
    return [
        (str(t), str(n), str(d))
        for t, n, d in conn.execute(
            sa.text(
                "SELECT conrelid::regclass::text, conname, pg_get_constraintdef(oid) FROM pg_constraint"
                " WHERE contype = 'c' AND connamespace = 'public'::regnamespace ORDER BY 1, 2"
            )
        )
    ]


def _rewrite(written_as: Callable[[str, str], str | None]) -> None:
    """Each CHECK for which ``written_as(name, definition)`` gives new SQL, replaced by it: one ALTER TABLE
    (one validating scan) per table. PostgreSQL only."""
    conn = op.get_bind()
    if conn.dialect.name != "postgresql":
        return
    changes: dict[str, list[str]] = {}
    for table, name, definition in _checks(conn):
        sql = written_as(name, definition)
        if sql is not None:
            changes.setdefault(table, []).append(f'DROP CONSTRAINT "{name}", ADD CONSTRAINT "{name}" CHECK ({sql})')
    for table, clauses in changes.items():
        op.execute(f"ALTER TABLE {table} " + ", ".join(clauses))  # regclass text: quoted where needed


def _as_constant(name: str, definition: str) -> str | None:
    listed = _AS_LIST.fullmatch(definition)
    if listed is not None:
        values = _LIST_VALUE.findall(listed.group(2))
        if _plain(values) and ", ".join(f"'{v}'::character varying" for v in values) == listed.group(2):
            return f"{listed.group(1)}::text = ANY ('{{{','.join(values)}}}'::text[])"
    elif name.endswith("_lonlat_range") and _RANGE_STORED_AS_WRITTEN in definition:
        return _RANGE_AS_CONSTANTS
    return None


def _as_list(name: str, definition: str) -> str | None:
    constant = _AS_CONSTANT.fullmatch(definition)
    if constant is not None and _plain(values := constant.group(2).split(",")):
        listed = ", ".join(f"'{v}'" for v in values)
        return f"{constant.group(1)} IN ({listed})"
    if name.endswith("_lonlat_range") and "'-180'::double precision" in definition:
        return _RANGE_AS_WRITTEN
    return None


def upgrade() -> None:
    _rewrite(_as_constant)


def downgrade() -> None:
    _rewrite(_as_list)
