"""A record that two protocols judge (dmarc/dmarc_policy, spf/spf_policy) has its details shown once."""

from __future__ import annotations

from mecsa.report.view import build_view, flatten
from tests.unit.report.samples import TODAY, hardened


def test_shared_record_details_appear_under_one_protocol_only() -> None:
    assessment = hardened()
    view = build_view(assessment, today=TODAY)
    rows = {p.protocol: set(p.details) for p in view.protocols}
    for check, first, second in (("dmarc", "dmarc", "dmarc_policy"), ("spf", "spf", "spf_policy")):
        result = next(r for r in assessment.results if r.check == check)
        own = {row for row in flatten(result.details) if not row[0].startswith(("hosts", "mx"))}
        assert own, check
        assert own <= rows[first], check  # the check's details are there...
        assert own & rows[second] == set(), check  # ...and not a second time
