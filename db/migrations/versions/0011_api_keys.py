"""Open311 API keys, one per channel (decision 0024)

- ``api_keys``: the sha256 of a channel's key, its channel and label, the area it is scoped to, the
  categories it may file (comma-separated, empty for all), its per-minute limit, when it was created
  and revoked.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-02 02:10:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0011'
down_revision = '0010'
branch_labels = None
depends_on = None

BIG_ID = sa.BigInteger().with_variant(sa.Integer(), 'sqlite')


def upgrade() -> None:
    op.create_table(
        'api_keys',
        sa.Column('id', BIG_ID, autoincrement=True, nullable=False),
        sa.Column('key_hash', sa.String(length=64), nullable=False),
        sa.Column('channel', sa.String(length=32), nullable=False),
        sa.Column('label', sa.String(length=100), nullable=False),
        sa.Column('scope_unit_id', BIG_ID, nullable=False),
        sa.Column('categories', sa.String(length=300), nullable=False),
        sa.Column('per_minute', sa.Integer(), nullable=False),
        sa.Column('created_at', sa.DateTime(), nullable=False),
        sa.Column('revoked_at', sa.DateTime(), nullable=True),
        sa.ForeignKeyConstraint(
            ['scope_unit_id'], ['admin_units.id'], name=op.f('fk_api_keys_scope_unit_id_admin_units')
        ),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_api_keys')),
        sa.UniqueConstraint('key_hash', name=op.f('uq_api_keys_key_hash')),
    )


def downgrade() -> None:
    op.drop_table('api_keys')
