"""Fixed assessments for the report golden files: every value (durations, versions) is pinned."""

from __future__ import annotations

import datetime as dt

from mecsa.model import Assessment, CheckResult, Finding, ProtocolVerdict, Status, VerdictStatus

TODAY = dt.date(2026, 11, 5)
P, F, E, NA = VerdictStatus.PASS, VerdictStatus.FAIL, VerdictStatus.ERROR, VerdictStatus.NOT_APPLICABLE
HOSTILE_SCRIPT = "<script>document.title='pwned'</script>"
HOSTILE_IMG = "<img src=x onerror=\"document.title='pwned-img'\">"

RESOLVER = {"nameservers": ["127.0.0.1:53"], "validates_dnssec": True, "queries": 12}


def _mx(*hosts: tuple[str, int, list[str]]) -> CheckResult:
    details = {
        "hosts": [
            {
                "name": name,
                "preference": pref,
                "addresses": addrs,
                "cname_chain": [],
                "dnssec": {"A": "secure", "AAAA": "secure"},
            }
            for name, pref, addrs in hosts
        ],
        "null_mx": False,
        "implicit": False,
    }
    present = Finding(
        "mx.present", Status.PASS, "mx", f"{len(hosts)} MX host(s)", tuple(f"{p} {n}" for n, p, _ in hosts)
    )
    return CheckResult("mx", (present,), (), details)


def _verdict_check(
    name: str, *verdicts: tuple[str, VerdictStatus, str], findings: tuple[Finding, ...] = ()
) -> CheckResult:
    return CheckResult(name, findings, tuple(ProtocolVerdict(p, s, r) for p, s, r in verdicts))


def hardened() -> Assessment:
    """Everything passes: 10/10/10 under mecsa."""
    transport = CheckResult(
        "transport",
        (),
        tuple(
            ProtocolVerdict(p, P, f"{p} good on 1 of 1 MX hosts", share=1.0)
            for p in ("starttls", "x509", "dane", "mta-sts")
        ),
        {
            "hosts": [
                {
                    "name": "mx1.good.test",
                    "addresses": [
                        {
                            "address": "127.0.0.10",
                            "tls_version": "TLSv1.3",
                            "starttls": True,
                            "dane": "matched",
                        }
                    ],
                }
            ]
        },
    )
    dns = _verdict_check(
        "records",
        ("spf", P, "v=spf1 mx -all"),
        ("spf_policy", P, "ends in -all"),
        ("dkim", P, "selector s202611: RSA 2048"),
        ("dmarc", P, "v=DMARC1; p=reject; rua=mailto:dmarc_reports@good.test"),
        ("dmarc_policy", P, "p=reject with rua"),
        ("dnssec", P, "all answers secure"),
        ("tls-rpt", P, "reports to mailto:dmarc_reports@good.test"),
    )
    return Assessment(
        "good.test", "0.1.0", (_mx(("mx1.good.test", 10, ["127.0.0.10"])), transport, dns), RESOLVER, 1.25
    )


def neglected() -> Assessment:
    """Little works: no DMARC, SPF ~all missing, DNS not validating, one MX without STARTTLS."""
    spf = Finding(
        "spf.no_all",
        Status.FAIL,
        "spf_policy",
        "the SPF record does not end with -all or ~all",
        ("v=spf1 mx a:out.weak.test ?all",),
        "spf.end_with_all",
    )
    dmarc = Finding(
        "dmarc.missing", Status.FAIL, "dmarc", "no DMARC record at _dmarc.weak.test", (), "dmarc.publish"
    )
    tlsrpt = Finding("tls-rpt.missing", Status.FAIL, "tls-rpt", "no TLS-RPT record", (), "tls-rpt.publish")
    dnssec = Finding(
        "dnssec.resolver_not_validating", Status.ERROR, "dnssec", "the resolver does not validate DNSSEC"
    )
    starttls = Finding(
        "starttls.not_offered",
        Status.FAIL,
        "starttls",
        "mx2.weak.test does not offer STARTTLS",
        ("250-mx2.weak.test", "250 SIZE 10240000"),
        "starttls.enable",
        "mx2.weak.test",
    )
    records = CheckResult(
        "records",
        (spf, dmarc, tlsrpt, dnssec),
        (
            ProtocolVerdict("spf", P, "v=spf1 mx a:out.weak.test ?all"),
            ProtocolVerdict("spf_policy", F, spf.message),
            ProtocolVerdict("dkim", NA, "no DKIM selector given (--dkim-selector)"),
            ProtocolVerdict("dmarc", F, dmarc.message),
            ProtocolVerdict("dmarc_policy", F, "no DMARC record"),
            ProtocolVerdict("dnssec", E, dnssec.message),
            ProtocolVerdict("tls-rpt", F, tlsrpt.message),
        ),
    )
    transport = CheckResult(
        "transport",
        (starttls,),
        (
            ProtocolVerdict("starttls", F, "1 of 2 MX hosts offer STARTTLS with TLS 1.2+", share=0.5),
            ProtocolVerdict("x509", P, "valid certificate on 1 of 1 hosts with STARTTLS", share=1.0),
            ProtocolVerdict("mta-sts", F, "policy mode is testing", details={"mecsa_st_pass": True}),
        ),
    )
    mx = _mx(("mx1.weak.test", 10, ["127.0.0.20"]), ("mx2.weak.test", 20, ["127.0.0.21", "::1"]))
    resolver = {**RESOLVER, "validates_dnssec": False}
    return Assessment("weak.test", "0.1.0", (mx, records, transport), resolver, 0.5)


def hostile() -> Assessment:
    """Attacker-controlled strings everywhere a DNS or SMTP answer can reach a report."""
    spf = Finding(
        "spf.invalid",
        Status.FAIL,
        "spf",
        f"the SPF record is invalid: {HOSTILE_SCRIPT}",
        (f"v=spf1 {HOSTILE_SCRIPT} {HOSTILE_IMG} -all",),
        "spf.publish",
    )
    banner = Finding(
        "starttls.not_offered",
        Status.FAIL,
        "starttls",
        f"no STARTTLS; banner {HOSTILE_IMG}",
        (f"220 {HOSTILE_SCRIPT}\x1b[2J",),
        "starttls.enable",
        "mx.evil.test",
    )
    checks = (
        _mx(("mx.evil.test", 10, ["127.0.0.66"])),
        CheckResult(
            "records",
            (spf,),
            (ProtocolVerdict("spf", F, spf.message, details={"record": f"v=spf1 {HOSTILE_IMG}"}),),
        ),
        CheckResult(
            "transport",
            (banner,),
            (ProtocolVerdict("starttls", F, banner.message, share=0.0),),
            {"hosts": [{"name": "mx.evil.test", "banner": f"220 {HOSTILE_SCRIPT}", "note": HOSTILE_IMG}]},
        ),
    )
    return Assessment("evil.test", "0.1.0", checks, RESOLVER, 0.25)


SAMPLES = {"hardened": hardened, "neglected": neglected, "hostile": hostile}
