"""idempotent creates (submission keys), near-duplicate flags, import source keys

- ``submissions``: a client's submission key per kind of create, unique, with what the first call
  returned (a retry returns it) and the submitting session's digest (the 随手拍 rate limit).
- ``events.duplicate_of_id``: the likely original of a near-duplicate report (疑似重复), for staff to merge.
- ``events.external_ref`` with a unique index on (source, external_ref): 外部编号 imported once per source.

Columns are added in place (no table copy on SQLite: the events table may hold millions of rows).

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-02 01:40:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None

BIG_ID = sa.BigInteger().with_variant(sa.Integer(), 'sqlite')


def upgrade() -> None:
    op.create_table(
        'submissions',
        sa.Column('id', BIG_ID, autoincrement=True, nullable=False),
        sa.Column('kind', sa.String(length=32), nullable=False),
        sa.Column('key', sa.String(length=64), nullable=False),
        sa.Column('fingerprint', sa.String(length=64), nullable=False),
        sa.Column('origin', sa.String(length=64), nullable=True),
        sa.Column('entity_id', BIG_ID, nullable=True),
        sa.Column('result_json', sa.Text(), nullable=True),
        sa.Column('created_at', sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_submissions')),
        sa.UniqueConstraint('kind', 'key', name='uq_submissions_kind_key'),
    )
    op.create_index('ix_submissions_origin_at', 'submissions', ['origin', 'created_at'], unique=False)
    if op.get_bind().dialect.name == 'sqlite':  # ADD COLUMN with its reference: no table copy
        op.execute(
            'ALTER TABLE events ADD COLUMN duplicate_of_id INTEGER'
            ' CONSTRAINT fk_events_duplicate_of_id_events REFERENCES events (id)'
        )
    else:
        op.add_column('events', sa.Column('duplicate_of_id', BIG_ID, nullable=True))
        op.create_foreign_key(
            op.f('fk_events_duplicate_of_id_events'), 'events', 'events', ['duplicate_of_id'], ['id']
        )
    op.add_column('events', sa.Column('external_ref', sa.String(length=64), nullable=True))
    op.create_index(
        'uq_events_source_external_ref', 'events', ['source', 'external_ref'], unique=True
    )


def downgrade() -> None:
    op.drop_index('uq_events_source_external_ref', table_name='events')
    with op.batch_alter_table('events', schema=None) as batch_op:
        batch_op.drop_column('external_ref')
        batch_op.drop_column('duplicate_of_id')
    op.drop_index('ix_submissions_origin_at', table_name='submissions')
    op.drop_table('submissions')
