"""admin_units.population_estimated: the boundary import estimated the unit's population

A county's boundary file often has no population column, or gaps in it; the import estimates them by level
and kind from the area (geo.generate.estimate_population) and says so once, in its result. 投诉率 (events
per 10,000 residents) of those units then rested on an estimate that no report or page mentioned. The
flag keeps what the import knew, so the rankings and reports can say 人口为估算 beside the figure.

Revision ID: 0020
Revises: 0019
Create Date: 2026-12-04 19:20:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0020"
down_revision = "0019"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # A plain ADD COLUMN on both stores: Alembic's batch mode rebuilt the table on SQLite (DROP TABLE
    # admin_units), which every other table references, and a store with data refused it.
    op.add_column(
        "admin_units", sa.Column("population_estimated", sa.Boolean(), nullable=False, server_default=sa.false())
    )


def downgrade() -> None:
    with op.batch_alter_table("admin_units") as batch:
        batch.drop_column("population_estimated")
