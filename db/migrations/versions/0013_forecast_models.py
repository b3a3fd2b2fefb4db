"""Hazard forecast models and per-venue scores (decision 0030)

- ``forecast_models``: each trained version with its cut-off, feature names, validation figures, the
  pickled estimator and whether it is the active one (the previous ones are kept for rollback).
- ``venue_forecasts``: each venue's probability, severity weight and explanation per model version.

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-02 04:10:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0013'
down_revision = '0012'
branch_labels = None
depends_on = None

BIG_ID = sa.BigInteger().with_variant(sa.Integer(), 'sqlite')


def upgrade() -> None:
    op.create_table(
        'forecast_models',
        sa.Column('id', BIG_ID, autoincrement=True, nullable=False),
        sa.Column('version', sa.Integer(), nullable=False),
        sa.Column('created_at', sa.DateTime(), nullable=False),
        sa.Column('cutoff', sa.Date(), nullable=False),
        sa.Column('features_json', sa.Text(), nullable=False),
        sa.Column('metrics_json', sa.Text(), nullable=False),
        sa.Column('model_blob', sa.LargeBinary(), nullable=False),
        sa.Column('is_active', sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_forecast_models')),
        sa.UniqueConstraint('version', name=op.f('uq_forecast_models_version')),
    )
    op.create_table(
        'venue_forecasts',
        sa.Column('model_id', BIG_ID, nullable=False),
        sa.Column('venue_id', BIG_ID, nullable=False),
        sa.Column('scored_on', sa.Date(), nullable=False),
        sa.Column('probability', sa.Float(), nullable=False),
        sa.Column('severity', sa.Float(), nullable=False),
        sa.Column('explanation_json', sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(
            ['model_id'], ['forecast_models.id'], name=op.f('fk_venue_forecasts_model_id_forecast_models')
        ),
        sa.ForeignKeyConstraint(['venue_id'], ['venues.id'], name=op.f('fk_venue_forecasts_venue_id_venues')),
        sa.PrimaryKeyConstraint('model_id', 'venue_id', name=op.f('pk_venue_forecasts')),
    )
    op.create_index('ix_venue_forecasts_venue', 'venue_forecasts', ['venue_id'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_venue_forecasts_venue', table_name='venue_forecasts')
    op.drop_table('venue_forecasts')
    op.drop_table('forecast_models')
