"""The JSON contract (see report/assessment.schema.json): extend it, never break it."""

from __future__ import annotations

import json
from typing import Any

from mecsa.model import Assessment
from mecsa.report.untrusted import json_text

DEFAULT_PROFILE = "mecsa"  # mecsa.scoring.DEFAULT_PROFILE, repeated to keep this import light


def assessment_to_json(assessment: Assessment, profile: str = DEFAULT_PROFILE) -> dict[str, Any]:
    """The assessment as JSON-able data, with its levels under `profile`."""
    from mecsa.scoring import score_assessment

    score = score_assessment(assessment, profile)
    return {
        "domain": assessment.domain,
        "mecsa_version": assessment.mecsa_version,
        "duration_s": assessment.duration_s,
        "resolver": dict(assessment.resolver),
        "protocols": {p: v.to_json() for p, v in assessment.verdicts.items()},
        "findings": [f.to_json() for f in assessment.findings],
        "checks": {r.check: dict(r.details) for r in assessment.results if r.details},
        "profile": score.profile,
        "scores": score.levels.as_dict(),
    }


def render_json(assessment: Assessment, profile: str = DEFAULT_PROFILE) -> str:
    """The assessment as one indented JSON document (UTF-8 kept as is)."""
    # Readable UTF-8, but no raw control or bidi character on a terminal (mecsa.report.untrusted).
    return json_text(json.dumps(assessment_to_json(assessment, profile), indent=2, ensure_ascii=False))
