"""Small `mecsa assess --json`-shaped documents for store tests."""

from __future__ import annotations

from typing import Any


def document(
    domain: str,
    levels: tuple[int, int, int] = (4, 6, 10),
    *,
    mx: tuple[str, ...] = ("mx1.provider.test",),
    spf: str = "pass",
    failing: tuple[str, ...] = (),
) -> dict[str, Any]:
    findings: list[dict[str, Any]] = [
        {"id": "spf.valid", "status": spf, "protocol": "spf", "message": "m", "evidence": []},
    ]
    findings += [
        {
            "id": f,
            "status": "fail",
            "protocol": f.split(".")[0],
            "message": "m",
            "evidence": [],
            "subject": mx[0] if mx else None,
        }
        for f in failing
    ]
    return {
        "domain": domain,
        "mecsa_version": "0.1.0",
        "duration_s": 0.25,
        "profile": "mecsa",
        "scores": dict(zip(("confidentiality", "phishing", "integrity"), levels, strict=True)),
        "protocols": {"spf": {"status": spf, "reason": "r"}, "dane": {"status": "fail", "reason": "r"}},
        "findings": findings,
        "checks": {"mx": {"hosts": [{"name": h, "preference": 10 * (i + 1)} for i, h in enumerate(mx)]}},
        "resolver": {},
    }
