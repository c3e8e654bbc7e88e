"""A whole assessment with our own validation: through a plain forwarder DNSSEC and DANE get a
verdict (no more "indeterminate"), the JSON names each link and validates against the schema."""

from __future__ import annotations

import json
from importlib.resources import files
from typing import Any

import jsonschema

from mecsa.assess import assess
from mecsa.dns.signing import Signing, new_key
from mecsa.dns.validation.verdict import DnssecMode
from mecsa.model import Assessment, Status, VerdictStatus
from mecsa.observe import AssessOptions
from mecsa.report.json import render_json
from tests.conftest import ServeZones
from tests.unit.dns.world import World, client_for

# Nothing listens on 127.0.0.25:25 here: the SMTP side fails fast; the TLSA side is what counts.
OPTIONS = AssessOptions(only=frozenset({"dnssec", "dane", "mx"}), smtp_timeout=0.5)


async def _assess(serve_zones: ServeZones, world: World, domain: str = "top.test", **kw: Any) -> Assessment:
    return await assess(domain, await client_for(serve_zones, world, **kw), OPTIONS)


def _findings(result: Assessment, protocol: str) -> dict[str, Status]:
    return {f.id: f.status for f in result.findings if f.protocol == protocol}


def _document(result: Assessment) -> dict[str, Any]:
    document: dict[str, Any] = json.loads(render_json(result))
    schema = json.loads((files("mecsa.report") / "assessment.schema.json").read_text(encoding="utf-8"))
    jsonschema.Draft202012Validator(schema).validate(document)
    return document


async def test_own_mode_through_a_plain_forwarder_judges_dnssec_and_dane(serve_zones: ServeZones) -> None:
    result = await _assess(serve_zones, World())
    assert result.verdicts["dnssec"].status is VerdictStatus.PASS
    assert "dane.dnssec_unknown" not in _findings(result, "dane")
    assert "dnssec.resolver_not_validating" not in _findings(result, "dnssec")
    document = _document(result)
    assert document["resolver"]["validates_dnssec"] is False  # the forwarder itself does not validate
    assert document["resolver"]["dnssec_mode"] == "own"
    assert document["resolver"]["validation_queries"] > 0
    subjects = {s["label"]: s for s in document["checks"]["dnssec"]["subjects"]}
    tlsa = subjects["MX host mx1.top.test TLSA"]
    assert tlsa["link"] == "secure (chain . → test. → top.test.)"
    assert tlsa["chain"] == [".", "test.", "top.test."]
    assert document["checks"]["dnssec"]["chains"] == [
        ". → test. → top.test. ✔ (MX, MX host mx1.top.test A, MX host mx1.top.test AAAA, SPF TXT, "
        "DMARC TXT, MX host mx1.top.test TLSA)"
    ]


async def test_resolver_mode_through_the_same_forwarder_stays_indeterminate(serve_zones: ServeZones) -> None:
    result = await _assess(serve_zones, World(), mode=DnssecMode.RESOLVER)
    assert result.verdicts["dnssec"].status is VerdictStatus.ERROR
    assert _findings(result, "dnssec")["dnssec.resolver_not_validating"] is Status.ERROR
    assert result.resolver["validation_queries"] == 0


async def test_expired_tlsa_signature_fails_dane_and_dnssec_with_the_link(serve_zones: ServeZones) -> None:
    world = World(signing={"top.test.": Signing(expired={("_25._tcp.mx1.top.test.", "TLSA")})})
    result = await _assess(serve_zones, world)
    assert result.verdicts["dnssec"].status is VerdictStatus.FAIL
    bogus = next(f for f in result.findings if f.id == "dnssec.bogus")
    (evidence,) = bogus.evidence
    assert evidence.startswith("MX host mx1.top.test TLSA: _25._tcp.mx1.top.test TLSA: bogus: RRSIG over ")
    assert "expired" in evidence
    assert bogus.message.startswith(
        "DNSSEC validation fails (bogus) for MX host mx1.top.test TLSA "
        "(bogus: RRSIG over _25._tcp.mx1.top.test TLSA expired 20"
    )
    assert _findings(result, "dane")["dane.tlsa_bogus"] is Status.FAIL


