"""Bring a store's schema to the newest migration, in place, keeping its rows (``python -m db.migrate``)."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine

from db.engine import database_url

ALEMBIC_INI = Path(__file__).resolve().parent / "alembic.ini"


def alembic_config(url: str | None = None) -> Config:
    cfg = Config(str(ALEMBIC_INI))
    cfg.attributes["url"] = url or database_url()
    return cfg


def upgrade(engine: Engine) -> None:
    """Apply every pending migration to ``engine``'s database."""
    cfg = alembic_config(str(engine.url))
    with engine.begin() as conn:  # schema and data migrations are not use cases (decision 0006)
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "head")


def current_revision(engine: Engine) -> str | None:
    from alembic.runtime.migration import MigrationContext

    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


if __name__ == "__main__":
    from db.engine import make_engine

    eng = make_engine()
    upgrade(eng)
    print(f"schema at {current_revision(eng)}: {eng.url.render_as_string(hide_password=True)}")
