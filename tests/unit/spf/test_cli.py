"""`mecsa spf check` and `mecsa spf audit` against a loopback DNS server."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from click.testing import CliRunner

from mecsa.cli import app
from mecsa.dns.zoneserver import Fault, ThreadedZoneServer, ZoneData

ZONE = """
$TTL 300
@ SOA ns.example.test. host.example.test. 1 1800 900 604800 300
@ NS ns
ns A 127.0.0.1
@ TXT "v=spf1 ip4:127.0.0.0/29 include:_spf.example.test -all exp=why.example.test"
_spf TXT "v=spf1 a:mail.example.test mx:example.test ~all"
mail A 127.0.0.10
@ MX 10 mail
why TXT "%{i} is not allowed to send for %{d}"
broken TXT "v=spf1 include:_spf.example.test include:flaky.example.test -all"
"""


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    data = ZoneData.from_texts({"example.test.": ZONE}, faults={"flaky.example.test": Fault.SERVFAIL})
    with ThreadedZoneServer(data) as running:
        yield running.address


def _invoke(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, list(args))
    return result.exit_code, result.output


def test_check_json_pass(server: str) -> None:
    code, out = _invoke(
        "spf", "check", "--ip", "127.0.0.3", "--sender", "a@example.test", "--resolver", server, "--json"
    )
    assert code == 0
    assert json.loads(out) == {
        "result": "pass",
        "reason": "example.test: matched ip4:127.0.0.0/29",
        "explanation": None,
        "lookups": 0,
        "void_lookups": 0,
    }


def test_check_json_pass_through_include_counts_lookups(server: str) -> None:
    code, out = _invoke(
        "spf", "check", "--ip", "127.0.0.10", "--sender", "a@example.test", "--resolver", server, "--json"
    )
    assert (code, json.loads(out)) == (
        0,
        {
            "result": "pass",
            "reason": "example.test: matched include:_spf.example.test",
            "explanation": None,
            "lookups": 2,
            "void_lookups": 0,
        },
    )


def test_check_json_fail_with_explanation(server: str) -> None:
    code, out = _invoke(
        "spf", "check", "--ip", "127.0.0.99", "--sender", "a@example.test", "--resolver", server, "--json"
    )
    assert code == 0
    assert json.loads(out) == {
        "result": "fail",
        "reason": "example.test: matched -all",
        "explanation": "127.0.0.99 is not allowed to send for example.test",
        "lookups": 3,
        "void_lookups": 0,
    }


def test_check_json_temperror_on_servfail(server: str) -> None:
    code, out = _invoke(
        "spf",
        "check",
        "--ip",
        "127.0.0.99",
        "--sender",
        "b@broken.example.test",
        "--resolver",
        server,
        "--json",
    )
    assert code == 0
    assert json.loads(out)["result"] == "temperror"


def test_check_text(server: str) -> None:
    code, out = _invoke(
        "spf", "check", "--ip", "127.0.0.99", "--sender", "a@example.test", "--resolver", server
    )
    assert code == 0
    assert out.splitlines()[0] == "result: fail"
    assert "explanation: 127.0.0.99 is not allowed to send for example.test" in out
    assert "lookups: 3 of 10" in out


def test_audit_json(server: str) -> None:
    code, out = _invoke("spf", "audit", "example.test", "--resolver", server, "--json")
    assert code == 0
    data = json.loads(out)
    assert data["lookups"] == 3
    assert data["policy"] == {"all": "-", "status": "all", "chain": ["example.test"]}
    assert data["tree"]["includes"][0]["domain"] == "_spf.example.test"
    assert data["tree"]["includes"][0]["total_lookups"] == 2
    assert data["issues"] == []


def test_audit_json_reports_the_failed_include_with_its_chain(server: str) -> None:
    code, out = _invoke("spf", "audit", "broken.example.test", "--resolver", server, "--json")
    assert code == 0
    issues = json.loads(out)["issues"]
    assert [(i["kind"], i["severity"], i["chain"]) for i in issues] == [
        ("lookup_failed", "temperror", ["broken.example.test", "include:flaky.example.test"])
    ]


def test_audit_text_shows_the_tree(server: str) -> None:
    code, out = _invoke("spf", "audit", "example.test", "--resolver", server)
    assert code == 0
    assert "include:_spf.example.test → _spf.example.test [2 own, 2 total lookups]" in out
    assert "policy that applies: -all" in out


@pytest.mark.parametrize(
    "args",
    [
        ("spf", "check", "--ip", "999.1.1.1", "--sender", "a@example.test"),
        ("spf", "check", "--ip", "127.0.0.1", "--sender", "a@exa mple.test"),
        ("spf", "check", "--ip", "127.0.0.1", "--sender", ""),
        ("spf", "check", "--ip", "127.0.0.1", "--sender", "a@example.test", "--resolver", "not-an-ip"),
        ("spf", "audit", "bad..domain"),
    ],
)
def test_bad_input_is_a_one_line_error_with_status_2(args: tuple[str, ...]) -> None:
    code, out = _invoke(*args)
    assert code == 2
    assert out.startswith("mecsa: error: ")
    assert out.count("\n") == 1


@pytest.mark.parametrize(
    ("sender", "helo", "why"),
    [
        ("a@bad..example.test", "", "empty label"),
        (f"a@{'x' * 64}.example.test", "", "longer than 63 octets"),
        ("a@[192.0.2.1]", "", "domain literal"),
        ("a@localhost", "", "not a multi-label"),
        ("", "[192.0.2.1]", "domain literal"),
        ("", "helo..example.test", "empty label"),
    ],
)
def test_check_of_a_malformed_name_is_none_with_its_reason(
    server: str, sender: str, helo: str, why: str
) -> None:
    base = ("spf", "check", "--ip", "127.0.0.3", "--sender", sender, "--helo", helo, "--resolver", server)
    code, out = _invoke(*base, "--json")
    assert code == 0, out
    data = json.loads(out)
    assert data["result"] == "none"
    assert why in data["reason"]
    assert "RFC 7208 §4.3" in data["reason"]
    assert data["lookups"] == 0
    code, out = _invoke(*base)
    assert code == 0, out
    lines = out.splitlines()
    assert lines[0] == "result: none"
    assert lines[1].startswith("reason: ") and why in lines[1]


def test_audit_text_says_why_no_all_applies(server: str) -> None:
    code, out = _invoke("spf", "audit", "broken.example.test", "--resolver", server)
    assert code == 0
    (line,) = [line for line in out.splitlines() if line.startswith("policy that applies: ")]
    assert line.startswith("policy that applies: lookup failed (via broken.example.test): ")
    assert "flaky.example.test" in line
