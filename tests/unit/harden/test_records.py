"""The DNS records: golden zone text and JSON, and each value checked against its standard."""

from __future__ import annotations

import base64
import hashlib
import json

import dns.rdata
import dns.rdataclass
import dns.rdatatype
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat, load_pem_private_key

from mecsa.harden.records import (
    dkim_txt,
    dmarc_record,
    dmarc_report_authorization,
    mta_sts_records,
    records_for,
    spf_record,
    split_txt,
    tls_rpt_record,
    tlsa_311,
)
from mecsa.harden.settings import HardenSettings

from .conftest import FIXTURES, check_golden, fixed_dkim_keys, make_settings

CERT = x509.load_pem_x509_certificate((FIXTURES / "tls-cert.pem").read_bytes())
NEXT_KEY = load_pem_private_key((FIXTURES / "tls-next-key.pem").read_bytes(), password=None)


def _record_set(settings: HardenSettings):  # type: ignore[no-untyped-def]
    public = {s: k.public_key() for (_, s), k in fixed_dkim_keys().items()}
    return records_for(settings, public, CERT, NEXT_KEY.public_key())


def test_zone_text_matches_golden(settings: HardenSettings) -> None:
    check_golden("records.zone", _record_set(settings).zone_text())


def test_json_matches_golden(settings: HardenSettings) -> None:
    check_golden("records.json", json.dumps(_record_set(settings).to_json(), indent=2) + "\n")


def test_tlsa_is_the_sha256_of_the_certificate_spki_computed_independently() -> None:
    # independent: the SPKI DER taken from the certificate's own DER with the x509 parser's help
    spki = CERT.public_key().public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)
    assert spki in CERT.public_bytes(Encoding.DER)  # really the certificate's SubjectPublicKeyInfo field
    expected = hashlib.sha256(spki).hexdigest()
    record = tlsa_311("mx.example.test", CERT)
    assert record.owner == "_25._tcp.mx.example.test"
    usage, selector, mtype, data = record.value.split()
    assert (usage, selector, mtype) == ("3", "1", "1")
    assert len(data) == 64 and data == expected


def test_next_key_tlsa_differs_and_matches_the_next_key(settings: HardenSettings) -> None:
    tlsas = [r for r in _record_set(settings).records if r.rtype == "TLSA"]
    next_spki = NEXT_KEY.public_key().public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)
    assert [t.value.split()[-1] for t in tlsas] == [
        tlsa_311("mx.example.test", CERT).value.split()[-1],
        hashlib.sha256(next_spki).hexdigest(),
    ]


def test_dkim_record_has_no_h_tag_and_its_key_is_the_spki_split_into_255_byte_strings() -> None:
    key = fixed_dkim_keys()["example.test", "s202611"].public_key()
    record = dkim_txt("s202611", "example.test", key)
    assert record.owner == "s202611._domainkey.example.test"
    assert "h=" not in record.value
    der = key.public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)
    assert record.value == f"v=DKIM1; k=rsa; p={base64.b64encode(der).decode()}"
    rdata = dns.rdata.from_text(dns.rdataclass.IN, dns.rdatatype.TXT, record.rdata())
    strings = rdata.strings  # type: ignore[attr-defined]
    assert len(strings) == 2 and all(len(s) <= 255 for s in strings)
    assert b"".join(strings).decode() == record.value


def test_ed25519_dkim_record_carries_the_raw_32_byte_key() -> None:
    key = fixed_dkim_keys()["example.test", "s202611-ed25519"].public_key()
    value = dkim_txt("s1", "example.test", key).value
    assert value.startswith("v=DKIM1; k=ed25519; p=")
    assert len(base64.b64decode(value.rpartition("p=")[2])) == 32


def test_split_txt_never_cuts_a_multibyte_character() -> None:
    text = "é" * 300
    parts = split_txt(text)
    assert "".join(parts) == text and all(len(p.encode()) <= 255 for p in parts)


def test_small_builders_give_the_exact_fix_lines() -> None:
    assert spf_record("example.test").zone_line() == 'example.test. 3600 IN TXT "v=spf1 mx -all"'
    assert spf_record("example.test", ["mx", "ip4:192.0.2.0/24"]).value == "v=spf1 mx ip4:192.0.2.0/24 -all"
    assert dmarc_record("example.test", "d@example.test").zone_line() == (
        '_dmarc.example.test. 3600 IN TXT "v=DMARC1; p=reject; sp=reject; np=reject; '
        'rua=mailto:d@example.test"'
    )
    assert tls_rpt_record("example.test", "mailto:t@example.test").value == (
        "v=TLSRPTv1; rua=mailto:t@example.test"
    )


def test_mta_sts_id_changes_exactly_when_the_policy_changes() -> None:
    a = mta_sts_records("example.test", ["mx.example.test"])
    assert a.policy == "version: STSv1\r\nmode: enforce\r\nmx: mx.example.test\r\nmax_age: 604800\r\n"
    assert a.txt.owner == "_mta-sts.example.test"
    assert a.txt == mta_sts_records("example.test", ["mx.example.test"]).txt
    assert a.txt != mta_sts_records("example.test", ["mx2.example.test"]).txt
    policy_id = a.txt.value.rpartition("id=")[2]
    assert policy_id.isalnum() and 1 <= len(policy_id) <= 32


def test_foreign_dmarc_report_address_needs_an_authorization_record() -> None:
    assert dmarc_report_authorization("example.test", "d@example.test") is None
    assert dmarc_report_authorization("example.test", "d@mail.example.test") is None
    record = dmarc_report_authorization("example.test", "mailto:d@reports.example.org")
    assert record is not None
    assert record.zone_line().endswith(
        'example.test._report._dmarc.reports.example.org. 3600 IN TXT "v=DMARC1"'
    )


def test_every_zone_line_parses_as_a_zone_file(settings: HardenSettings) -> None:
    import dns.zone

    zone_text = "$ORIGIN example.test.\n@ 3600 IN SOA ns hostmaster 1 3600 600 86400 300\n@ IN NS ns\n"
    zone = dns.zone.from_text(zone_text + _record_set(settings).zone_text(), relativize=False)
    txt = zone.get_rdataset("_dmarc.example.test.", "TXT")
    assert txt is not None
    assert make_settings().dmarc_rua == "dmarc_reports@example.test"
