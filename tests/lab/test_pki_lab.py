"""Issue 12, items 4 and 7 with real servers: Postfix as the DANE sender delivers through a chain
whose intermediate's basicConstraints is not critical (and mecsa agrees), and the MX certificates'
revocation is read from `openssl ocsp` and from a CRL on the lab's web server.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.lab


def _x509_address(directory: Path, domain: str) -> dict[str, Any]:
    argv = [sys.executable, "-m", "mecsa", "lab", "assess", domain, "--dir", str(directory), "--json"]
    argv += ["--only", "x509", "--timeout", "5"]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    address: dict[str, Any] = report["checks"]["x509"]["hosts"][0]["addresses"][0]
    return address


def test_dane_sender_delivers_through_a_non_critical_basic_constraints_intermediate(full_lab: Path) -> None:
    from mecsa.lab.mailflow import send
    from mecsa.lab.runner import load_state

    delivery = send(load_state(full_lab), "bob@lenientca.test")["bob@lenientca.test"]
    assert delivery.status == "sent", delivery.sender_log
    assert delivery.verified_tls  # Postfix (OpenSSL) matched 2 1 1 of that intermediate
    address = _x509_address(full_lab, "lenientca.test")
    assert address["outcome"] == "pass"
    assert address["chain"][0]["subject"] == "CN=mecsa lab lenient intermediate"


@pytest.mark.parametrize(
    ("domain", "state", "source"),
    [
        ("revgood.test", "good", "ocsp"),
        ("revoked.test", "revoked", "ocsp"),
        ("crlrevoked.test", "revoked", "crl"),
        ("revunreachable.test", "unknown", None),
    ],
)
def test_revocation_comes_from_openssl_ocsp_and_the_lab_crl(
    full_lab: Path, domain: str, state: str, source: str | None
) -> None:
    revocation = _x509_address(full_lab, domain)["revocation"]
    assert revocation["state"] == state, revocation
    deciding = [a for a in revocation["answers"] if a["state"] == state]
    if source is None:  # nothing answered: every source is unusable, for a reason
        assert {a["source"] for a in revocation["answers"]} == {"ocsp", "crl"}
        assert all(a["state"] == "unusable" and a["detail"] for a in revocation["answers"])
    else:
        assert deciding and deciding[0]["source"] == source
    if domain == "revgood.test":  # the responder settled it: the CRL is not fetched
        assert [a["source"] for a in revocation["answers"]] == ["ocsp"]
    if state == "revoked":
        assert deciding[0]["reason"] == "keyCompromise"
