"""Event rollups (decision 0032)

- ``event_daily``: KPI sums of the events per China-local day × grid × lead department (0: none).
- ``rollup_state``: per rollup, the last ``event_transitions.id`` folded in and when it was rebuilt.

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-02 04:55:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None

BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
SUMS = ("all_events", "events", "reports", "resolved", "rated", "satisfied", "overdue")


def upgrade() -> None:
    op.create_table(
        "event_daily",
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("grid_id", BIG_ID, nullable=False),
        sa.Column("department_id", BIG_ID, nullable=False),
        *(sa.Column(c, sa.Integer(), nullable=False) for c in SUMS),
        sa.Column("handling_hours_sum", sa.Float(), nullable=False),
        sa.Column("handled", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("day", "grid_id", "department_id", name=op.f("pk_event_daily")),
    )
    op.create_table(
        "rollup_state",
        sa.Column("name", sa.String(length=32), nullable=False),
        sa.Column("watermark", BIG_ID, nullable=False),
        sa.Column("rebuilt_at", sa.DateTime(), nullable=False),
        sa.Column("refreshed_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_rollup_state")),
    )


def downgrade() -> None:
    op.drop_table("rollup_state")
    op.drop_table("event_daily")
