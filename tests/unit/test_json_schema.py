"""`mecsa assess --json` output validates against the published JSON Schema, and the schema has teeth."""

from __future__ import annotations

import copy
import json
import re
from importlib.resources import files
from typing import Any

import jsonschema
import pytest

from mecsa.assess import assess
from mecsa.checks.registry import CHECKS, finding_catalogue
from mecsa.dns.zoneserver import Fault
from mecsa.model import PROTOCOLS
from mecsa.observe import AssessOptions
from mecsa.report.json import assessment_to_json
from tests.conftest import ServeZones

HEAD = "@ 300 IN SOA ns hostmaster 1 300 300 300 300\n@ IN NS ns\nns IN A 127.0.0.53\n"
GOOD = (
    "@ IN MX 10 mx1\nmx1 IN A 127.0.0.25\n"
    '@ IN TXT "v=spf1 mx -all"\n'
    '_dmarc IN TXT "v=DMARC1; p=reject; rua=mailto:d@example.test"\n'
    '_smtp._tls IN TXT "v=TLSRPTv1; rua=mailto:tls@example.test"\n'
    '_mta-sts IN TXT "v=STSv1; id=20240101"\n'
)
# Transport checks (where built) meet a closed port on loopback: fast errors, no waiting.
OPTIONS = AssessOptions(smtp_timeout=2.0, check_deadline=20.0)


def _schema() -> dict[str, Any]:
    text = (files("mecsa.report") / "assessment.schema.json").read_text(encoding="utf-8")
    schema: dict[str, Any] = json.loads(text)
    return schema


@pytest.fixture(scope="module")
def validator() -> jsonschema.Draft202012Validator:
    schema = _schema()
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


async def _assess_json(serve_zones: ServeZones, body: str, domain: str = "example.test", **kw: Any) -> Any:
    client = await serve_zones({"example.test.": HEAD + body}, **kw)
    document = assessment_to_json(await assess(domain, client, OPTIONS))
    return json.loads(json.dumps(document))  # exactly what --json prints, as a reader sees it


def _assert_valid(validator: jsonschema.Draft202012Validator, document: Any) -> None:
    errors = [f"{list(e.absolute_path)}: {e.message}" for e in validator.iter_errors(document)]
    assert errors == []


async def test_well_configured_domain(
    serve_zones: ServeZones, validator: jsonschema.Draft202012Validator
) -> None:
    document = await _assess_json(serve_zones, GOOD, secure=["example.test."])
    _assert_valid(validator, document)
    assert document["domain"] == "example.test"
    assert document["protocols"]["dnssec"]["status"] == "pass"
    assert document["protocols"]["tls-rpt"]["status"] == "pass"


async def test_servfail_on_dmarc_and_tlsrpt(
    serve_zones: ServeZones, validator: jsonschema.Draft202012Validator
) -> None:
    document = await _assess_json(
        serve_zones,
        GOOD,
        secure=["example.test."],
        faults={"_dmarc.example.test": Fault.SERVFAIL, "_smtp._tls.example.test": Fault.SERVFAIL},
    )
    _assert_valid(validator, document)
    assert document["protocols"]["tls-rpt"]["status"] == "error"
    assert document["protocols"]["dnssec"]["status"] == "error"


async def test_non_validating_resolver_and_timeouts(
    serve_zones: ServeZones, validator: jsonschema.Draft202012Validator
) -> None:
    document = await _assess_json(
        serve_zones, GOOD, validating=False, faults={"example.test/MX": Fault.TIMEOUT}
    )
    _assert_valid(validator, document)
    assert document["resolver"]["validates_dnssec"] is False
    assert document["protocols"]["dnssec"]["status"] == "error"
    assert any(f["id"] == "mx.lookup_failed" for f in document["findings"])


async def test_domain_that_does_not_exist(
    serve_zones: ServeZones, validator: jsonschema.Draft202012Validator
) -> None:
    document = await _assess_json(serve_zones, "", domain="nope.example.test")
    _assert_valid(validator, document)
    assert document["protocols"]["tls-rpt"]["status"] == "fail"


async def test_null_mx_and_bogus_answer(
    serve_zones: ServeZones, validator: jsonschema.Draft202012Validator
) -> None:
    document = await _assess_json(
        serve_zones, "@ IN MX 0 .\n", secure=["example.test."], faults={"example.test/TXT": Fault.BOGUS}
    )
    _assert_valid(validator, document)
    assert document["protocols"]["dnssec"]["status"] == "fail"


def _minimal() -> dict[str, Any]:
    return {
        "domain": "example.test",
        "mecsa_version": "0.1.0",
        "protocols": {"dnssec": {"status": "pass", "reason": "all secure"}},
        "findings": [
            {"id": "dnssec.secure", "status": "pass", "protocol": "dnssec", "message": "ok", "evidence": []}
        ],
        "profile": "mecsa-st",
        "scores": {"confidentiality": 0, "phishing": 0, "integrity": 4},
        "future_key": {"anything": True},  # extension keys at the top level are allowed
    }


def test_minimal_document_is_valid(validator: jsonschema.Draft202012Validator) -> None:
    _assert_valid(validator, _minimal())


@pytest.mark.parametrize(
    ("path", "value"),
    [
        (("protocols", "dnssec", "status"), "ok"),
        (("protocols", "dnssec", "share"), 1.5),
        (("findings", 0, "status"), "passed"),
        (("findings", 0, "protocol"), "smtp"),
        (("findings", 0, "id"), "NoDots"),
        (("findings", 0, "evidence"), "not a list"),
        (("findings", 0, "surprise"), True),
        (("domain",), "Example.TEST."),
        (("protocols", "unknown-protocol"), {"status": "pass", "reason": "x"}),
        (("profile",), "mecsa-2"),
        (("scores", "integrity"), 11),
        (("scores", "stars"), 3),
    ],
)
def test_broken_documents_are_rejected(
    validator: jsonschema.Draft202012Validator, path: tuple[str | int, ...], value: object
) -> None:
    document = copy.deepcopy(_minimal())
    target: Any = document
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    assert not validator.is_valid(document)


@pytest.mark.parametrize("key", ["domain", "mecsa_version", "protocols", "findings"])
def test_required_keys(validator: jsonschema.Draft202012Validator, key: str) -> None:
    document = _minimal()
    del document[key]
    assert not validator.is_valid(document)


def test_schema_knows_every_protocol_and_finding_id_shape() -> None:
    schema = _schema()
    names = set(schema["$defs"]["protocol"]["enum"])
    owned = {p for check in CHECKS for p in check.protocols}
    assert set(PROTOCOLS) | owned <= names
    # A check with no protocol of its own (mx) files its findings, and its crash findings, under its name.
    assert {c.name for c in CHECKS if not c.protocols} <= names
    pattern = re.compile(schema["$defs"]["finding"]["properties"]["id"]["pattern"])
    ids = set(finding_catalogue()) | {f"{c.name}.check_error" for c in CHECKS}
    assert [i for i in sorted(ids) if not pattern.fullmatch(i)] == []
