"""Every remediation key has a fix, and fixes print the hardening generator's own records."""

from __future__ import annotations

import base64
import datetime as dt

import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from mecsa.checks.registry import finding_kinds, remedies
from mecsa.fixes import FIXES, FixContext, canonical_key, fix_for, fixes_for, has_fix
from mecsa.harden import records
from mecsa.model import Assessment, CheckResult, Finding, Status
from tests.unit.report.samples import TODAY, neglected

MX = ("mx1.example.test", "mx2.example.test")


def _ctx(
    key: str, *evidence: str, subject: str | None = None, mx_addresses: tuple[str, ...] = ()
) -> FixContext:
    finding = Finding("x.y", Status.FAIL, key.split(".")[0], "m", evidence, key, subject)
    return FixContext("example.test", MX, finding, today=TODAY, mx_addresses=mx_addresses)


def _text(key: str, ctx: FixContext) -> str:
    fix = fix_for(key, ctx)
    assert fix is not None
    return "\n".join(s.text for s in fix.snippets)


def test_every_remediation_key_of_every_registered_check_has_a_fix() -> None:
    keys = {k.remedy: k.id for k in finding_kinds() if k.remedy}
    assert "mx.publish" in keys and "dmarc.publish" in keys  # the declarations are seen at all
    builders = remedies()
    missing = {key: fid for key, fid in keys.items() if not has_fix(key, builders)}
    assert missing == {}


def test_every_shared_fix_is_the_remedy_of_some_declared_finding() -> None:
    declared = {canonical_key(k.remedy) for k in finding_kinds() if k.remedy}
    # mail mode's outbound findings name the same shared remedies as domain mode
    assert sorted(canonical_key(k) for k in FIXES if canonical_key(k) not in declared) == []


@pytest.mark.parametrize("key", sorted(FIXES))
def test_every_fix_builds_with_and_without_evidence(key: str) -> None:
    for ctx in (_ctx(key), _ctx(key, "v=spf1 mx ?all", subject="mx2.example.test")):
        fix = fix_for(key, ctx)
        assert fix is not None and fix.title and fix.snippets
        assert all(s.where for s in fix.snippets)
        assert all(s.text.strip() for s in fix.snippets)


def test_keys_match_with_dash_or_underscore() -> None:
    assert canonical_key("tls-rpt.publish") == "tls_rpt.publish"
    assert has_fix("tls-rpt.publish") and has_fix("mta-sts.publish_record")
    assert not has_fix("nothing.here")


def test_dmarc_publish_is_the_generators_record() -> None:
    expected = records.dmarc_record("example.test", "dmarc_reports@example.test", "reject").zone_line()
    assert _text("dmarc.publish", _ctx("dmarc.publish")) == expected
    assert expected == (
        '_dmarc.example.test. 3600 IN TXT "v=DMARC1; p=reject; sp=reject; np=reject; '
        'rua=mailto:dmarc_reports@example.test"'
    )


def test_dmarc_policy_reject_keeps_the_found_report_address() -> None:
    ctx = _ctx("dmarc.policy_reject", "v=DMARC1; p=none; rua=mailto:agg@example.test,mailto:b@example.test")
    assert _text("dmarc.policy_reject", ctx) == (
        '_dmarc.example.test. 3600 IN TXT "v=DMARC1; p=reject; sp=reject; np=reject; '
        'rua=mailto:agg@example.test"'
    )


def test_dmarc_external_report_address_gets_its_authorisation_record() -> None:
    ctx = FixContext(
        "example.test",
        MX,
        Finding(
            "dmarc_policy.external_unauthorised",
            Status.WARN,
            "dmarc_policy",
            "mailto:dmarc@reports.example.net is outside example.test and ...",
            remediation="dmarc.authorise_external",
        ),
    )
    assert _text("dmarc.authorise_external", ctx) == (
        "; publish in the zone of reports.example.net, so that it accepts example.test's DMARC reports\n"
        'example.test._report._dmarc.reports.example.net. 3600 IN TXT "v=DMARC1"'
    )


def test_spf_fixes_keep_the_authorised_senders() -> None:
    found = "v=spf1 mx ptr include:_spf.mail.example.net ?all"
    assert _text("spf.end_with_all", _ctx("spf.end_with_all", found)) == (
        'example.test. 3600 IN TXT "v=spf1 mx ptr include:_spf.mail.example.net -all"'
    )
    assert _text("spf.remove_ptr", _ctx("spf.remove_ptr", found)) == (
        'example.test. 3600 IN TXT "v=spf1 mx include:_spf.mail.example.net -all"'
    )
    flat = _ctx("spf.reduce_lookups", found, mx_addresses=("192.0.2.1", "2001:db8::1"))
    assert _text("spf.reduce_lookups", flat) == (
        'example.test. 3600 IN TXT "v=spf1 ip4:192.0.2.1 ip6:2001:db8::1 ptr '
        'include:_spf.mail.example.net -all"'
    )


