"""Typed facts come back from the stored JSON document, so a report rebuilt from it is the live one.

The store keeps the `mecsa assess --json` document, not the model. Every facts kind reads its own
JSON form back (`Kind.from_json`), over the real report samples (loopback servers: hardened,
neglected, hostile) and the compact-table sample (an expired certificate, a bogus AAAA answer, an
unreachable address); `assessment_from_document` attaches them; a document whose details do not
read still renders, with dashes.
"""

from __future__ import annotations

import copy
import datetime as dt
import hashlib
import json
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization

from mecsa.certs import CertificateSummary, Tlsa, TlsaMatch
from mecsa.checks.dane import DaneFacts
from mecsa.checks.mta_sts import MtaStsVerdictFacts, MxCoverage
from mecsa.checks.registry import CHECKS
from mecsa.checks.starttls import StarttlsFacts
from mecsa.checks.x509 import X509Facts
from mecsa.model import Assessment, Facts
from mecsa.observe.mx import MxFacts
from mecsa.probes.smtp import SmtpObservation, SmtpReply, Stage, TlsSession
from mecsa.probes.tls import TlsSweep, TlsTrial, TrialOutcome
from mecsa.report.html import render_html
from mecsa.report.json import assessment_to_json
from mecsa.report.text import render_text
from mecsa.report.view import DASH, build_view
from mecsa.revocation import RevocationAnswer, RevocationState, RevocationVerdict
from mecsa.web.document import assessment_from_document
from tests.conftest import ServeZones
from tests.unit.report import test_mx_table
from tests.unit.report.samples import SAMPLES, TODAY
from tests.unit.transport.chains import Shape, ca, leaf
from tests.unit.transport.servers import LoopbackServers, server_context
from tests.unit.transport.test_transport_checks import MX1, _assess, _tlsa

ALL: dict[str, Callable[[], Assessment]] = {**SAMPLES, "mx_table": test_mx_table._assessment}
KINDS = (MxFacts, StarttlsFacts, X509Facts, DaneFacts, MtaStsVerdictFacts)
# These keep every value the document keeps and nothing else: they come back equal, not only
# their JSON. MxFacts and StarttlsFacts wrap observations (DNS answers, SMTP sessions) whose rcode,
# EHLO greeting line and DER the document does not keep; for them the JSON form comes back whole.
EXACT = (X509Facts, DaneFacts, MtaStsVerdictFacts)


def _facts(assessment: Assessment) -> Iterator[tuple[str, Facts]]:
    for result in assessment.results:
        if result.facts is not None:
            yield result.check, result.facts
        for verdict in result.verdicts:
            if verdict.facts is not None:
                yield verdict.protocol, verdict.facts


@pytest.mark.parametrize("sample", sorted(ALL))
def test_every_facts_kind_reads_back_its_own_json(sample: str) -> None:
    seen = dict(_facts(ALL[sample]()))
    assert {type(f) for f in seen.values()} == set(KINDS)  # every kind is in every sample
    for facts in seen.values():
        data = facts.to_json()
        again = type(facts).from_json(data)  # type: ignore[attr-defined]
        assert type(again) is type(facts)
        assert again.to_json() == data
        if isinstance(facts, EXACT):
            assert again == facts


def test_each_check_declares_the_kind_of_the_facts_it_makes() -> None:
    declared: dict[str, object] = {c.name: c.facts for c in CHECKS}
    declared |= {p: k for c in CHECKS for p, k in c.verdict_facts.items()}
    made = {name: type(f) for name, f in _facts(ALL["hardened"]())}
    assert made == {n: k for n, k in declared.items() if k is not None}


@pytest.mark.parametrize("sample", sorted(ALL))
def test_the_values_the_facts_hold_come_back_equal(sample: str) -> None:
    assessment = ALL[sample]()
    starttls, x509, dane = (
        assessment.facts(StarttlsFacts),
        assessment.facts(X509Facts),
        assessment.facts(DaneFacts),
    )
    assert starttls is not None and x509 is not None and dane is not None
    values: list[Any] = []
    for tls in (a for h in starttls.hosts for a in h.addresses):
        values += [tls.sweep, tls.session.banner, tls.session.starttls]
    for cert in (a.presented for h in x509.hosts for a in h.addresses):
        if cert is not None:
            values += [cert, cert.certificate, *cert.chain_seen, cert.revocation]
    values += [r for h in dane.hosts for a in h.addresses for r in a.records]
    values = [v for v in values if v is not None]
    assert values
    for value in values:
        assert type(value).from_json(value.to_json()) == value


def test_the_parsed_certificates_stay_on_the_live_facts_only() -> None:
    x509 = hardened_x509()
    live = next(a.presented for h in x509.hosts for a in h.addresses if a.presented)
    again = X509Facts.from_json(x509.to_json()).address(
        x509.hosts[0].name, x509.hosts[0].addresses[0].address
    )
    assert live.leaf is not None and again is not None and again.presented is not None
    assert again.presented.leaf is None and again.presented.chain == ()  # the document keeps no DER
    assert again.presented.name == live.name == live.certificate.dns_names[0]


