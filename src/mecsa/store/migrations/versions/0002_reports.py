"""Ingested reports (issue 22): DMARC aggregate reports and records, SMTP TLS reports, policies, failures.

Revision ID: 0002_reports
Revises: 0001_core
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002_reports"
down_revision = "0001_core"
branch_labels = ("reports",)
depends_on = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "dmarc_reports",
        sa.Column("id", _ID, autoincrement=True),
        sa.Column("org_name", sa.String(1024), nullable=False),
        sa.Column("email", sa.String(1024), nullable=False),
        sa.Column("report_id", sa.String(1024), nullable=False),
        sa.Column("domain", sa.String(255), nullable=False),
        sa.Column("begin_ts", sa.BigInteger(), nullable=False),
        sa.Column("end_ts", sa.BigInteger(), nullable=False),
        sa.Column("form", sa.String(16), nullable=False),
        sa.Column("policy", sa.Text(), nullable=False),
        sa.Column("errors", sa.Text(), nullable=False),
        sa.Column("source", sa.Text(), nullable=False),
        sa.Column("ingested_ts", sa.BigInteger(), nullable=False),
        sa.Column("records", sa.Integer(), nullable=False),
        sa.Column("messages", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_dmarc_reports"),
        sa.UniqueConstraint("org_name", "report_id", name="uq_dmarc_reports_org_name_report_id"),
        sa.UniqueConstraint(
            "org_name",
            "domain",
            "begin_ts",
            "end_ts",
            name="uq_dmarc_reports_org_name_domain_begin_ts_end_ts",
        ),
    )
    op.create_index("ix_dmarc_reports_ingested_ts", "dmarc_reports", ["ingested_ts"])
    op.create_index("ix_dmarc_reports_domain_begin_ts", "dmarc_reports", ["domain", "begin_ts"])
    op.create_table(
        "dmarc_records",
        sa.Column("id", _ID, autoincrement=True),
        sa.Column("report", _ID, nullable=False),
        sa.Column("source_ip", sa.String(64), nullable=False),
        sa.Column("count", sa.BigInteger(), nullable=False),
        sa.Column("disposition", sa.String(16), nullable=False),
        sa.Column("dkim_aligned", sa.String(8), nullable=False),
        sa.Column("spf_aligned", sa.String(8), nullable=False),
        sa.Column("header_from", sa.String(255), nullable=False),
        sa.Column("envelope_from", sa.String(255), nullable=True),
        sa.Column("envelope_to", sa.String(255), nullable=True),
        sa.Column("dkim", sa.Text(), nullable=False),
        sa.Column("spf", sa.Text(), nullable=False),
        sa.Column("reasons", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_dmarc_records"),
        sa.ForeignKeyConstraint(
            ["report"], ["dmarc_reports.id"], name="fk_dmarc_records_report_dmarc_reports", ondelete="CASCADE"
        ),
    )
    op.create_index("ix_dmarc_records_report", "dmarc_records", ["report"])
    op.create_table(
        "tls_reports",
        sa.Column("id", _ID, autoincrement=True),
        sa.Column("org_name", sa.String(1024), nullable=False),
        sa.Column("report_id", sa.String(1024), nullable=False),
        sa.Column("domains", sa.String(4096), nullable=False),
        sa.Column("contact_info", sa.String(1024), nullable=True),
        sa.Column("begin_ts", sa.BigInteger(), nullable=False),
        sa.Column("end_ts", sa.BigInteger(), nullable=False),
        sa.Column("source", sa.Text(), nullable=False),
        sa.Column("ingested_ts", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_tls_reports"),
        sa.UniqueConstraint("org_name", "report_id", name="uq_tls_reports_org_name_report_id"),
        sa.UniqueConstraint(
            "org_name",
            "domains",
            "begin_ts",
            "end_ts",
            name="uq_tls_reports_org_name_domains_begin_ts_end_ts",
        ),
    )
    op.create_index("ix_tls_reports_ingested_ts", "tls_reports", ["ingested_ts"])
    op.create_table(
        "tls_policies",
        sa.Column("id", _ID, autoincrement=True),
        sa.Column("report", _ID, nullable=False),
        sa.Column("policy_type", sa.String(32), nullable=False),
        sa.Column("policy_domain", sa.String(255), nullable=False),
        sa.Column("mx_hosts", sa.Text(), nullable=False),
        sa.Column("policy_strings", sa.Text(), nullable=False),
        sa.Column("successful", sa.BigInteger(), nullable=False),
        sa.Column("failed", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_tls_policies"),
        sa.ForeignKeyConstraint(
            ["report"], ["tls_reports.id"], name="fk_tls_policies_report_tls_reports", ondelete="CASCADE"
        ),
    )
    op.create_index("ix_tls_policies_report", "tls_policies", ["report"])
    op.create_index("ix_tls_policies_policy_domain", "tls_policies", ["policy_domain"])
    op.create_table(
        "tls_failures",
        sa.Column("id", _ID, autoincrement=True),
        sa.Column("policy", _ID, nullable=False),
        sa.Column("result_type", sa.String(64), nullable=False),
        sa.Column("failed_sessions", sa.BigInteger(), nullable=False),
        sa.Column("sending_mta_ip", sa.String(64), nullable=True),
        sa.Column("receiving_mx_hostname", sa.String(255), nullable=True),
        sa.Column("receiving_mx_helo", sa.String(255), nullable=True),
        sa.Column("receiving_ip", sa.String(64), nullable=True),
        sa.Column("additional_information", sa.Text(), nullable=True),
        sa.Column("failure_reason_code", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_tls_failures"),
        sa.ForeignKeyConstraint(
            ["policy"], ["tls_policies.id"], name="fk_tls_failures_policy_tls_policies", ondelete="CASCADE"
        ),
    )
    op.create_index("ix_tls_failures_policy", "tls_failures", ["policy"])


def downgrade() -> None:
    for table in ("tls_failures", "tls_policies", "tls_reports", "dmarc_records", "dmarc_reports"):
        op.drop_table(table)
