"""Core tables: scans, assessments and their protocol, finding and MX rows.

Revision ID: 0001_core
Revises:
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001_core"
down_revision = None
branch_labels = ("core",)
depends_on = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "scans",
        sa.Column("id", _ID, primary_key=True, autoincrement=True),
        sa.Column("input_name", sa.Text(), nullable=True),
        sa.Column("options", sa.Text(), nullable=False),
        sa.Column("profile", sa.String(32), nullable=False),
        sa.Column("mecsa_version", sa.String(32), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("domains_done", sa.Integer(), nullable=False),
        sa.Column("errors", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_scans"),
    )
    op.create_table(
        "assessments",
        sa.Column("id", _ID, autoincrement=True),
        sa.Column("scan_id", _ID, nullable=True),
        sa.Column("domain", sa.String(255), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("profile", sa.String(32), nullable=False),
        sa.Column("mecsa_version", sa.String(32), nullable=False),
        sa.Column("confidentiality", sa.SmallInteger(), nullable=True),
        sa.Column("phishing", sa.SmallInteger(), nullable=True),
        sa.Column("integrity", sa.SmallInteger(), nullable=True),
        sa.Column("error", sa.Boolean(), nullable=False),
        sa.Column("error_reason", sa.Text(), nullable=True),
        sa.Column("duration_s", sa.Float(), nullable=True),
        sa.Column("document", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_assessments"),
        sa.ForeignKeyConstraint(
            ["scan_id"], ["scans.id"], name="fk_assessments_scan_id_scans", ondelete="CASCADE"
        ),
        sa.UniqueConstraint("scan_id", "domain", name="uq_assessments_scan_id_domain"),
    )
    for column in ("scan_id", "domain", "created_at", "confidentiality", "phishing", "integrity"):
        op.create_index(f"ix_assessments_{column}", "assessments", [column])
    for table, extra in (
        (
            "assessment_protocols",
            [
                sa.Column("protocol", sa.String(32), nullable=False),
                sa.Column("status", sa.String(16), nullable=False),
            ],
        ),
        (
            "assessment_findings",
            [
                sa.Column("position", sa.Integer(), nullable=False),
                sa.Column("finding_id", sa.String(96), nullable=False),
                sa.Column("protocol", sa.String(32), nullable=False),
                sa.Column("status", sa.String(16), nullable=False),
                sa.Column("subject", sa.Text(), nullable=True),
            ],
        ),
        (
            "assessment_mx",
            [
                sa.Column("host", sa.String(255), nullable=False),
                sa.Column("preference", sa.Integer(), nullable=True),
                sa.Column("provider", sa.String(255), nullable=False),
            ],
        ),
    ):
        key = {"assessment_protocols": "protocol", "assessment_findings": "position"}.get(table, "host")
        op.create_table(
            table,
            sa.Column("assessment_id", _ID, nullable=False),
            *extra,
            sa.PrimaryKeyConstraint("assessment_id", key, name=f"pk_{table}"),
            sa.ForeignKeyConstraint(
                ["assessment_id"],
                ["assessments.id"],
                name=f"fk_{table}_assessment_id_assessments",
                ondelete="CASCADE",
            ),
        )
    op.create_index("ix_assessment_protocols_protocol_status", "assessment_protocols", ["protocol", "status"])
    op.create_index("ix_assessment_findings_finding_status", "assessment_findings", ["finding_id", "status"])
    op.create_index("ix_assessment_mx_provider", "assessment_mx", ["provider"])


def downgrade() -> None:
    for table in ("assessment_mx", "assessment_findings", "assessment_protocols", "assessments", "scans"):
        op.drop_table(table)
