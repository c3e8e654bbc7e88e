"""The web service's tables (issue 16): API tokens (stored hashed) and its rendered reports.

Revision ID: 0016_web_tokens
Revises: 0001_core
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0016_web_tokens"
down_revision = "0001_core"
branch_labels = ("web",)
depends_on = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "api_tokens",
        sa.Column("id", _ID, autoincrement=True),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("shown", sa.String(16), nullable=False),
        sa.Column("digest", sa.String(64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_api_tokens"),
        sa.UniqueConstraint("digest", name="uq_api_tokens_digest"),
    )
    op.create_table(
        "web_reports",
        sa.Column("assessment_id", _ID, nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("file", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("assessment_id", name="pk_web_reports"),
        sa.ForeignKeyConstraint(
            ["assessment_id"],
            ["assessments.id"],
            name="fk_web_reports_assessment_id_assessments",
            ondelete="CASCADE",
        ),
    )


def downgrade() -> None:
    op.drop_table("web_reports")
    op.drop_table("api_tokens")
