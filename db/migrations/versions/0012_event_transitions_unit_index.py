"""event_transitions (unit_id) and (department_id) indexes: a boundary replace that deletes units, and a
department's trail, seek instead of scanning every step

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-02 03:55:00
"""

from __future__ import annotations

from alembic import op

revision = '0012'
down_revision = '0011'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('event_transitions', schema=None) as batch_op:
        batch_op.create_index('ix_event_transitions_unit', ['unit_id'], unique=False)
        batch_op.create_index('ix_event_transitions_department', ['department_id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('event_transitions', schema=None) as batch_op:
        batch_op.drop_index('ix_event_transitions_department')
        batch_op.drop_index('ix_event_transitions_unit')
