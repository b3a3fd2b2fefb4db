"""audit_head.prev_hash: the hash before the head's, so one UPDATE can chain a row (decision 0057)

On PostgreSQL the store itself now takes a row's place in the chain and hashes its link, in the statement
that appends it (services.audit.chained): ``UPDATE audit_head SET prev_hash = hash, hash = sha256(...)
RETURNING last_id, prev_hash, hash``. PostgreSQL 15's RETURNING shows only the new row, so the old hash
travels in this column. Nothing verifies against it; SQLite has the column and leaves it empty.

Revision ID: 0021
Revises: 0020
Create Date: 2026-12-04 22:10:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0021"
down_revision = "0020"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # A plain ADD COLUMN (nullable, no default): no table rebuild on SQLite (see 0020).
    op.add_column("audit_head", sa.Column("prev_hash", sa.String(length=64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("audit_head") as batch:
        batch.drop_column("prev_hash")
