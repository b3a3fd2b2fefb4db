"""Coarser event rollups (decision 0034)

- ``event_grid_daily``: the KPI sums per China-local day × grid (the area views).
- ``event_department_daily``: the KPI sums per day × lead department (0: none), all grids (a whole
  store's department view).
- ``event_category_daily``: per day × grid × category the events not merged into another (预警's counts).
- ``event_grid_totals``: per grid every event ever reported (the home page's all-time count).
- ``event_recent_reports``: the last weeks' reports as 预警's 顽疾 and 群发 read them, by grid then time
  (``WITHOUT ROWID`` on SQLite: clustered), and ``rollup_state.kept_from``, its first day.
- Indexes by grid then day on ``event_daily``, ``event_grid_daily`` and ``event_category_daily``.

The rollup's watermark is removed so the next refresh (jobs runner, every minute) rebuilds every
rollup table together; until then readers read raw events, as without a rollup.

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-02 07:20:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None

BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
SUMS = ("all_events", "events", "reports", "resolved", "rated", "satisfied", "overdue")


def _sums() -> list[sa.Column]:
    return [
        *(sa.Column(c, sa.Integer(), nullable=False) for c in SUMS),
        sa.Column("handling_hours_sum", sa.Float(), nullable=False),
        sa.Column("handled", sa.Integer(), nullable=False),
    ]


def upgrade() -> None:
    op.create_table(
        "event_grid_daily",
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("grid_id", BIG_ID, nullable=False),
        *_sums(),
        sa.PrimaryKeyConstraint("day", "grid_id", name=op.f("pk_event_grid_daily")),
    )
    op.create_table(
        "event_department_daily",
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("department_id", BIG_ID, nullable=False),
        *_sums(),
        sa.PrimaryKeyConstraint("day", "department_id", name=op.f("pk_event_department_daily")),
    )
    op.create_table(
        "event_category_daily",
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("grid_id", BIG_ID, nullable=False),
        sa.Column("category", sa.String(length=32), nullable=False),
        sa.Column("counted", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("day", "grid_id", "category", name=op.f("pk_event_category_daily")),
    )
    op.create_table(
        "event_grid_totals",
        sa.Column("grid_id", BIG_ID, nullable=False),
        sa.Column("all_events", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("grid_id", name=op.f("pk_event_grid_totals")),
    )
    op.create_table(
        "event_recent_reports",
        sa.Column("grid_id", BIG_ID, nullable=False),
        sa.Column("reported_at", sa.DateTime(), nullable=False),
        sa.Column("id", BIG_ID, nullable=False),
        sa.Column("category", sa.String(length=32), nullable=False),
        sa.Column("title", sa.String(length=200), nullable=False),
        sa.Column("lon", sa.Float(), nullable=False),
        sa.Column("lat", sa.Float(), nullable=False),
        sa.Column("address", sa.String(length=300), nullable=True),
        sa.Column("reporter_count", sa.Integer(), nullable=False),
        sa.Column("merged_into_id", BIG_ID, nullable=True),
        sa.PrimaryKeyConstraint("grid_id", "reported_at", "id", name=op.f("pk_event_recent_reports")),
        sqlite_with_rowid=False,
    )
    op.add_column("rollup_state", sa.Column("kept_from", sa.Date(), nullable=True))
    # A scope's grids (a township's hundred of a city's thousands) read by grid first: the primary keys
    # lead by day, whose range holds every grid of the city. Covering on SQLite for 预警's counts.
    op.create_index("ix_event_daily_grid_day", "event_daily", ["grid_id", "day"])
    op.create_index("ix_event_grid_daily_grid_day", "event_grid_daily", ["grid_id", "day"])
    op.create_index(
        "ix_event_category_daily_grid_day", "event_category_daily", ["grid_id", "day", "category", "counted"]
    )
    op.execute("DELETE FROM rollup_state WHERE name = 'event_daily'")


def downgrade() -> None:
    with op.batch_alter_table("rollup_state") as batch:
        batch.drop_column("kept_from")
    op.drop_table("event_recent_reports")
    op.drop_index("ix_event_daily_grid_day", table_name="event_daily")
    op.drop_table("event_grid_totals")
    op.drop_table("event_category_daily")
    op.drop_table("event_department_daily")
    op.drop_table("event_grid_daily")