def test_dkim_h_tag_fix_republishes_the_same_key_through_the_generator() -> None:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048).public_key()
    p = base64.b64encode(key.public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)).decode()
    ctx = _ctx("dkim.fix_h_tag", f"v=DKIM1; h=rsa-sha256; k=rsa; p={p}", subject="s1._domainkey.example.test")
    text = _text("dkim.fix_h_tag", ctx)
    assert text == records.dkim_txt("s1", "example.test", key).zone_line()
    assert "h=" not in text and text.startswith("s1._domainkey.example.test. 3600 IN TXT")


def test_dkim_unreadable_key_falls_back_to_a_new_key_with_opendkim_settings() -> None:
    ctx = _ctx("dkim.fix_record", "v=DKIM1; k=rsa; p=@@@", subject="s1._domainkey.example.test")
    fix = fix_for("dkim.fix_record", ctx)
    assert fix is not None and "cannot be read" in fix.title
    text = "\n".join(s.text for s in fix.snippets)
    assert "opendkim-genkey -b 2048 -d example.test -s s202611" in text
    assert "-h rsa-sha256" not in text
    assert "OversignHeaders\t\tFrom" in text
    assert "smtpd_milters = inet:127.0.0.1:8891" in text


def test_mta_sts_fix_lists_every_mx_in_enforce_mode() -> None:
    fix = fix_for("mta_sts.enforce", _ctx("mta_sts.enforce"))
    assert fix is not None
    sts = records.mta_sts_records("example.test", MX)
    assert fix.snippets[0].text == sts.txt.zone_line()
    assert fix.snippets[1].text == sts.policy
    assert "mode: enforce\r\nmx: mx1.example.test\r\nmx: mx2.example.test\r\n" in sts.policy


def test_fixes_for_covers_failures_and_warnings_only_and_merges_duplicates() -> None:
    findings = (
        Finding("tls-rpt.missing", Status.FAIL, "tls-rpt", "none", (), "tls-rpt.publish"),
        Finding("tls-rpt.multiple", Status.FAIL, "tls-rpt", "two", (), "tls-rpt.publish"),
        Finding("dmarc.valid", Status.PASS, "dmarc", "ok", (), "dmarc.publish"),
        Finding("dmarc.info", Status.INFO, "dmarc", "fyi", (), "dmarc.publish"),
        Finding("spf.lookup_failed", Status.ERROR, "spf", "SERVFAIL", (), "spf.publish"),
    )
    assessment = Assessment("example.test", "0", (CheckResult("c", findings, ()),))
    fixes = fixes_for(assessment)
    assert [(f.key, f.findings) for f in fixes] == [
        ("tls-rpt.publish", ("tls-rpt.missing", "tls-rpt.multiple"))
    ]


def test_a_per_address_finding_is_fixed_on_its_own_host() -> None:
    # per-address findings (starttls, x509, dane) have the subject "HOST ADDRESS"
    for subject in ("mx2.example.test", "mx2.example.test 127.0.0.2", "mx2.example.test ::1"):
        assert _ctx("starttls.enable", subject=subject).hosts() == ("mx2.example.test",)
    assert _ctx("starttls.enable", subject="other.example.test 127.0.0.2").hosts() == MX
    assert _ctx("starttls.enable").hosts() == MX


def test_fixes_of_a_sample_use_its_names() -> None:
    fixes = fixes_for(neglected(), dt.date(2026, 11, 5), remedies())
    assert [f.key for f in fixes] == [
        "tls-rpt.publish",
        "mta_sts.enforce",
        "dmarc.publish",
        "dkim.publish",
        "spf.end_with_all",
        "starttls.enable",
        "dane.publish",
        "dane.publish",
    ]
    (starttls,) = [f for f in fixes if f.key == "starttls.enable"]
    assert starttls.subject == "mx2.weak.test 127.0.0.21"
    assert starttls.findings == ("starttls.not_offered", "x509.no_tls")
    assert starttls.title == "Offer STARTTLS with TLS 1.2+ on mx2.weak.test"
    assert "smtpd_tls_chain_files = /etc/ssl/private/mx2.weak.test.key, /etc/ssl/certs/mx2.weak.test.pem" in (
        starttls.snippets[0].text
    )
    (spf,) = [f for f in fixes if f.key == "spf.end_with_all"]
    assert spf.snippets[0].text == 'weak.test. 3600 IN TXT "v=spf1 mx a:out.weak.test -all"'
    sts = next(f for f in fixes if f.key == "mta_sts.enforce")
    # the policy lists the MX hosts the mx check found (MxFacts), in preference order
    assert "mx: mx1.weak.test\r\nmx: mx2.weak.test\r\n" in sts.snippets[1].text
