"""events (grid_id, reported_at) index: an area's events over a period are one seek per grid

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-22 03:40:00
"""

from __future__ import annotations

from alembic import op

revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('events', schema=None) as batch_op:
        batch_op.create_index('ix_events_grid_reported', ['grid_id', 'reported_at'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('events', schema=None) as batch_op:
        batch_op.drop_index('ix_events_grid_reported')
