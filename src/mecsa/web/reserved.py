"""An assessment's permanent id, taken when it starts: `/report/{id}` is valid from the first second.

The service stores a placeholder row when an assessment starts, and fills it in when it ends, in
one transaction with its protocol, finding and MX rows and its rendered report. The placeholder is
an error record that says the assessment did not finish: it is what the id shows if the service
stops while the assessment runs, and error records are left out of the freshness window, the
statistics and the scan summaries. A refused or failed assessment keeps its row with its reason.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from sqlalchemy import insert, update

from mecsa.store import NewResult, Store
from mecsa.store.records import utc_now
from mecsa.store.schema import (
    DOMAIN_LENGTH,
    assessment_findings,
    assessment_mx,
    assessment_protocols,
    assessments,
)
from mecsa.store.web_reports import web_reports

UNFINISHED = "the assessment did not finish: the service stopped while it ran"


def error_document(domain: str, reason: str) -> dict[str, Any]:
    """An error record's document, in the form a scan stores one (scan/records.py)."""
    return {"domain": domain, "status": "error", "reason": reason}


def reserve(store: Store, domain: str) -> int:
    """A new assessment id for `domain`, held by a placeholder row."""
    stored = store.add_result(None, NewResult.failed(domain, UNFINISHED, error_document(domain, UNFINISHED)))
    assert stored is not None  # outside a scan, every result is stored
    return stored


def complete(store: Store, assessment_id: int, document: Mapping[str, Any], body: str, file: str) -> None:
    """Fill in the placeholder with the finished assessment's document and its rendered report."""
    result = NewResult.from_document(document)
    # The very row values `add_results` writes, so a completed row reads as any other.
    values = Store._assessment_values(None, result, result.domain[:DOMAIN_LENGTH], utc_now())
    with store.engine.begin() as conn:
        conn.execute(update(assessments).where(assessments.c.id == assessment_id).values(**values))
        for table, rows in (
            (assessment_protocols, result.protocol_rows()),
            (assessment_findings, result.finding_rows()),
            (assessment_mx, result.mx_rows()),
        ):
            if rows:
                conn.execute(insert(table), [{"assessment_id": assessment_id, **r} for r in rows])
        conn.execute(insert(web_reports).values(assessment_id=assessment_id, body=body, file=file))


def give_reason(store: Store, assessment_id: int, domain: str, reason: str) -> None:
    """The placeholder of a refused or failed assessment says why it has no report."""
    document = json.dumps(error_document(domain, reason), ensure_ascii=False)
    with store.engine.begin() as conn:
        conn.execute(
            update(assessments)
            .where(assessments.c.id == assessment_id)
            .values(error_reason=reason, document=document)
        )
