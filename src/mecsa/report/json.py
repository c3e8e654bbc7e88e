"""The JSON contract (see schema/assessment.schema.json): extend it, never break it."""

from __future__ import annotations

import json
from typing import Any

from mecsa.model import Assessment


def assessment_to_json(assessment: Assessment) -> dict[str, Any]:
    return {
        "domain": assessment.domain,
        "mecsa_version": assessment.mecsa_version,
        "duration_s": assessment.duration_s,
        "resolver": dict(assessment.resolver),
        "protocols": {p: v.to_json() for p, v in assessment.verdicts.items()},
        "findings": [f.to_json() for f in assessment.findings],
        "checks": {r.check: dict(r.details) for r in assessment.results if r.details},
    }


def render_json(assessment: Assessment) -> str:
    return json.dumps(assessment_to_json(assessment), indent=2, ensure_ascii=False)
