"""The sender's outbound side, judged from one message it delivered, in MECSA's areas.

As MECSA's web tool does with the user's reply: did the sending server use STARTTLS (here:
at TLS 1.2 or later, RFC 8996 retired 1.0/1.1), is it in the SPF of the MAIL FROM domain, is
there a valid DKIM signature, and does DMARC pass. The verdicts reuse `mecsa.model` and are
scored by `mecsa.scoring.score_assessment`, like a domain-mode assessment.
"""

from __future__ import annotations

from typing import Any

from mecsa.mailmode.analysis import MessageAnalysis
from mecsa.mailmode.dkimverify import DkimResult
from mecsa.mailmode.dmarceval import DmarcResult
from mecsa.model import Assessment, CheckResult, Finding, ProtocolVerdict, Status, VerdictStatus
from mecsa.spf.evaluator import SpfResult

CHECK_NAME = "mailmode_outbound"
_MODERN_TLS = ("TLSv1.2", "TLSv1.3")


def _verdict(finding: Finding) -> ProtocolVerdict:
    status = {
        Status.PASS: VerdictStatus.PASS,
        Status.FAIL: VerdictStatus.FAIL,
        Status.ERROR: VerdictStatus.ERROR,
    }.get(finding.status, VerdictStatus.NOT_APPLICABLE)
    return ProtocolVerdict(finding.protocol, status, finding.message)


def _starttls(a: MessageAnalysis) -> Finding:
    tls = a.connection.tls
    peer = f"{a.connection.helo} [{a.connection.peer_ip}]"
    if tls is None:
        why = f"{peer} delivered without STARTTLS: the message crossed the network in clear text"
        return Finding("outbound.starttls_unused", Status.FAIL, "starttls", why, (), None, peer)
    evidence = (f"{tls.version} {tls.cipher}",)
    if tls.version not in _MODERN_TLS:
        why = f"{peer} used STARTTLS but only {tls.version}, retired by RFC 8996"
        return Finding("outbound.tls_outdated", Status.FAIL, "starttls", why, evidence, None, peer)
    why = f"{peer} delivered over {tls.version} ({tls.cipher})"
    return Finding("outbound.starttls_used", Status.PASS, "starttls", why, evidence, None, peer)


def _spf(a: MessageAnalysis) -> Finding:
    check = a.spf_mailfrom
    result = check.outcome.result
    text = f"SPF {result.value} for {a.connection.peer_ip} as {check.domain}: {check.outcome.reason}"
    evidence = (f"MAIL FROM:<{a.connection.mail_from}>", f"HELO {a.connection.helo}")
    if result is SpfResult.PASS:
        return Finding("outbound.spf_pass", Status.PASS, "spf", text, evidence)
    if result is SpfResult.TEMPERROR:
        return Finding("outbound.spf_temperror", Status.ERROR, "spf", text, evidence)
    return Finding("outbound.spf_not_pass", Status.FAIL, "spf", text, evidence, "spf.publish")


def _dkim(a: MessageAnalysis) -> Finding:
    sigs = a.dkim
    evidence = tuple(
        f"d={s.domain} s={s.selector} a={s.algorithm}: {s.result.value} ({s.reason})" for s in sigs
    )
    passing = [s for s in sigs if s.result is DkimResult.PASS]
    if passing:
        names = ", ".join(f"d={s.domain}" for s in passing)
        return Finding("outbound.dkim_valid", Status.PASS, "dkim", f"valid DKIM signature: {names}", evidence)
    if any(s.result is DkimResult.TEMPERROR for s in sigs):
        why = "no signature verified, and a key lookup failed: it might have"
        return Finding("outbound.dkim_temperror", Status.ERROR, "dkim", why, evidence)
    why = "the message carries no DKIM signature" if not sigs else "no DKIM signature verifies"
    return Finding("outbound.dkim_invalid", Status.FAIL, "dkim", why, evidence, "dkim.publish")


def _dmarc(a: MessageAnalysis) -> Finding:
    d = a.dmarc
    evidence = tuple(x for x in (d.record, f"disposition: {d.disposition}") if x)
    text = f"DMARC {d.result.value} for {d.from_domain or '(no From domain)'}: {d.reason}"
    if d.result is DmarcResult.PASS:
        return Finding("outbound.dmarc_pass", Status.PASS, "dmarc", text, evidence)
    if d.result is DmarcResult.TEMPERROR:
        return Finding("outbound.dmarc_temperror", Status.ERROR, "dmarc", text, evidence)
    return Finding("outbound.dmarc_not_pass", Status.FAIL, "dmarc", text, evidence, "dmarc.publish")


def outbound_result(analysis: MessageAnalysis) -> CheckResult:
    """The outbound verdicts (starttls, spf, dkim, dmarc) from one delivered message."""
    findings = (_starttls(analysis), _spf(analysis), _dkim(analysis), _dmarc(analysis))
    helo = analysis.spf_helo
    info = Finding(
        "outbound.spf_helo",
        Status.INFO,
        "spf",
        f"SPF {helo.outcome.result.value} for the HELO identity {helo.domain!r}: {helo.outcome.reason}",
    )
    return CheckResult(CHECK_NAME, (*findings, info), tuple(_verdict(f) for f in findings))


def outbound_assessment(domain: str, analysis: MessageAnalysis) -> Assessment:
    """The outbound verdicts wrapped as an assessment, so that scoring and renderers take them."""
    from mecsa import __version__

    return Assessment(domain, __version__, (outbound_result(analysis),))


def outbound_json(domain: str, analysis: MessageAnalysis) -> dict[str, Any]:
    """Verdicts, findings and the score under both profiles, as JSON."""
    from mecsa.scoring import profile_names, score_assessment

    assessment = outbound_assessment(domain, analysis)
    result = assessment.results[0]
    scores = {}
    for name in profile_names():
        score = score_assessment(assessment, name)
        scores[name] = {"levels": score.levels.as_dict(), "supported": sorted(score.supported)}
    return {
        "domain": domain,
        "verdicts": {v.protocol: v.to_json() for v in result.verdicts},
        "findings": [f.to_json() for f in result.findings],
        "scores": scores,
    }
