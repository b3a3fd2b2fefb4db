"""ix_events_open_due: the open events by deadline, a partial index (decision 0050)

The jobs runner asks every minute for the open events past their deadline (超期 marks, 上移). Without
an index on the deadline both sweeps read every event the store holds (40-60 ms on the town's 248 k
events, ten times that at city scale); the open ones are a few thousandths of them.

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

OPEN_EVENTS_SQL = "status IN ('reported', 'accepted', 'dispatched', 'returned', 'in_progress')"


def upgrade() -> None:
    op.create_index(
        "ix_events_open_due",
        "events",
        ["due_at"],
        sqlite_where=sa.text(OPEN_EVENTS_SQL),
        postgresql_where=sa.text(OPEN_EVENTS_SQL),
    )


def downgrade() -> None:
    op.drop_index("ix_events_open_due", table_name="events")
