"""Summary queries over one scan: levels per area, protocol adoption, failing findings, MX providers.

Each is one aggregate query on the indexed columns and rows, so that a summary of a large scan
reads no JSON documents.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import distinct, false, func, select

from mecsa.store.records import AREAS, ScanRecord
from mecsa.store.repository import Store
from mecsa.store.schema import assessment_findings, assessment_mx, assessment_protocols, assessments


@dataclass(frozen=True, slots=True)
class FindingCount:
    finding_id: str
    protocol: str
    domains: int


@dataclass(frozen=True, slots=True)
class ProviderRow:
    """An MX provider (registrable domain of the MX hosts): its domains and their mean levels."""

    provider: str
    domains: int
    share: float
    mean_levels: dict[str, float | None]


@dataclass(frozen=True, slots=True)
class ScanSummary:
    scan: ScanRecord
    assessed: int  # results with an assessment
    errors: int  # records with no assessment (bad input, crash)
    levels: dict[str, dict[int, int]]  # area -> level -> domains
    adoption: dict[str, dict[str, int]]  # protocol -> status -> domains
    failing_findings: tuple[FindingCount, ...]
    providers: tuple[ProviderRow, ...]

    def to_json(self) -> dict[str, Any]:
        s = self.scan
        return {
            "scan": {
                "id": s.id,
                "input": s.input_name,
                "state": s.state,
                "profile": s.profile,
                "mecsa_version": s.mecsa_version,
                "started_at": s.started_at.isoformat(),
                "finished_at": s.finished_at.isoformat() if s.finished_at else None,
                "options": dict(s.options),
            },
            "domains": self.assessed + self.errors,
            "assessed": self.assessed,
            "errors": self.errors,
            "levels": {area: {str(k): v for k, v in by.items()} for area, by in self.levels.items()},
            "adoption": self.adoption,
            "failing_findings": [
                {"id": f.finding_id, "protocol": f.protocol, "domains": f.domains}
                for f in self.failing_findings
            ],
            "providers": [
                {
                    "provider": p.provider,
                    "domains": p.domains,
                    "share": round(p.share, 4),
                    "mean_levels": p.mean_levels,
                }
                for p in self.providers
            ],
        }


def scan_summary(store: Store, scan_id: int, *, top: int = 20) -> ScanSummary | None:
    """The summary of scan `scan_id`, or None when there is no such scan."""
    scan = store.get_scan(scan_id)
    if scan is None:
        return None
    in_scan = assessments.c.scan_id == scan_id
    good = in_scan & (assessments.c.error == false())
    with store.engine.connect() as conn:
        counts = conn.execute(
            select(assessments.c.error, func.count()).where(in_scan).group_by(assessments.c.error)
        ).all()
        by_error = {bool(e): int(n) for e, n in counts}
        levels: dict[str, dict[int, int]] = {}
        for area in AREAS:
            column = assessments.c[area]
            rows = conn.execute(
                select(column, func.count()).where(good, column.is_not(None)).group_by(column)
            ).all()
            levels[area] = {int(level): int(n) for level, n in sorted(rows)}
        adoption: dict[str, dict[str, int]] = {}
        rows = conn.execute(
            select(assessment_protocols.c.protocol, assessment_protocols.c.status, func.count())
            .join(assessments, assessments.c.id == assessment_protocols.c.assessment_id)
            .where(good)
            .group_by(assessment_protocols.c.protocol, assessment_protocols.c.status)
        ).all()
        for protocol, status, n in rows:
            adoption.setdefault(protocol, {})[status] = int(n)
        domains = func.count(distinct(assessment_findings.c.assessment_id))
        failing = conn.execute(
            select(assessment_findings.c.finding_id, assessment_findings.c.protocol, domains)
            .join(assessments, assessments.c.id == assessment_findings.c.assessment_id)
            .where(good, assessment_findings.c.status == "fail")
            .group_by(assessment_findings.c.finding_id, assessment_findings.c.protocol)
            .order_by(domains.desc(), assessment_findings.c.finding_id)
            .limit(top)
        ).all()
        # A domain with two MX hosts of one provider counts once for it (and once in its means).
        served = select(assessment_mx.c.provider, assessment_mx.c.assessment_id).distinct().subquery("served")
        provider_domains = func.count(served.c.assessment_id)
        means = [func.avg(assessments.c[a]) for a in AREAS]
        providers = conn.execute(
            select(served.c.provider, provider_domains, *means)
            .join(assessments, assessments.c.id == served.c.assessment_id)
            .where(good)
            .group_by(served.c.provider)
            .order_by(provider_domains.desc(), served.c.provider)
            .limit(top)
        ).all()
    assessed = by_error.get(False, 0)
    return ScanSummary(
        scan=scan,
        assessed=assessed,
        errors=by_error.get(True, 0),
        levels=levels,
        adoption=dict(sorted(adoption.items())),
        failing_findings=tuple(FindingCount(f, p, int(n)) for f, p, n in failing),
        providers=tuple(
            ProviderRow(
                provider=row[0],
                domains=int(row[1]),
                share=int(row[1]) / assessed if assessed else 0.0,
                mean_levels={
                    a: None if m is None else round(float(m), 2) for a, m in zip(AREAS, row[2:], strict=True)
                },
            )
            for row in providers
        ),
    )
