"""Golden files for the terminal, JSON and HTML reports of real assessments (see samples.py).

Regenerate after a deliberate change with `MECSA_UPDATE_GOLDEN=1 pytest tests/unit/report`, then
read the diff before committing it.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path

import pytest

from mecsa.checks.registry import finding_kinds
from mecsa.model import Assessment
from mecsa.report.html import render_html
from mecsa.report.json import assessment_to_json, render_json
from mecsa.report.text import render_text
from mecsa.scoring import score_assessment
from tests.unit.report.samples import (
    BIDI,
    ESC_CLEAR,
    HOSTILE_IMG,
    HOSTILE_SCRIPT,
    OSC_TITLE,
    SAMPLES,
    TODAY,
    hardened,
    hostile,
    neglected,
    normalise,
)

GOLDEN = Path(__file__).parent / "golden"
UPDATE = os.environ.get("MECSA_UPDATE_GOLDEN") == "1"

RENDERERS: dict[str, Callable[[Assessment, str], str]] = {
    "txt": lambda a, p: render_text(a, p, color=False, width=100, today=TODAY) + "\n",
    "json": lambda a, p: render_json(a, p) + "\n",
    "html": lambda a, p: render_html(a, p, today=TODAY),
}
CASES = [
    (sample, profile, ext)
    for sample in SAMPLES
    for profile in ("mecsa", "mecsa-st")
    for ext in RENDERERS
    if profile == "mecsa" or sample == "neglected"
]


@pytest.mark.parametrize(("sample", "profile", "ext"), CASES)
def test_output_matches_golden_file(sample: str, profile: str, ext: str) -> None:
    assessment = SAMPLES[sample]()
    rendered = normalise(RENDERERS[ext](assessment, profile), assessment)
    path = GOLDEN / f"{sample}.{profile}.{ext}"
    if UPDATE:
        path.write_bytes(rendered.encode("utf-8"))  # bytes: a hostile \r must survive the round trip
    assert path.exists(), f"missing golden file {path.name}: run with MECSA_UPDATE_GOLDEN=1"
    assert rendered == path.read_bytes().decode("utf-8")


def test_json_keeps_the_contract_and_adds_profile_and_scores() -> None:
    for profile in ("mecsa", "mecsa-st"):
        doc = assessment_to_json(neglected(), profile)
        assert list(doc)[:7] == [
            "domain",
            "mecsa_version",
            "duration_s",
            "resolver",
            "protocols",
            "findings",
            "checks",
        ]
        assert doc["profile"] == profile
        assert doc["scores"] == score_assessment(neglected(), profile).levels.as_dict()
    assert assessment_to_json(neglected(), "mecsa")["scores"] == {
        "confidentiality": 0,
        "phishing": 2,
        "integrity": 0,
    }
    # mecsa-st counts mta-sts in testing mode, and spf alone gives spoofing 3
    assert assessment_to_json(neglected(), "mecsa-st")["scores"] == {
        "confidentiality": 0,
        "phishing": 3,
        "integrity": 0,
    }
    assert json.loads(render_json(hardened()))["scores"] == {
        "confidentiality": 10,
        "phishing": 10,
        "integrity": 10,
    }


def test_plain_text_has_no_escape_codes_and_colour_text_has_them() -> None:
    plain = render_text(neglected(), color=False)
    assert "\x1b[" not in plain
    coloured = render_text(neglected(), color=True)
    assert "\x1b[" in coloured
    assert "weak.test" in coloured


def test_text_shows_levels_stars_marks_and_the_dnssec_note() -> None:
    text = render_text(neglected(), today=TODAY)
    assert "Phishing & identity theft   2/10  ★☆☆☆☆  1 star" in text
    assert "note: the resolver does not validate DNSSEC" in text
    assert (
        "✘ starttls     1 of 2 reachable MX host(s) offer STARTTLS with TLS 1.2+ (50%; MECSA needs 80%)"
        in text
    )
    assert "? dnssec       the resolver does not validate DNSSEC" in text
    assert "✔ spf          one valid SPF record; a sender matching nothing costs 2 of 10 lookups" in text
    assert "MX mx2.weak.test  (preference 20; DNSSEC A indeterminate; DNSSEC AAAA indeterminate)" in text
    assert "│ 127.0.0.21 │ not offered │ —            │ no_tls      │ no TLSA │ covered        │" in text
    assert '    weak.test. 3600 IN TXT "v=spf1 mx a:out.weak.test -all"' in text
    assert "note:" not in render_text(hardened())


def test_hardened_mx_table_shows_the_real_values() -> None:
    # The defect: the old made-up sample had no mx/starttls/x509/dane facts, so all dashes.
    text = render_text(hardened(), color=False, width=100, today=TODAY)
    assert "MX mx1.good.test  (preference 10; DNSSEC A secure; DNSSEC AAAA secure)" in text
    row = (
        "│ 127.0.0.10 │ offered                │ 1.2, 1.3     │ valid         │ matched │ covered          │"
    )
    assert row in text
    assert (
        "│            │ TLS_AES_256_GCM_SHA384 │              │ 88 days left  │         │                  │"
        in text
    )
    assert "—" not in text.split("MX mx1.good.test")[1].split("Problems")[0]


def test_text_neutralises_terminal_control_characters() -> None:
    # the real answers did carry raw ESC, OSC and bidi characters into the assessment...
    raw = [e for f in hostile().findings for e in f.evidence]
    assert any("\x1b[2J" in e for e in raw) and any("\x1b]0;pwned\x07" in e for e in raw)
    assert any("\u202e" in e for e in raw)
    text = render_text(hostile(), today=TODAY)
    # ...and the text report shows them as escapes: ESC, BEL and U+202E, each where the record's
    # own problem is described (the invalid DMARC record's rua no longer feeds a fix)
    assert "\x1b" not in text and "\u202e" not in text and "\x07" not in text
    assert "character '\\x1b' is not allowed" in text
    assert "pwned\\x07@evil.test" in text
    assert "mailto:\\u202etset.live@evil.test" in text
    assert "<script>document.title='pwned'</script>" in text


def test_json_carries_the_hostile_answers_verbatim() -> None:
    doc = json.loads(render_json(hostile()))
    (address,) = doc["checks"]["starttls"]["hosts"][0]["addresses"]
    assert address["smtp"]["banner"]["lines"] == [f"{HOSTILE_SCRIPT}{ESC_CLEAR} ESMTP {BIDI}gnitset"]
    assert address["smtp"]["extensions"] == [f"X-{HOSTILE_IMG}", f"X-{OSC_TITLE}{ESC_CLEAR}", "SIZE 1000"]
    assert "\\u001b[2J" in render_json(hostile())  # JSON escapes the control characters


def test_html_is_self_contained_and_escapes_everything() -> None:
    page = render_html(hostile(), today=TODAY)
    assert "<script>document.title" not in page
    assert "&lt;script&gt;document.title=&#39;pwned&#39;&lt;/script&gt;" in page
    assert "<img" not in page
    # the SMTP banner and EHLO lines reached the folded details, as text
    (banner,) = [line for line in page.splitlines() if "smtp.banner.lines</th>" in line]
    assert "<td>&lt;script&gt;document.title=&#39;pwned&#39;&lt;/script&gt;" in banner
    assert "<td>X-&lt;img src=x onerror=&#34;document.title=&#39;pwned-img&#39;&#34;&gt;, X-" in page
    assert page.count("<script") == 1
    for external in ('src="http', "src='http", 'href="http', "<link", "@import", "url("):
        assert external not in page
    assert "<svg" in page and "<details" in page and 'class="copy"' in page


def test_the_samples_emit_only_declared_findings() -> None:
    # Real runs, so the catalogue is checked against what the checks emit here too (36 kinds).
    declared = {(k.id, k.status, k.protocol, k.remedy) for k in finding_kinds()}
    emitted = {(f.id, f.status, f.protocol, f.remediation) for s in SAMPLES.values() for f in s().findings}
    assert len(emitted) > 30
    assert emitted - declared == set()