def hardened_x509() -> X509Facts:
    facts = SAMPLES["hardened"]().facts(X509Facts)
    assert facts is not None
    return facts


def test_a_session_keeps_what_the_document_says_and_no_more() -> None:
    live = SmtpObservation(
        "mx.t.test",
        "127.0.0.10",
        25,
        connected=True,
        banner=SmtpReply(220, ("mx.t.test ESMTP",)),
        ehlo=SmtpReply(250, ("mx.t.test greets you", "PIPELINING", "STARTTLS")),
        starttls=SmtpReply(220, ("ready",)),
        tls=TlsSession("TLSv1.3", "TLS_AES_128_GCM_SHA256", 128, (b"leaf", b"ca"), True),
        ehlo_tls=SmtpReply(250, ("mx.t.test", "REQUIRETLS")),
        quit_ok=True,
        elapsed_s=0.123456,
    )
    again = SmtpObservation.from_json(live.to_json())
    assert again.to_json() == live.to_json()
    assert again.tls is not None and again.tls.chain == () and again.tls.certificates == 2
    assert (again.reachable, again.starttls_offered, again.extensions_tls) == (True, True, ("REQUIRETLS",))
    broken = SmtpObservation("mx.t.test", "127.0.0.11", 25, failed_stage=Stage.CONNECT, reason="refused")
    assert SmtpObservation.from_json(broken.to_json()) == broken  # nothing was lost: equal


def test_the_lab_free_values_come_back_equal() -> None:
    when = dt.datetime(2026, 11, 1, 12, 30, tzinfo=dt.UTC)
    values: list[Any] = [
        RevocationVerdict(
            RevocationState.REVOKED,
            (
                RevocationAnswer(
                    "ocsp", "http://ocsp.t.test/", RevocationState.REVOKED, "revoked", when, "keyCompromise"
                ),
                RevocationAnswer("crl", "http://crl.t.test/ca.crl", RevocationState.UNUSABLE, "unreachable"),
            ),
        ),
        TlsaMatch(
            Tlsa(2, 1, 1, bytes(range(32))),
            True,
            "matches trust anchor CN=ca",
            "basicConstraints not critical",
        ),
        TlsaMatch(Tlsa(3, 0, 0, b"\x30\x03"), False, "the leaf does not match"),
        TlsSweep(
            (
                TlsTrial("TLSv1", TrialOutcome.REFUSED, reason="alert"),
                TlsTrial("TLSv1.3", TrialOutcome.ACCEPTED, "TLSv1.3", "X"),
            ),
            (TlsTrial("NULL", TrialOutcome.NOT_TESTED, reason="the local OpenSSL cannot offer it"),),
        ),
        MxCoverage("mx.t.test", None, None),
        MtaStsVerdictFacts(None, None, None, None, (MxCoverage("mx.t.test", True, "*.t.test"),), 2 / 3),
        CertificateSummary(
            "CN=a", "CN=ca", when, when, 0xABC, (), True, "RSA", None, "sha256WithRSAEncryption", "00" * 32
        ),
    ]
    for value in values:
        assert type(value).from_json(value.to_json()) == value
    assert "webpki_deviation" not in values[2].to_json()  # the additive key is there only when set


@pytest.fixture
async def servers() -> AsyncIterator[LoopbackServers]:
    running = LoopbackServers()
    yield running
    await running.close()


async def test_a_dane_ta_match_keeps_its_web_pki_deviation(
    serve_zones: ServeZones, servers: LoopbackServers, tmp_path: Path
) -> None:
    # the loopback MX of test_pkix_assess: its issuing CA's basicConstraints is not critical
    root = ca("Lenient Root", None)
    issuing = ca("Lenient Issuing CA", root, Shape(bc_critical=False))
    ca_file = tmp_path / "lenient-root.pem"
    ca_file.write_bytes(root.cert.public_bytes(serialization.Encoding.PEM))
    pem = issuing.cert.public_bytes(serialization.Encoding.PEM)
    await servers.add_smtpd("127.0.0.2", server_context(leaf(issuing, MX1).issued, pem, tmp_path))
    spki = issuing.cert.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    tlsa = _tlsa(servers.port, MX1, f"2 1 1 {hashlib.sha256(spki).hexdigest()}")
    a = await _assess(serve_zones, "@ IN MX 10 mx1\nmx1 IN A 127.0.0.2\n" + tlsa, servers, str(ca_file))
    dane = a.facts(DaneFacts)
    assert dane is not None
    (match,) = dane.hosts[0].addresses[0].records
    assert match.matched and match.webpki_deviation and "2.5.29.19" in match.webpki_deviation
    assert match.to_json()["webpki_deviation"] == match.webpki_deviation
    for facts in (dane, a.facts(X509Facts), a.facts(StarttlsFacts)):
        assert facts is not None
        assert type(facts).from_json(facts.to_json()).to_json() == facts.to_json()
    assert DaneFacts.from_json(dane.to_json()) == dane


