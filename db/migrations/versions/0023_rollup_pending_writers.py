"""rollup_state.pending: the writers still open when a PostgreSQL refresh read (decision 0064)

On PostgreSQL a transaction can commit after others that drew larger ``event_transitions`` ids: a refresh
that moved its watermark past such ids while the transaction was open re-read only the 500 ids below it
(services.rollups.OVERLAP), and a writer open longer than that (an import of hotline work orders while
reports came in) was never counted. A refresh now keeps the transactions in progress in its snapshot,
each with the lowest id it can have drawn (``{"xid": floor, …}`` as JSON), and the next one re-reads from
there. SQLite (one writer at a time, ids commit in order) leaves it empty.

Revision ID: 0023
Revises: 0022
Create Date: 2026-12-06 09:35:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0023"
down_revision = "0022"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # A plain ADD COLUMN (nullable, no default): no table rebuild on SQLite (see 0020).
    op.add_column("rollup_state", sa.Column("pending", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("rollup_state") as batch:
        batch.drop_column("pending")
