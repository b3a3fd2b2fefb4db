"""event_township_daily: the KPI sums per China-local day × township (decision 0045)

A city's or a county's area view (分析排名 by county or township, 同比/环比) summed the city's ~5,400
grid rows a day over three windows; the same sums per township are ~60 rows a day. The rollup's
watermark is removed so the next refresh (jobs runner, every minute) rebuilds every rollup table
together, as ``python -m services.rollups rebuild`` does; until then readers read raw events.

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-03 08:20:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0018"
down_revision = "0017"
branch_labels = None
depends_on = None

BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
SUMS = ("all_events", "events", "reports", "resolved", "rated", "satisfied", "overdue")


def upgrade() -> None:
    op.create_table(
        "event_township_daily",
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("township_id", BIG_ID, nullable=False),
        *(sa.Column(c, sa.Integer(), nullable=False) for c in SUMS),
        sa.Column("handling_hours_sum", sa.Float(), nullable=False),
        sa.Column("handled", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("day", "township_id", name=op.f("pk_event_township_daily")),
    )
    op.execute("DELETE FROM rollup_state WHERE name = 'event_daily'")


def downgrade() -> None:
    op.drop_table("event_township_daily")
