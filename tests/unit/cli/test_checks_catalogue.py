"""`mecsa checks`: the catalogue comes from the registry, and docs/findings.md is kept equal to it."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from mecsa.checks.registry import CHECKS, finding_catalogue
from mecsa.cli import app
from mecsa.cli.checks import catalogue_markdown, derived_schema

DOC = Path(__file__).resolve().parents[3] / "docs" / "findings.md"
SCHEMA = Path(__file__).resolve().parents[3] / "src" / "mecsa" / "report" / "assessment.schema.json"


def test_json_lists_every_check_protocol_and_finding() -> None:
    result = CliRunner().invoke(app, ["checks", "--json"])
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    assert list(document) == [c.name for c in CHECKS]
    assert document["dmarc"]["protocols"] == ["dmarc", "dmarc_policy"]
    ids = {fid for entry in document.values() for fid in entry["findings"]}
    assert ids == set(finding_catalogue())
    assert "spf.too_many_lookups" in ids


def test_docs_catalogue_is_the_generated_one() -> None:
    # Regenerate with: mecsa checks --markdown > docs/findings.md
    assert DOC.read_text(encoding="utf-8") == catalogue_markdown()


def test_committed_schema_lists_exactly_the_registered_protocols() -> None:
    # Regenerate with: mecsa checks --schema > src/mecsa/report/assessment.schema.json
    committed = json.loads(SCHEMA.read_text(encoding="utf-8"))
    assert committed == derived_schema()
    assert committed["$defs"]["protocol"]["enum"][-2:] == ["tls-rpt", "mx"]
