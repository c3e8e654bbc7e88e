"""Where ingested reports live: `ReportStore`, the reports' queries over the shared results store
(`mecsa.store`: SQLite by default, PostgreSQL by URL; tables in `mecsa.store.reports`).

Each report is written in one transaction: a report whose records turn out malformed half-way
leaves nothing behind, and a duplicate (same organisation and Report-ID, or same organisation,
domain and date range) is recognised before anything is written, or by the unique constraints
when two writers race.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, func, insert, or_, select, update
from sqlalchemy.exc import IntegrityError

from mecsa.reports.model import DmarcHeader, DmarcRecord, TlsReport
from mecsa.store import open_store
from mecsa.store.reports import (
    dmarc_records,
    dmarc_reports,
    tls_failures,
    tls_policies,
    tls_reports,
)

_BATCH = 1000


class Outcome(StrEnum):
    STORED = "stored"
    DUPLICATE = "duplicate"


@dataclass(frozen=True, slots=True)
class Added:
    """What `add_*` did with one report."""

    outcome: Outcome
    report_id: str
    records: int = 0


def _epoch(value: dt.datetime) -> int:
    return int(value.timestamp())


def _json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


class ReportStore:
    """The store of DMARC aggregate and TLS reports. `ReportStore.open(spec)`; `close()` when done."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    @classmethod
    def open(cls, spec: str | Path | None = None) -> ReportStore:
        """Open (and migrate) the store at `spec`: a SQLite path or a URL; None for the default
        ($MECSA_STORE, else ~/.local/share/mecsa/store.sqlite). Raises `mecsa.store.StoreError`."""
        return cls(open_store(spec).engine)

    def close(self) -> None:
        self.engine.dispose()

    # --- writing ------------------------------------------------------------------------------------

    def add_dmarc(self, header: DmarcHeader, records: Iterable[DmarcRecord], source: str) -> Added:
        """Store one aggregate report and its records (streamed in batches), unless it is a duplicate."""
        meta, policy = header.metadata, header.policy
        begin, end = _epoch(meta.date_range.begin), _epoch(meta.date_range.end)
        with self.engine.begin() as conn:
            duplicate = conn.execute(
                select(dmarc_reports.c.id).where(
                    dmarc_reports.c.org_name == meta.org_name,
                    or_(
                        dmarc_reports.c.report_id == meta.report_id,
                        (dmarc_reports.c.domain == policy.domain)
                        & (dmarc_reports.c.begin_ts == begin)
                        & (dmarc_reports.c.end_ts == end),
                    ),
                )
            ).first()
        if duplicate is not None:
            return Added(Outcome.DUPLICATE, meta.report_id)
        try:
            with self.engine.begin() as conn:
                report = _key(
                    conn,
                    insert(dmarc_reports).values(
                        org_name=meta.org_name,
                        email=meta.email,
                        report_id=meta.report_id,
                        domain=policy.domain,
                        begin_ts=begin,
                        end_ts=end,
                        form=header.form.value,
                        policy=_json(dataclasses.asdict(policy)),
                        errors=_json(list(meta.errors)),
                        source=source,
                        ingested_ts=int(time.time()),
                        records=0,
                        messages=0,
                    ),
                )
                count, messages = _insert_records(conn, report, records)
                conn.execute(
                    update(dmarc_reports)
                    .where(dmarc_reports.c.id == report)
                    .values(records=count, messages=messages)
                )
        except IntegrityError:  # another writer stored the same report meanwhile
            return Added(Outcome.DUPLICATE, meta.report_id)
        return Added(Outcome.STORED, meta.report_id, count)

    def add_tls(self, report: TlsReport, source: str) -> Added:
        """Store one TLS report, unless it is a duplicate."""
        begin, end = _epoch(report.date_range.begin), _epoch(report.date_range.end)
        domains = " ".join(report.policy_domains)
        with self.engine.begin() as conn:
            duplicate = conn.execute(
                select(tls_reports.c.id).where(
                    tls_reports.c.org_name == report.organization_name,
                    or_(
                        tls_reports.c.report_id == report.report_id,
                        (tls_reports.c.domains == domains)
                        & (tls_reports.c.begin_ts == begin)
                        & (tls_reports.c.end_ts == end),
                    ),
                )
            ).first()
        if duplicate is not None:
            return Added(Outcome.DUPLICATE, report.report_id)
        try:
            with self.engine.begin() as conn:
                report_key = _key(
                    conn,
                    insert(tls_reports).values(
                        org_name=report.organization_name,
                        report_id=report.report_id,
                        domains=domains,
                        contact_info=report.contact_info,
                        begin_ts=begin,
                        end_ts=end,
                        source=source,
                        ingested_ts=int(time.time()),
                    ),
                )
                failures = 0
                for policy in report.policies:
                    policy_key = _key(
                        conn,
                        insert(tls_policies).values(
                            report=report_key,
                            policy_type=policy.policy_type,
                            policy_domain=policy.policy_domain,
                            mx_hosts=_json(list(policy.mx_hosts)),
                            policy_strings=_json(list(policy.policy_strings)),
                            successful=policy.successful_sessions,
                            failed=policy.failed_sessions,
                        ),
                    )
                    rows = [
                        {
                            "policy": policy_key,
                            "result_type": f.result_type,
                            "failed_sessions": f.failed_session_count,
                            "sending_mta_ip": f.sending_mta_ip,
                            "receiving_mx_hostname": f.receiving_mx_hostname,
                            "receiving_mx_helo": f.receiving_mx_helo,
                            "receiving_ip": f.receiving_ip,
                            "additional_information": f.additional_information,
                            "failure_reason_code": f.failure_reason_code,
                        }
                        for f in policy.failures
                    ]
                    if rows:
                        conn.execute(insert(tls_failures), rows)
                    failures += len(rows)
        except IntegrityError:
            return Added(Outcome.DUPLICATE, report.report_id)
        return Added(Outcome.STORED, report.report_id, failures)

    # --- reading ------------------------------------------------------------------------------------

    def counts(self) -> dict[str, int]:
        """How many reports and rows the store holds."""
        with self.engine.connect() as conn:
            return {
                t.name: int(conn.execute(select(func.count()).select_from(t)).scalar_one())
                for t in (dmarc_reports, dmarc_records, tls_reports, tls_policies, tls_failures)
            }

    def connect(self) -> Connection:
        return self.engine.connect()

    def rows(self, statement: Any) -> Iterator[Any]:
        """The rows of one query (views build their own statements on the tables)."""
        with self.engine.connect() as conn:
            yield from conn.execute(statement)


def _key(conn: Connection, statement: Any) -> int:
    """The primary key of the row one INSERT made."""
    key = conn.execute(statement).inserted_primary_key
    assert key is not None
    return int(key[0])


def _insert_records(conn: Connection, report: int, records: Iterable[DmarcRecord]) -> tuple[int, int]:
    count = messages = 0
    batch: list[dict[str, Any]] = []
    for record in records:
        count += 1
        messages += record.count
        batch.append(
            {
                "report": report,
                "source_ip": record.source_ip,
                "count": record.count,
                "disposition": record.disposition,
                "dkim_aligned": record.dkim_aligned,
                "spf_aligned": record.spf_aligned,
                "header_from": record.header_from,
                "envelope_from": record.envelope_from,
                "envelope_to": record.envelope_to,
                "dkim": _json([dataclasses.asdict(d) for d in record.dkim]),
                "spf": _json([dataclasses.asdict(s) for s in record.spf]),
                "reasons": _json([dataclasses.asdict(r) for r in record.reasons]),
            }
        )
        if len(batch) >= _BATCH:
            conn.execute(insert(dmarc_records), batch)
            batch = []
    if batch:
        conn.execute(insert(dmarc_records), batch)
    return count, messages
