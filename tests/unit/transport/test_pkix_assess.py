"""Item 4 of issue 12 end to end: an MX on loopback whose issuing CA has a non-critical
basicConstraints passes x509 and a DANE-TA 2 1 1 record, each with its web-PKI deviation warning.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from cryptography.hazmat.primitives import serialization

from mecsa.model import Status, VerdictStatus
from tests.conftest import ServeZones
from tests.unit.transport.chains import Shape, ca, ed25519_key, leaf
from tests.unit.transport.servers import LoopbackServers, server_context
from tests.unit.transport.test_transport_checks import MX1, _assess, _ids, _tlsa


async def test_non_critical_basic_constraints_passes_x509_and_dane_ta_with_warnings(
    serve_zones: ServeZones, servers: LoopbackServers, tmp_path: Path
) -> None:
    root = ca("Lenient Root", None)
    issuing = ca("Lenient Issuing CA", root, Shape(bc_critical=False))
    mx = leaf(issuing, MX1)
    ca_file = tmp_path / "lenient-root.pem"
    ca_file.write_bytes(root.cert.public_bytes(serialization.Encoding.PEM))
    context = server_context(mx.issued, issuing.cert.public_bytes(serialization.Encoding.PEM), tmp_path)
    await servers.add_smtpd("127.0.0.2", context)
    spki = issuing.cert.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    body = "@ IN MX 10 mx1\nmx1 IN A 127.0.0.2\n" + _tlsa(
        servers.port, MX1, f"2 1 1 {hashlib.sha256(spki).hexdigest()}"
    )
    a = await _assess(serve_zones, body, servers, str(ca_file), tls_versions=False)
    assert a.verdicts["x509"].status is VerdictStatus.PASS
    assert a.verdicts["dane"].status is VerdictStatus.PASS
    x509_ids, dane_ids = _ids(a, "x509"), _ids(a, "dane")
    assert x509_ids["x509.chain_valid"] == [Status.PASS]
    assert x509_ids["x509.webpki_deviation"] == [Status.WARN]
    assert dane_ids["dane.match"] == [Status.PASS]
    assert dane_ids["dane.webpki_deviation"] == [Status.WARN]
    assert "dane.no_match" not in dane_ids and "x509.chain_untrusted" not in x509_ids
    warning = next(f for f in a.findings if f.id == "x509.webpki_deviation")
    assert "2.5.29.19" in warning.evidence[0]


async def test_an_ed25519_issuer_is_could_not_judge_not_untrusted(
    serve_zones: ServeZones, servers: LoopbackServers, tmp_path: Path
) -> None:
    root = ca("Ed Root", None)
    issuing = ca("Ed25519 Issuing CA", root, key=ed25519_key())
    mx = leaf(issuing, MX1)
    ca_file = tmp_path / "ed-root.pem"
    ca_file.write_bytes(root.cert.public_bytes(serialization.Encoding.PEM))
    context = server_context(mx.issued, issuing.cert.public_bytes(serialization.Encoding.PEM), tmp_path)
    await servers.add_smtpd("127.0.0.2", context)
    a = await _assess(
        serve_zones, "@ IN MX 10 mx1\nmx1 IN A 127.0.0.2\n", servers, str(ca_file), tls_versions=False
    )
    ids = _ids(a, "x509")
    assert ids["x509.chain_unsupported"] == [Status.ERROR]
    assert "x509.chain_untrusted" not in ids
    assert a.verdicts["x509"].status is VerdictStatus.ERROR
