"""attachments.step_seq: the trail step a photo was stored with (办结's 处置照片), NULL for a report's own

Until now a photo was matched to its step by timestamp, which cannot tell a report's photo from a 办结
photo taken in the same second. Rows stored before this keep NULL and are matched by timestamp as before.

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-02 14:40:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # A nullable column without a default: no table rewrite on either store.
    op.add_column("attachments", sa.Column("step_seq", sa.Integer(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("attachments", schema=None) as batch_op:
        batch_op.drop_column("step_seq")
