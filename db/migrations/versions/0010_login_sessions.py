"""server-side login sessions (random token, idle and absolute timeouts)

- ``login_sessions``: one row per login (decision 0017). The browser's cookie holds a random token; the
  row holds its sha256 only (``token_hash``), the one-time hand-over code's digest until it is redeemed
  (``handoff_hash``, ``handoff_until``, ``binding``), the account's credential stamp at login, the role
  whose limits apply, when it started, was last used and expires, how it ended, and the inspector's
  unsaved form (``draft_json``).

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-02 01:40:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0010'
down_revision = '0009'
branch_labels = None
depends_on = None

BIG_ID = sa.BigInteger().with_variant(sa.Integer(), 'sqlite')
ROLES = ('admin', 'command_center', 'township_leader', 'department', 'inspector')


def upgrade() -> None:
    op.create_table(
        'login_sessions',
        sa.Column('id', BIG_ID, autoincrement=True, nullable=False),
        sa.Column('user_id', BIG_ID, nullable=False),
        sa.Column('token_hash', sa.String(length=64), nullable=True),
        sa.Column('handoff_hash', sa.String(length=64), nullable=True),
        sa.Column('handoff_until', sa.DateTime(), nullable=True),
        sa.Column('binding', sa.String(length=64), nullable=False),
        sa.Column('stamp', sa.String(length=64), nullable=False),
        sa.Column(
            'role',
            sa.Enum(*ROLES, name='login_session_role', native_enum=False, create_constraint=True, length=32),
            nullable=False,
        ),
        sa.Column('fresh_password', sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column('started_at', sa.DateTime(), nullable=False),
        sa.Column('last_seen_at', sa.DateTime(), nullable=False),
        sa.Column('expires_at', sa.DateTime(), nullable=False),
        sa.Column('ended_at', sa.DateTime(), nullable=True),
        sa.Column('end_reason', sa.String(length=32), nullable=True),
        sa.Column('draft_json', sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_login_sessions_user_id_users')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_login_sessions')),
        sa.UniqueConstraint('handoff_hash', name=op.f('uq_login_sessions_handoff_hash')),
        sa.UniqueConstraint('token_hash', name=op.f('uq_login_sessions_token_hash')),
    )
    op.create_index(
        'ix_login_sessions_user_id_ended_at', 'login_sessions', ['user_id', 'ended_at'], unique=False
    )


def downgrade() -> None:
    op.drop_index('ix_login_sessions_user_id_ended_at', table_name='login_sessions')
    op.drop_table('login_sessions')
