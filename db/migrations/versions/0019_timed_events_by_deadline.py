"""ix_events_timed_due: the events whose deadline runs, by deadline, a partial index (decision 0050)

The jobs runner asks every minute for the open events past their deadline (超期 marks, 上移) and every
five minutes for the deadlines near (督办 reminders, which include 已办结 awaiting 核查). Without an index
on the deadline each sweep read every event the store holds (40-125 ms on the town's 248 k events, ten
times that at city scale); these events are a few thousandths of them.

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-04 17:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0019"
down_revision = "0018"
branch_labels = None
depends_on = None

TIMED_EVENTS_SQL = "status IN ('reported', 'accepted', 'dispatched', 'returned', 'in_progress', 'resolved')"


def upgrade() -> None:
    op.create_index(
        "ix_events_timed_due",
        "events",
        ["due_at"],
        sqlite_where=sa.text(TIMED_EVENTS_SQL),
        postgresql_where=sa.text(TIMED_EVENTS_SQL),
    )


def downgrade() -> None:
    op.drop_index("ix_events_timed_due", table_name="events")
