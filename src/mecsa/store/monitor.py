"""The monitor's tables (issue 21), on the store's one `metadata`; revision `0002_monitor`.

- `monitor_watch`: one row per watched domain: when the monitor last assessed it, and how that went;
- `monitor_alerts`: every alert raised; a condition is `open` until it clears (`resolved`), an event
  is stored as `event`; `payload` is the alert's JSON (message, evidence, fixes);
- `monitor_notified`: what each notifier was last told about each alert (its state and fingerprint):
  the de-duplication, so the same alert is not resent until it changes or clears;
- `monitor_deliveries`: one row per message sent, per notifier: the rate limit counts these.
"""

from __future__ import annotations

from sqlalchemy import Column, DateTime, ForeignKey, Index, Integer, String, Table, Text

from mecsa.store.schema import DOMAIN_LENGTH, Id, metadata

monitor_watch = Table(
    "monitor_watch",
    metadata,
    Column("domain", String(DOMAIN_LENGTH), primary_key=True),
    Column("last_run_at", DateTime(timezone=True), nullable=True),
    Column("last_assessment_id", Id, ForeignKey("assessments.id", ondelete="SET NULL"), nullable=True),
    Column("last_error", Text, nullable=True),
)

monitor_alerts = Table(
    "monitor_alerts",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("domain", String(DOMAIN_LENGTH), nullable=False),
    Column("key", String(512), nullable=False),
    Column("rule", String(64), nullable=False),
    Column("kind", String(16), nullable=False),
    Column("severity", String(16), nullable=False),
    Column("state", String(16), nullable=False),  # open | resolved | event
    Column("fingerprint", String(64), nullable=False),
    Column("payload", Text, nullable=False),
    Column("first_seen", DateTime(timezone=True), nullable=False),
    Column("last_seen", DateTime(timezone=True), nullable=False),
    Column("resolved_at", DateTime(timezone=True), nullable=True),
    Column("assessment_id", Id, ForeignKey("assessments.id", ondelete="SET NULL"), nullable=True),
    Index("ix_monitor_alerts_domain_state", "domain", "state"),
)

monitor_notified = Table(
    "monitor_notified",
    metadata,
    Column("alert_id", Id, ForeignKey("monitor_alerts.id", ondelete="CASCADE"), primary_key=True),
    Column("notifier", String(64), primary_key=True),
    Column("state", String(16), nullable=False),
    Column("fingerprint", String(64), nullable=False),
    Column("sent_at", DateTime(timezone=True), nullable=False),
)

monitor_deliveries = Table(
    "monitor_deliveries",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("notifier", String(64), nullable=False),
    Column("sent_at", DateTime(timezone=True), nullable=False),
    Column("alerts", Integer, nullable=False),
    Index("ix_monitor_deliveries_notifier_sent_at", "notifier", "sent_at"),
)
