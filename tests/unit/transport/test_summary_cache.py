"""`CertificateSummary.of` is made once per certificate (issue 20), keyed by the DER octets:
a certificate parsed again gets the same summary, another certificate never gets it."""

from __future__ import annotations

from cryptography import x509

from mecsa.certs import CertificateSummary
from tests.unit.transport.pki import self_signed


def test_the_summary_is_per_certificate() -> None:
    one, other = self_signed("mx1.example.test"), self_signed("mx1.example.test")
    first = CertificateSummary.of(one.cert)
    again = CertificateSummary.of(x509.load_der_x509_certificate(one.der))
    assert again is first  # the same octets, parsed anew: reused
    theirs = CertificateSummary.of(other.cert)
    # Same name, another key and serial: its own summary.
    assert theirs.spki_sha256 == other.spki_sha256() != first.spki_sha256 == one.spki_sha256()
    assert theirs.serial != first.serial
    assert first == CertificateSummary._of(one.cert)  # what it would be without the cache
