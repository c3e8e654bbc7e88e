"""The tables of ingested reports (SQLAlchemy 2 Core): one row per report, record and failure.

Times are integer seconds since the epoch (UTC), so SQLite and PostgreSQL compare them alike.
Two unique constraints per report table carry the de-duplication rule (RFC 9990 §"Handling of
Duplicates", RFC 8460 §5.1): the same Report-ID from the same organisation, or the same
organisation, domain and date range, is one report however many times it arrives.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Column,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)

metadata = MetaData()

dmarc_reports = Table(
    "dmarc_reports",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("org_name", String(1024), nullable=False),
    Column("email", String(1024), nullable=False),
    Column("report_id", String(1024), nullable=False),
    Column("domain", String(255), nullable=False),
    Column("begin_ts", BigInteger, nullable=False),
    Column("end_ts", BigInteger, nullable=False),
    Column("form", String(16), nullable=False),
    Column("policy", Text, nullable=False),  # JSON of PolicyPublished
    Column("errors", Text, nullable=False),  # JSON list of report_metadata/error
    Column("source", Text, nullable=False),  # where it was ingested from
    Column("ingested_ts", BigInteger, nullable=False),
    Column("records", Integer, nullable=False),
    Column("messages", BigInteger, nullable=False),
    UniqueConstraint("org_name", "report_id", name="dmarc_reports_org_report_id"),
    UniqueConstraint("org_name", "domain", "begin_ts", "end_ts", name="dmarc_reports_org_range"),
)
Index("dmarc_reports_domain_begin", dmarc_reports.c.domain, dmarc_reports.c.begin_ts)

dmarc_records = Table(
    "dmarc_records",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("report", Integer, ForeignKey("dmarc_reports.id", ondelete="CASCADE"), nullable=False),
    Column("source_ip", String(64), nullable=False),
    Column("count", BigInteger, nullable=False),
    Column("disposition", String(16), nullable=False),
    Column("dkim_aligned", String(8), nullable=False),
    Column("spf_aligned", String(8), nullable=False),
    Column("header_from", String(255), nullable=False),
    Column("envelope_from", String(255)),
    Column("envelope_to", String(255)),
    Column("dkim", Text, nullable=False),  # JSON list of {domain, selector, result, human_result}
    Column("spf", Text, nullable=False),  # JSON list of {domain, scope, result, human_result}
    Column("reasons", Text, nullable=False),  # JSON list of {type, comment}
)
Index("dmarc_records_report", dmarc_records.c.report)

tls_reports = Table(
    "tls_reports",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("org_name", String(1024), nullable=False),
    Column("report_id", String(1024), nullable=False),
    Column("domains", String(4096), nullable=False),  # the policy domains, sorted, space-separated
    Column("contact_info", String(1024)),
    Column("begin_ts", BigInteger, nullable=False),
    Column("end_ts", BigInteger, nullable=False),
    Column("source", Text, nullable=False),
    Column("ingested_ts", BigInteger, nullable=False),
    UniqueConstraint("org_name", "report_id", name="tls_reports_org_report_id"),
    UniqueConstraint("org_name", "domains", "begin_ts", "end_ts", name="tls_reports_org_range"),
)

tls_policies = Table(
    "tls_policies",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("report", Integer, ForeignKey("tls_reports.id", ondelete="CASCADE"), nullable=False),
    Column("policy_type", String(32), nullable=False),
    Column("policy_domain", String(255), nullable=False),
    Column("mx_hosts", Text, nullable=False),  # JSON list
    Column("policy_strings", Text, nullable=False),  # JSON list
    Column("successful", BigInteger, nullable=False),
    Column("failed", BigInteger, nullable=False),
)
Index("tls_policies_domain", tls_policies.c.policy_domain)
Index("tls_policies_report", tls_policies.c.report)

tls_failures = Table(
    "tls_failures",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("policy", Integer, ForeignKey("tls_policies.id", ondelete="CASCADE"), nullable=False),
    Column("result_type", String(64), nullable=False),
    Column("failed_sessions", BigInteger, nullable=False),
    Column("sending_mta_ip", String(64)),
    Column("receiving_mx_hostname", String(255)),
    Column("receiving_mx_helo", String(255)),
    Column("receiving_ip", String(64)),
    Column("additional_information", Text),
    Column("failure_reason_code", Text),
)
Index("tls_failures_policy", tls_failures.c.policy)