# --- the report rebuilt from a stored document ---------------------------------------------------


def _stored(assessment: Assessment, profile: str) -> dict[str, Any]:
    """The document as the store gives it back: through JSON text."""
    loaded: dict[str, Any] = json.loads(json.dumps(assessment_to_json(assessment, profile)))
    return loaded


@pytest.mark.parametrize("sample", sorted(ALL))
def test_the_compact_mx_table_of_a_stored_document_is_the_live_one(sample: str) -> None:
    assessment = ALL[sample]()
    document = _stored(assessment, "mecsa")
    live = build_view(assessment, "mecsa", TODAY)
    again = build_view(assessment_from_document(document), "mecsa", TODAY)
    compact = [(h.name, h.facts, h.addresses) for h in live.hosts]
    assert [(h.name, h.facts, h.addresses) for h in again.hosts] == compact
    assert any(DASH not in (r.starttls, r.certificate) for _, _, rows in compact for r in rows)
    assert again.fixes == live.fixes  # the fixes read the MX hosts and addresses from the facts too


@pytest.mark.parametrize("sample", sorted(ALL))
def test_the_whole_report_of_a_stored_document_is_the_live_one(sample: str) -> None:
    assessment = ALL[sample]()
    rebuilt = assessment_from_document(_stored(assessment, "mecsa-st"))
    assert render_html(rebuilt, "mecsa-st") == render_html(assessment, "mecsa-st")
    assert render_text(rebuilt, "mecsa-st") == render_text(assessment, "mecsa-st")


def test_the_rebuilt_document_is_the_stored_one() -> None:
    document = assessment_to_json(SAMPLES["hardened"](), "mecsa")
    rebuilt = assessment_from_document(document)
    assert assessment_to_json(rebuilt, "mecsa") == document
    for result in rebuilt.results:  # the details stay the document's, beside the facts read from them
        if result.facts is not None:
            assert result.facts.to_json() == result.details


def _truncate(details: dict[str, Any]) -> None:
    """What an older or another mecsa may have stored: the first host lacks its last keys."""
    host = details["hosts"][0] if details.get("hosts") else details
    for key in list(host)[-2:]:
        del host[key]


def test_details_that_do_not_read_render_with_dashes_and_the_rest_intact() -> None:
    assessment = SAMPLES["hardened"]()
    document = copy.deepcopy(assessment_to_json(assessment, "mecsa"))
    checks = document["checks"]
    for name in ("starttls", "x509"):
        _truncate(checks[name])
    checks["dane"]["hosts"] = "not a list of hosts"
    checks["dane"]["port"] = "twenty-five"
    document["protocols"]["mta-sts"]["details"]["mx"] = [{"host": 7}]  # no covered, no pattern
    rebuilt = assessment_from_document(document)
    assert rebuilt.facts(MxFacts) is not None  # the MX set reads: one row per address, with dashes
    assert all(rebuilt.facts(kind) is None for kind in KINDS if kind is not MxFacts)
    view = build_view(rebuilt, "mecsa", TODAY)
    rows = [r for h in view.hosts for r in h.addresses]
    assert rows and {(r.starttls, r.tls_versions, r.certificate, r.dane, r.mta_sts) for r in rows} == {
        (DASH,) * 5
    }
    live = build_view(assessment, "mecsa", TODAY)
    assert (view.areas, view.problems) == (live.areas, live.problems)
    assert [(p.protocol, p.status) for p in view.protocols] == [
        (p.protocol, p.status) for p in live.protocols
    ]
    assert "<html" in render_html(rebuilt, "mecsa")
    _truncate(checks["mx"])  # then not even the MX set: the host sections stay, without facts
    view = build_view(assessment_from_document(document), "mecsa", TODAY)
    assert view.hosts and all(value == DASH for h in view.hosts for _, value in h.facts)
    assert all(r.starttls == DASH for h in view.hosts for r in h.addresses)


def test_one_kind_that_does_not_read_leaves_the_others() -> None:
    document = copy.deepcopy(assessment_to_json(SAMPLES["hardened"](), "mecsa"))
    del document["checks"]["starttls"]["hosts"][0]["addresses"][0]["smtp"]["tls"]
    rebuilt = assessment_from_document(document)
    assert rebuilt.facts(StarttlsFacts) is None
    assert all(rebuilt.facts(kind) is not None for kind in KINDS if kind is not StarttlsFacts)
    rows = [r for h in build_view(rebuilt, "mecsa", TODAY).hosts for r in h.addresses]
    assert {r.starttls for r in rows} == {DASH} and DASH not in {r.certificate for r in rows}
