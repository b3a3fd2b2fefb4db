"""event_recent_reports.near: how many reports of the same matter lie within 51 m (decision 0038)

顽疾 (chronic) needs every report of its eight weeks only to find the few that have eight or more of
their matter nearby; the count kept per row lets a judgement read those and their surroundings (and
per grid × matter counts) instead of a township's ~50 k reports. NULL until the rollup is rebuilt: the
rollup's watermark is removed so the next refresh (jobs runner, every minute) rebuilds every table, as
``python -m services.rollups rebuild`` does.

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-02 15:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # A nullable column without a default: no table rewrite on either store.
    op.add_column("event_recent_reports", sa.Column("near", sa.Integer(), nullable=True))
    op.execute("DELETE FROM rollup_state WHERE name = 'event_daily'")


def downgrade() -> None:
    with op.batch_alter_table("event_recent_reports", schema=None) as batch_op:
        batch_op.drop_column("near")
