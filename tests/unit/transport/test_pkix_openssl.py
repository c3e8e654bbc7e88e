"""mecsa judges chain shapes as OpenSSL does (issue 12, item 4): a differential test against the
`openssl verify` of this machine, with `-purpose sslserver` as a TLS client verifies a server and
`-auth_level 2` as Debian's default security level makes a TLS client do, and `-partial_chain
-trusted` for a DANE-TA anchor (OpenSSL's DANE makes the matched certificate a trust anchor the
same way). Files only, no network.
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import ExtendedKeyUsageOID

from mecsa.certs import Tlsa, match_record
from mecsa.pkix import validate_path
from tests.unit.transport.chains import NOW, Node, Shape, ca, leaf

OPENSSL = shutil.which("openssl")
pytestmark = pytest.mark.skipif(OPENSSL is None, reason="no openssl binary")
MX = "mx.example.test"

SHAPES = {
    "well-formed": Shape(),
    "non-critical-basic-constraints": Shape(bc_critical=False),
    "ca-false": Shape(ca=False, bc_critical=False),
    "no-basic-constraints": Shape(basic_constraints=False),
    "no-basic-constraints-no-key-usage": Shape(basic_constraints=False, key_usage=False),
    "no-key-cert-sign": Shape(key_cert_sign=False),
    "eku-server-auth": Shape(eku=(ExtendedKeyUsageOID.SERVER_AUTH,)),
    "eku-client-auth": Shape(eku=(ExtendedKeyUsageOID.CLIENT_AUTH,)),
    "no-key-usage-no-key-identifiers": Shape(key_usage=False, key_identifiers=False),
}


def _write(path: Path, *nodes: Node) -> str:
    path.write_bytes(b"".join(n.cert.public_bytes(serialization.Encoding.PEM) for n in nodes))
    return str(path)


def _openssl_accepts(*args: str) -> bool:
    assert OPENSSL is not None
    argv = [OPENSSL, "verify", "-purpose", "sslserver", "-auth_level", "2", *args]
    done = subprocess.run(argv, capture_output=True, timeout=30)
    return done.returncode == 0


@pytest.mark.parametrize("shape", [*SHAPES.values(), "rsa-1024"], ids=[*SHAPES, "rsa-1024-key"])
def test_the_issuing_ca_shape_is_judged_as_openssl_judges_it(shape: Shape | str, tmp_path: Path) -> None:
    root = ca("Root", None)
    if isinstance(shape, Shape):
        issuing = ca("Issuing", root, shape)
    else:  # a key too weak at security level 2 (cryptography refuses it whatever the policy)
        issuing = ca("Issuing", root, key=rsa.generate_private_key(65537, 1024))  # type: ignore[arg-type]
    mx = leaf(issuing, MX)
    leaf_pem, issuing_pem = _write(tmp_path / "leaf.pem", mx), _write(tmp_path / "issuing.pem", issuing)
    root_pem = _write(tmp_path / "root.pem", root)

    full = _openssl_accepts("-CAfile", root_pem, "-untrusted", issuing_pem, leaf_pem)
    assert validate_path(mx.cert, [issuing.cert], (root.cert,), NOW).valid is full

    as_anchor = _openssl_accepts("-partial_chain", "-trusted", issuing_pem, leaf_pem)
    spki = issuing.cert.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    record = Tlsa(2, 1, 1, hashlib.sha256(spki).digest())
    assert match_record(record, [mx.cert, issuing.cert], (MX,), NOW).matched is as_anchor
