"""`mecsa assess --dnssec-mode/--trust-anchor`: bad values are one line and exit 2; a good run
through a plain forwarder prints the named links."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from mecsa.cli import app
from mecsa.dns.zoneserver import ThreadedZoneServer, ZoneData
from tests.unit.dns.world import World, key

# 127.0.0.1:9 (discard) is never asked: each case must stop while checking its arguments.
RESOLVER = ["--resolver", "127.0.0.1:9", "--timeout", "0.2"]


@pytest.mark.parametrize(
    ("extra", "needle"),
    [
        (["--dnssec-mode", "sometimes"], "--dnssec-mode 'sometimes': choose one of own, resolver, both"),
        (["--trust-anchor", "/nonexistent/root.key"], "--trust-anchor: trust anchor /nonexistent/root.key"),
    ],
)
def test_bad_dnssec_options_are_one_line_and_exit_2(extra: list[str], needle: str) -> None:
    result = CliRunner().invoke(app, ["assess", "example.test", *RESOLVER, *extra])
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("mecsa: error: ") and needle in lines[0], result.stderr


def test_trust_anchor_file_that_is_not_dns_is_refused(tmp_path: Path) -> None:
    junk = tmp_path / "anchor.txt"
    junk.write_text("this is not a zone file line\n", encoding="utf-8")
    result = CliRunner().invoke(app, ["assess", "example.test", *RESOLVER, "--trust-anchor", str(junk)])
    assert result.exit_code == 2 and result.stderr.count("\n") == 1


def test_assess_own_mode_json_through_a_plain_forwarder(tmp_path: Path) -> None:
    world = World()
    anchor = tmp_path / "root.ds"
    anchor.write_text(f". IN DS {key('.').ds('.').to_text()}\n", encoding="utf-8")
    data = ZoneData.from_texts(world.zones(), validating=False)
    with ThreadedZoneServer(data) as server:
        args = ["assess", "top.test", "--resolver", server.address, "--json", "--only", "dnssec"]
        result = CliRunner().invoke(app, [*args, "--dnssec-mode", "own", "--trust-anchor", str(anchor)])
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    assert document["protocols"]["dnssec"]["status"] == "pass"
    assert document["resolver"]["trust_anchor"] == str(anchor)
    links = {s["link"] for s in document["checks"]["dnssec"]["subjects"]}
    assert links == {
        "secure (chain . → test. → top.test.)",
        "secure (chain . → test. → top.test.; no AAAA at mx1.top.test proven by NSEC)",
    }
