"""The web service's rendered reports, kept beside the assessments it made.

The report view reads the checks' typed facts, which live only in memory while the assessment is
made; the JSON document keeps their JSON form. So the service renders the report's body and the
downloadable file once, from the live assessment, and keeps them here. Assessments it did not make
(a scan's) are rendered from their document instead (`mecsa/web/document.py`).
"""

from __future__ import annotations

from sqlalchemy import Column, ForeignKey, Table, Text, insert, select

from mecsa.store.repository import Store
from mecsa.store.schema import Id, metadata

web_reports = Table(
    "web_reports",
    metadata,
    Column("assessment_id", Id, ForeignKey("assessments.id", ondelete="CASCADE"), primary_key=True),
    Column("body", Text, nullable=False),  # report_body.html.j2, rendered (escaped) markup
    Column("file", Text, nullable=False),  # the whole downloadable HTML report
)


def save_report(store: Store, assessment_id: int, body: str, file: str) -> None:
    with store.engine.begin() as conn:
        conn.execute(insert(web_reports).values(assessment_id=assessment_id, body=body, file=file))


def load_report(store: Store, assessment_id: int) -> tuple[str, str] | None:
    """(body, file) of a report the service rendered, or None."""
    with store.engine.connect() as conn:
        row = conn.execute(
            select(web_reports.c.body, web_reports.c.file).where(web_reports.c.assessment_id == assessment_id)
        ).first()
    return None if row is None else (row.body, row.file)