async def test_insecure_domain_fails_dnssec_naming_the_missing_ds(serve_zones: ServeZones) -> None:
    result = await _assess(serve_zones, World(), "weak.test")
    assert result.verdicts["dnssec"].status is VerdictStatus.FAIL
    insecure = next(f for f in result.findings if f.id == "dnssec.insecure")
    assert "MX: weak.test MX: insecure (no DS for weak.test at test., proven by NSEC)" in insecure.evidence
    assert insecure.message.endswith("(insecure (no DS for weak.test at test., proven by NSEC))")
    assert _findings(result, "dane").get("dane.dnssec_unknown") is None


async def test_both_mode_disagreement_is_a_finding(serve_zones: ServeZones) -> None:
    world = World(signing={"top.test.": Signing(expired={("top.test.", "MX")})})
    result = await _assess(
        serve_zones, world, mode=DnssecMode.BOTH, validating=True, secure=(".", "test.", "top.test.")
    )
    found = _findings(result, "dnssec")
    assert found["dnssec.resolver_disagrees"] is Status.WARN
    assert found["dnssec.bogus"] is Status.FAIL
    assert result.verdicts["dnssec"].status is VerdictStatus.FAIL
    _document(result)


async def test_weak_algorithm_is_a_warning_that_keeps_the_pass(serve_zones: ServeZones) -> None:
    result = await _assess(serve_zones, World(keys={"top.test.": [new_key(5, rsa_bits=1024)]}))
    found = _findings(result, "dnssec")
    assert found == {"dnssec.secure": Status.PASS, "dnssec.weak_algorithm": Status.WARN}
    assert result.verdicts["dnssec"].status is VerdictStatus.PASS
    weak = next(f for f in result.findings if f.id == "dnssec.weak_algorithm")
    assert weak.remediation == "dnssec.fix_algorithm"
    _document(result)


async def test_html_report_draws_each_chain(serve_zones: ServeZones) -> None:
    from mecsa.report.html import render_html

    world = World(signing={"top.test.": Signing(expired={("_25._tcp.mx1.top.test.", "TLSA")})})
    page = render_html(await _assess(serve_zones, world))
    secure = (
        '<div class="chain secure"><span class="zone">.</span><span class="arrow">→</span>'
        '<span class="zone">test.</span><span class="arrow">→</span><span class="zone">top.test.</span>'
    )
    assert secure in page
    assert '<div class="chain bogus"><span class="zone none">no secure chain</span>' in page
    assert "✘ bogus: RRSIG over _25._tcp.mx1.top.test TLSA expired 20" in page


async def test_report_notes_who_judged_dnssec(serve_zones: ServeZones) -> None:
    from mecsa.report.view import build_view

    notes = build_view(await _assess(serve_zones, World())).notes
    assert notes == (
        "the resolver does not validate DNSSEC: mecsa walked the chain of trust itself, from test root",
    )


async def test_both_mode_resolver_bogus_while_we_say_secure_quotes_the_resolver(
    serve_zones: ServeZones,
) -> None:
    from mecsa.dns.resolver import DnsClient
    from mecsa.dns.zoneserver import Fault

    world = World()
    plain = await serve_zones(
        world.zones(),
        validating=True,
        secure=(".", "test.", "top.test."),
        faults={"top.test/MX": Fault.BOGUS},
    )
    client = DnsClient(
        plain.nameservers, timeout=1.0, attempts=1, dnssec_mode=DnssecMode.BOTH, trust_anchors=world.anchors()
    )
    result = await assess("top.test", client, OPTIONS)
    bogus = next(f for f in result.findings if f.id == "dnssec.bogus")
    assert bogus.message == "DNSSEC validation fails (bogus) for MX (bogus (the resolver's verdict))"
    disagree = next(f for f in result.findings if f.id == "dnssec.resolver_disagrees")
    assert disagree.evidence == (
        "MX: top.test MX: we say secure (chain . → test. → top.test.); the resolver says bogus",
    )
