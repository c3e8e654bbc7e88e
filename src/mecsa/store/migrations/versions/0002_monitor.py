"""Monitor tables: watched domains, alerts, what each notifier was told, deliveries.

Revision ID: 0002_monitor
Revises: 0001_core
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002_monitor"
down_revision = "0001_core"
branch_labels = ("monitor",)
depends_on = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "monitor_watch",
        sa.Column("domain", sa.String(255), nullable=False),
        sa.Column("last_run_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_assessment_id", _ID, nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("domain", name="pk_monitor_watch"),
        sa.ForeignKeyConstraint(
            ["last_assessment_id"],
            ["assessments.id"],
            name="fk_monitor_watch_last_assessment_id_assessments",
            ondelete="SET NULL",
        ),
    )
    op.create_table(
        "monitor_alerts",
        sa.Column("id", _ID, autoincrement=True),
        sa.Column("domain", sa.String(255), nullable=False),
        sa.Column("key", sa.String(512), nullable=False),
        sa.Column("rule", sa.String(64), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("severity", sa.String(16), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("fingerprint", sa.String(64), nullable=False),
        sa.Column("payload", sa.Text(), nullable=False),
        sa.Column("first_seen", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_seen", sa.DateTime(timezone=True), nullable=False),
        sa.Column("resolved_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("assessment_id", _ID, nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_monitor_alerts"),
        sa.ForeignKeyConstraint(
            ["assessment_id"],
            ["assessments.id"],
            name="fk_monitor_alerts_assessment_id_assessments",
            ondelete="SET NULL",
        ),
    )
    op.create_index("ix_monitor_alerts_domain_state", "monitor_alerts", ["domain", "state"])
    op.create_table(
        "monitor_notified",
        sa.Column("alert_id", _ID, nullable=False),
        sa.Column("notifier", sa.String(64), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("fingerprint", sa.String(64), nullable=False),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("alert_id", "notifier", name="pk_monitor_notified"),
        sa.ForeignKeyConstraint(
            ["alert_id"],
            ["monitor_alerts.id"],
            name="fk_monitor_notified_alert_id_monitor_alerts",
            ondelete="CASCADE",
        ),
    )
    op.create_table(
        "monitor_deliveries",
        sa.Column("id", _ID, autoincrement=True),
        sa.Column("notifier", sa.String(64), nullable=False),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("alerts", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_monitor_deliveries"),
    )
    op.create_index("ix_monitor_deliveries_notifier_sent_at", "monitor_deliveries", ["notifier", "sent_at"])


def downgrade() -> None:
    for table in ("monitor_deliveries", "monitor_notified", "monitor_alerts", "monitor_watch"):
        op.drop_table(table)
