"""The store's tables: one `MetaData` for every table of every feature (SQLAlchemy 2 Core).

This module holds the core tables, the ones the scanner writes and everything else reads:

- `scans`: one bulk run (its input, options, times, state and running counts);
- `assessments`: one domain's result, with the JSON document of `mecsa assess --json` as text and
  the three levels as indexed columns; `scan_id` is NULL for an assessment made outside a scan
  (the web service, the monitor);
- `assessment_protocols`: one row per (assessment, protocol) with its status, for adoption queries;
- `assessment_findings`: one row per finding (id, status, subject), for summaries and diffs;
- `assessment_mx`: the MX host names of an assessment and their provider (registrable domain),
  for the per-provider summary.

Other features add their tables in their own module under `mecsa/store/` on this same `metadata`,
with their own migration revision; see `mecsa/store/__init__.py` for the pattern.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    SmallInteger,
    String,
    Table,
    Text,
    UniqueConstraint,
)

# Deterministic constraint names: Alembic needs names to alter constraints, and SQLite's batch mode
# (table rebuilds) needs them to recreate the same constraints.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

metadata = MetaData(naming_convention=NAMING_CONVENTION)

# BIGINT on PostgreSQL; SQLite only auto-increments a column declared exactly INTEGER.
Id = BigInteger().with_variant(Integer(), "sqlite")

# A domain name is at most 253 octets; an input line that is not a domain is kept cut to this size.
DOMAIN_LENGTH = 255

scans = Table(
    "scans",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("input_name", Text, nullable=True),  # the list's file name, "-" for stdin, NULL if none
    Column("options", Text, nullable=False),  # JSON object: the options the scan ran with
    Column("profile", String(32), nullable=False),
    Column("mecsa_version", String(32), nullable=False),
    Column("started_at", DateTime(timezone=True), nullable=False),
    Column("finished_at", DateTime(timezone=True), nullable=True),
    Column("state", String(16), nullable=False),  # running | finished | interrupted | failed
    Column("domains_done", Integer, nullable=False, default=0),
    Column("errors", Integer, nullable=False, default=0),
)

assessments = Table(
    "assessments",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("scan_id", Id, ForeignKey("scans.id", ondelete="CASCADE"), nullable=True, index=True),
    Column("domain", String(DOMAIN_LENGTH), nullable=False, index=True),
    Column("created_at", DateTime(timezone=True), nullable=False, index=True),
    Column("profile", String(32), nullable=False),
    Column("mecsa_version", String(32), nullable=False),
    Column("confidentiality", SmallInteger, nullable=True, index=True),
    Column("phishing", SmallInteger, nullable=True, index=True),
    Column("integrity", SmallInteger, nullable=True, index=True),
    # error: no assessment could be made (the input was not a domain, the assessment crashed)
    Column("error", Boolean, nullable=False, default=False),
    Column("error_reason", Text, nullable=True),
    Column("duration_s", Float, nullable=True),
    Column("document", Text, nullable=False),  # the JSON record, as written to the scan's output
    # One result per domain and scan: what --resume relies on. NULL scan ids never collide.
    UniqueConstraint("scan_id", "domain"),
)

assessment_protocols = Table(
    "assessment_protocols",
    metadata,
    Column("assessment_id", Id, ForeignKey("assessments.id", ondelete="CASCADE"), primary_key=True),
    Column("protocol", String(32), primary_key=True),
    Column("status", String(16), nullable=False),
    Index("ix_assessment_protocols_protocol_status", "protocol", "status"),
)

assessment_findings = Table(
    "assessment_findings",
    metadata,
    Column("assessment_id", Id, ForeignKey("assessments.id", ondelete="CASCADE"), primary_key=True),
    Column("position", Integer, primary_key=True),  # the finding's place in the document
    Column("finding_id", String(96), nullable=False),
    Column("protocol", String(32), nullable=False),
    Column("status", String(16), nullable=False),
    Column("subject", Text, nullable=True),
    Index("ix_assessment_findings_finding_status", "finding_id", "status"),
)

assessment_mx = Table(
    "assessment_mx",
    metadata,
    Column("assessment_id", Id, ForeignKey("assessments.id", ondelete="CASCADE"), primary_key=True),
    Column("host", String(DOMAIN_LENGTH), primary_key=True),
    Column("preference", Integer, nullable=True),
    Column("provider", String(DOMAIN_LENGTH), nullable=False, index=True),
)
