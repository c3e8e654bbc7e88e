"""The lab's revocation sources, without a lab: the index that `openssl ocsp` answers from (run
offline here, request and response as files), the CRLs, and the URLs per scenario kind.
"""

from __future__ import annotations

import datetime as dt
import shutil
import subprocess
from pathlib import Path

import pytest
from cryptography import x509

from mecsa.lab.ca import LabCa
from mecsa.lab.revocation import RevocationEntry, index_line, revocation_urls, write_revocation
from mecsa.revocation import RevocationState, judge_crl, judge_ocsp, ocsp_request, revocation_points


def _now() -> dt.datetime:
    """The time of the check, taken when a test runs: the lab's CRLs and OCSP answers are dated when
    they are written, and a constant taken at collection can be older than the 5 minutes of clock
    skew that a CRL's thisUpdate is allowed (CI ran this file 13 minutes after collection)."""
    return dt.datetime.now(dt.UTC)


def test_urls_per_kind() -> None:
    good = revocation_urls("rev.test", "good")
    assert good.ocsp == ("http://ocsp.rev.test:8080/",) and good.crl == ("http://crl.rev.test/rev.test.crl",)
    assert revocation_urls("rev.test", "crl-revoked").ocsp == ()
    assert all(":8081/" in u for u in (*revocation_urls("rev.test", "unreachable").ocsp,))
    assert revocation_urls("rev.test", "none") == revocation_urls("rev.test", "anything else")


def test_a_leaf_names_its_sources() -> None:
    issued = LabCa().issue(["mx1.rev.test"], revocation=revocation_urls("rev.test", "good"))
    assert issued.certificate is not None
    points = revocation_points(issued.certificate)
    assert points.ocsp == ("http://ocsp.rev.test:8080/",) and points.crl == (
        "http://crl.rev.test/rev.test.crl",
    )


def test_index_lines_pad_the_serial_as_openssl_does() -> None:
    cert = LabCa().issue(["mx1.rev.test"]).certificate
    assert cert is not None
    line = index_line(cert, _now())
    status, expiry, revoked, serial, _, subject = line.rstrip("\n").split("\t")
    assert status == "R" and revoked.endswith(",keyCompromise") and expiry.endswith("Z")
    assert len(serial) % 2 == 0 and int(serial, 16) == cert.serial_number
    assert subject == "/CN=mx1.rev.test"


def _entries(ca: LabCa) -> list[RevocationEntry]:
    return [
        RevocationEntry(
            "rev.test", kind, ca.issue([f"{kind}.rev.test"], revocation=revocation_urls("rev.test", kind))
        )
        for kind in ("good", "revoked", "crl-revoked")
    ]


def test_the_crl_lists_the_revoked_ones(tmp_path: Path) -> None:
    ca = LabCa()
    entries = _entries(ca)
    files = write_revocation(tmp_path, ca, entries)
    crl = (files.crl_root / "rev.test.crl").read_bytes()
    states = {e.kind: judge_crl("crl", crl, e.certificate, ca.certificate, _now()).state for e in entries}
    assert states == {
        "good": RevocationState.GOOD,
        "revoked": RevocationState.REVOKED,
        "crl-revoked": RevocationState.REVOKED,
    }


@pytest.mark.skipif(shutil.which("openssl") is None, reason="no openssl binary")
def test_openssl_ocsp_answers_from_the_index(tmp_path: Path) -> None:
    ca = LabCa()
    entries = _entries(ca)
    files = write_revocation(tmp_path, ca, entries)
    for entry in entries:
        request, response = tmp_path / f"{entry.kind}.req", tmp_path / f"{entry.kind}.resp"
        request.write_bytes(ocsp_request(entry.certificate, ca.certificate))
        argv = [
            "openssl", "ocsp", "-index", str(files.index), "-CA", str(files.ca_cert),
            "-rsigner", str(files.ca_cert), "-rkey", str(files.ca_key), "-nmin", "60",
            "-reqin", str(request), "-respout", str(response),
        ]  # fmt: skip
        subprocess.run(argv, check=True, capture_output=True, timeout=30)
        # openssl stamps thisUpdate with the real time: judge at the real time too, not at import time
        now = dt.datetime.now(dt.UTC)
        answer = judge_ocsp("ocsp", response.read_bytes(), entry.certificate, ca.certificate, now)
        expected = {"good": "good", "revoked": "revoked", "crl-revoked": "unknown"}[entry.kind]
        assert answer.state.value == expected, answer.detail


def test_a_lenient_ca_leaf_carries_its_intermediate() -> None:
    issued = LabCa().issue(["mx1.rev.test"], "lenient-ca")
    assert isinstance(issued.certificate, x509.Certificate)
    assert issued.issuer_spki_sha256 and issued.issuer_spki_sha256 != issued.spki_sha256
    assert issued.chain_pem.count(b"BEGIN CERTIFICATE") == 2


def test_the_lenient_chain_is_valid_with_a_webpki_deviation() -> None:
    from mecsa.pkix import validate_path

    ca = LabCa()
    issued = ca.issue(["mx1.rev.test"], "lenient-ca")
    chain = x509.load_pem_x509_certificates(issued.chain_pem)
    result = validate_path(chain[0], chain[1:], (ca.certificate,), _now())
    assert result.valid and result.webpki_deviation is not None and "2.5.29.19" in result.webpki_deviation
