"""events.resolved_at index: today's 办结 count on the live feed's tick reads only today's resolutions

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-22 03:10:00
"""

from __future__ import annotations

from alembic import op

revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('events', schema=None) as batch_op:
        batch_op.create_index('ix_events_resolved_at', ['resolved_at'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('events', schema=None) as batch_op:
        batch_op.drop_index('ix_events_resolved_at')
