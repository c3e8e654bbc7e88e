"""The tables of ingested DMARC aggregate and TLS reports (issue 22), on the store's one metadata.

Times are integer seconds since the epoch (UTC): the views group them by day in SQL, alike on
SQLite and PostgreSQL. Two unique constraints per report table carry the de-duplication rule
(RFC 9990 §"Handling of Duplicates", RFC 8460 §5.1): the same Report-ID from the same
organisation, or the same organisation, domain and date range, is one report however often it
arrives. Queries live in `mecsa.reports` (storage, views, join, events).
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, ForeignKey, Index, Integer, String, Table, Text, UniqueConstraint

from mecsa.store.schema import DOMAIN_LENGTH, Id, metadata

TEXT_LENGTH = 1024  # org names, report ids, contacts: clipped to this by the parsers

dmarc_reports = Table(
    "dmarc_reports",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("org_name", String(TEXT_LENGTH), nullable=False),
    Column("email", String(TEXT_LENGTH), nullable=False),
    Column("report_id", String(TEXT_LENGTH), nullable=False),
    Column("domain", String(DOMAIN_LENGTH), nullable=False),
    Column("begin_ts", BigInteger, nullable=False),
    Column("end_ts", BigInteger, nullable=False),
    Column("form", String(16), nullable=False),  # rfc9990 or rfc7489
    Column("policy", Text, nullable=False),  # JSON of policy_published
    Column("errors", Text, nullable=False),  # JSON list of report_metadata/error
    Column("source", Text, nullable=False),  # where it was ingested from
    Column("ingested_ts", BigInteger, nullable=False, index=True),
    Column("records", Integer, nullable=False),
    Column("messages", BigInteger, nullable=False),
    UniqueConstraint("org_name", "report_id"),
    UniqueConstraint("org_name", "domain", "begin_ts", "end_ts"),
)
Index("ix_dmarc_reports_domain_begin_ts", dmarc_reports.c.domain, dmarc_reports.c.begin_ts)

dmarc_records = Table(
    "dmarc_records",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("report", Id, ForeignKey("dmarc_reports.id", ondelete="CASCADE"), nullable=False, index=True),
    Column("source_ip", String(64), nullable=False),
    Column("count", BigInteger, nullable=False),
    Column("disposition", String(16), nullable=False),
    Column("dkim_aligned", String(8), nullable=False),
    Column("spf_aligned", String(8), nullable=False),
    Column("header_from", String(DOMAIN_LENGTH), nullable=False),
    Column("envelope_from", String(DOMAIN_LENGTH), nullable=True),
    Column("envelope_to", String(DOMAIN_LENGTH), nullable=True),
    Column("dkim", Text, nullable=False),  # JSON list of {domain, selector, result, human_result}
    Column("spf", Text, nullable=False),  # JSON list of {domain, scope, result, human_result}
    Column("reasons", Text, nullable=False),  # JSON list of {type, comment}
)

tls_reports = Table(
    "tls_reports",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("org_name", String(TEXT_LENGTH), nullable=False),
    Column("report_id", String(TEXT_LENGTH), nullable=False),
    Column("domains", String(4096), nullable=False),  # the policy domains, sorted, space-separated
    Column("contact_info", String(TEXT_LENGTH), nullable=True),
    Column("begin_ts", BigInteger, nullable=False),
    Column("end_ts", BigInteger, nullable=False),
    Column("source", Text, nullable=False),
    Column("ingested_ts", BigInteger, nullable=False, index=True),
    UniqueConstraint("org_name", "report_id"),
    UniqueConstraint("org_name", "domains", "begin_ts", "end_ts"),
)

tls_policies = Table(
    "tls_policies",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("report", Id, ForeignKey("tls_reports.id", ondelete="CASCADE"), nullable=False, index=True),
    Column("policy_type", String(32), nullable=False),
    Column("policy_domain", String(DOMAIN_LENGTH), nullable=False, index=True),
    Column("mx_hosts", Text, nullable=False),  # JSON list
    Column("policy_strings", Text, nullable=False),  # JSON list
    Column("successful", BigInteger, nullable=False),
    Column("failed", BigInteger, nullable=False),
)

tls_failures = Table(
    "tls_failures",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("policy", Id, ForeignKey("tls_policies.id", ondelete="CASCADE"), nullable=False, index=True),
    Column("result_type", String(64), nullable=False),
    Column("failed_sessions", BigInteger, nullable=False),
    Column("sending_mta_ip", String(64), nullable=True),
    Column("receiving_mx_hostname", String(DOMAIN_LENGTH), nullable=True),
    Column("receiving_mx_helo", String(DOMAIN_LENGTH), nullable=True),
    Column("receiving_ip", String(64), nullable=True),
    Column("additional_information", Text, nullable=True),
    Column("failure_reason_code", Text, nullable=True),
)
