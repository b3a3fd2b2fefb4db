"""Schema drift check: the differences between a migrated database and the models (empty = none)."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Engine

from db.models import Base


def schema_diff(engine: Engine) -> list:
    """Alembic's diff between ``engine``'s live schema and the models, as a list of operations."""
    with engine.connect() as conn:
        ctx = MigrationContext.configure(conn, opts={"compare_type": True, "compare_server_default": True})
        return compare_metadata(ctx, Base.metadata)
