"""the jobs runner's record of runs and due items: job runs, 督办 reminders, daily alerts, audit checks

- ``job_runs``: one row per (job, due moment), unique: the claim that lets one runner do it, then its
  outcome, count, summary and error (decision 0015).
- ``event_reminders``: one 督办 reminder per event and stage deadline.
- ``daily_alerts``: the daily early-warning pass's alerts, by day and unit code.
- ``audit_checks``: the nightly verification of the audit chain.

New tables only: nothing existing is copied or changed.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-02 01:40:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "job_runs",
        sa.Column("id", BIG_ID, autoincrement=True, nullable=False),
        sa.Column("job", sa.String(length=64), nullable=False),
        sa.Column("due_at", sa.DateTime(), nullable=False),
        sa.Column("started_at", sa.DateTime(), nullable=False),
        sa.Column("finished_at", sa.DateTime(), nullable=True),
        sa.Column("outcome", sa.String(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), server_default=sa.text("1"), nullable=False),
        sa.Column("count", sa.Integer(), nullable=True),
        sa.Column("summary", sa.String(length=500), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("runner", sa.String(length=100), nullable=False),
        sa.CheckConstraint("outcome IN ('running', 'ok', 'failed')", name=op.f("ck_job_runs_outcome_known")),
        sa.CheckConstraint("attempts >= 1", name=op.f("ck_job_runs_attempts_positive")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_job_runs")),
        sa.UniqueConstraint("job", "due_at", name="uq_job_runs_job_due_at"),
    )
    op.create_table(
        "event_reminders",
        sa.Column("id", BIG_ID, autoincrement=True, nullable=False),
        sa.Column("event_id", BIG_ID, nullable=False),
        sa.Column("due_at", sa.DateTime(), nullable=False),
        sa.Column("stage", sa.String(length=16), nullable=False),
        sa.Column("kind", sa.String(length=8), nullable=False),
        sa.Column("message", sa.String(length=300), nullable=False),
        sa.Column("raised_at", sa.DateTime(), nullable=False),
        sa.CheckConstraint("kind IN ('near', 'late')", name=op.f("ck_event_reminders_kind_known")),
        sa.ForeignKeyConstraint(["event_id"], ["events.id"], name=op.f("fk_event_reminders_event_id_events")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_event_reminders")),
        sa.UniqueConstraint("event_id", "due_at", name="uq_event_reminders_event_due_at"),
    )
    op.create_index("ix_event_reminders_raised_at", "event_reminders", ["raised_at"], unique=False)
    op.create_table(
        "daily_alerts",
        sa.Column("id", BIG_ID, autoincrement=True, nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("unit_code", sa.String(length=32), nullable=False),
        sa.Column("unit_level", sa.String(length=16), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("category", sa.String(length=32), nullable=False),
        sa.Column("period_start", sa.Date(), nullable=False),
        sa.Column("period_end", sa.Date(), nullable=False),
        sa.Column("evidence_json", sa.Text(), nullable=False),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_daily_alerts")),
    )
    op.create_index("ix_daily_alerts_day", "daily_alerts", ["day"], unique=False)
    op.create_table(
        "audit_checks",
        sa.Column("id", BIG_ID, autoincrement=True, nullable=False),
        sa.Column("checked_at", sa.DateTime(), nullable=False),
        sa.Column("rows_checked", BIG_ID, nullable=False),
        sa.Column("ok", sa.Boolean(), nullable=False),
        sa.Column("broken_id", BIG_ID, nullable=True),
        sa.Column("problem", sa.String(length=500), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_checks")),
    )
    op.create_index(op.f("ix_audit_checks_checked_at"), "audit_checks", ["checked_at"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_audit_checks_checked_at"), table_name="audit_checks")
    op.drop_table("audit_checks")
    op.drop_index("ix_daily_alerts_day", table_name="daily_alerts")
    op.drop_table("daily_alerts")
    op.drop_index("ix_event_reminders_raised_at", table_name="event_reminders")
    op.drop_table("event_reminders")
    op.drop_table("job_runs")
