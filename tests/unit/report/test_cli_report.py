"""`mecsa assess --profile/--html` and the plain (non-terminal) text report, against loopback DNS."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from mecsa.cli import app
from mecsa.dns.zoneserver import ThreadedZoneServer, ZoneData

ZONE = (
    "@ 300 IN SOA ns hostmaster 1 300 300 300 300\n@ IN NS ns\nns IN A 127.0.0.53\n"
    "@ IN MX 10 mx1\nmx1 IN A 127.0.0.25\n"
    '_dmarc IN TXT "v=DMARC1; p=none; rua=mailto:<img src=x onerror=alert(1)>@cli.test"\n'
)


@pytest.fixture(scope="module")
def resolver() -> Iterator[str]:
    with ThreadedZoneServer(ZoneData.from_texts({"cli.test.": ZONE})) as server:
        yield server.address


def _assess(resolver: str, *extra: str) -> list[str]:
    return ["assess", "cli.test", "--resolver", resolver, "--timeout", "0.5", "--only", "mx", *extra]


def test_json_carries_the_chosen_profile_and_scores(resolver: str) -> None:
    for profile in ("mecsa", "mecsa-st"):
        result = CliRunner().invoke(app, _assess(resolver, "--json", "--profile", profile))
        assert result.exit_code == 0, result.output
        doc = json.loads(result.stdout)
        assert doc["profile"] == profile
        assert doc["scores"] == {"confidentiality": 0, "phishing": 0, "integrity": 0}
        assert doc["checks"]["mx"]["hosts"][0]["name"] == "mx1.cli.test"


def test_unknown_profile_is_a_usage_error(resolver: str) -> None:
    result = CliRunner().invoke(app, _assess(resolver, "--profile", "nope"))
    assert result.exit_code == 2
    assert "unknown scoring profile 'nope'" in result.output


def test_text_report_off_a_terminal_is_plain(resolver: str) -> None:
    result = CliRunner().invoke(app, _assess(resolver))
    assert result.exit_code == 0, result.output
    assert "\x1b[" not in result.stdout
    assert "Confidentiality" in result.stdout and "0/10" in result.stdout
    assert "MX mx1.cli.test  (preference 10; DNSSEC A insecure; DNSSEC AAAA" in result.stdout  # 80 columns
    # the address comes from the mx check's facts; the transport checks did not run (--only mx)
    assert "│ 127.0.0.25 │ —        │ —            │ —           │ —    │ —       │" in result.stdout


def test_html_file_is_written_beside_the_json(resolver: str, tmp_path: Path) -> None:
    target = tmp_path / "report.html"
    result = CliRunner().invoke(app, _assess(resolver, "--json", "--html", str(target), "--only", "dmarc"))
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)  # stdout stays one JSON document
    assert "onerror" in json.dumps(doc["findings"])  # the hostile rua reached the findings...
    page = target.read_text(encoding="utf-8")
    assert page.startswith("<!DOCTYPE html>")
    assert "mx1.cli.test" in page and "<svg" in page
    assert "<img" not in page and "&lt;img src=x onerror=alert(1)&gt;" in page  # ...and stays text
