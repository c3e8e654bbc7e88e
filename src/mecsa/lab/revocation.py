"""The lab's revocation sources for MX certificates: `openssl ocsp` and CRLs on the lab's web server.

Per MX host, the scenario key `revocation` says what its certificate names and what is behind:

============  ====================================================  ==============================
kind          the certificate names                                  what answers
============  ====================================================  ==============================
none          nothing (the default)                                  -
good          OCSP http://ocsp.<domain>:8080/ and the CRL            OCSP: good; the CRL lists none
              http://crl.<domain>/<domain>.crl
revoked       the same                                               OCSP: revoked; the CRL lists it
crl-revoked   only the CRL                                           the CRL lists it
unreachable   OCSP and CRL on port 8081 of the web node              nothing listens there
============  ====================================================  ==============================

The responder is `openssl ocsp` in the web node (port `OCSP_PORT`), signing with the lab CA's key
from an `index.txt` in OpenSSL's CA database format; the CRLs, signed by the lab CA, are served
over plain HTTP on port 80 by the lab's web server (`mecsa.lab.web`). Only certificates the lab CA
itself issues are covered (not the lenient intermediate's).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509

from mecsa.lab.ca import IssuedCert, LabCa, RevocationUrls

OCSP_PORT = 8080
CLOSED_PORT = 8081  # the web node listens on nothing here: the unreachable case
REVOKED_KINDS = ("revoked", "crl-revoked")


def revocation_urls(domain: str, kind: str) -> RevocationUrls:
    """The URLs a certificate of `domain` names for the scenario's revocation `kind`."""
    crl = f"http://crl.{domain}/{domain}.crl"
    if kind in ("good", "revoked"):
        return RevocationUrls((f"http://ocsp.{domain}:{OCSP_PORT}/",), (crl,))
    if kind == "crl-revoked":
        return RevocationUrls((), (crl,))
    if kind == "unreachable":
        return RevocationUrls(
            (f"http://ocsp.{domain}:{CLOSED_PORT}/",), (f"http://crl.{domain}:{CLOSED_PORT}/{domain}.crl",)
        )
    return RevocationUrls()


def _openssl_time(when: dt.datetime) -> str:
    return when.astimezone(dt.UTC).strftime("%y%m%d%H%M%SZ")


def _serial_hex(serial: int) -> str:
    text = format(serial, "X")
    return text if len(text) % 2 == 0 else "0" + text  # as OpenSSL writes (and looks up) serials


def index_line(cert: x509.Certificate, revoked_at: dt.datetime | None = None) -> str:
    """One line of OpenSSL's CA database (`index.txt`): status, expiry, revocation, serial, file, DN."""
    subject = "".join(f"/{a.rfc4514_attribute_name}={a.value!s}" for a in cert.subject)
    revocation = f"{_openssl_time(revoked_at)},keyCompromise" if revoked_at else ""
    status = "R" if revoked_at else "V"
    expiry = _openssl_time(cert.not_valid_after_utc)
    return f"{status}\t{expiry}\t{revocation}\t{_serial_hex(cert.serial_number)}\tunknown\t{subject}\n"


@dataclass(frozen=True, slots=True)
class RevocationEntry:
    """One MX certificate with revocation: its domain, the scenario's kind, and the certificate."""

    domain: str
    kind: str
    issued: IssuedCert

    @property
    def certificate(self) -> x509.Certificate:
        assert self.issued.certificate is not None
        return self.issued.certificate


@dataclass(frozen=True, slots=True)
class RevocationFiles:
    """What `write_revocation` wrote: the responder's index and where the CRLs are."""

    index: Path
    crl_root: Path
    ca_cert: Path
    ca_key: Path


def write_revocation(directory: Path, ca: LabCa, entries: Sequence[RevocationEntry]) -> RevocationFiles:
    """The OCSP responder's index (every entry OCSP covers) and one CRL per domain with entries."""
    directory.mkdir(parents=True, exist_ok=True)
    crl_root = directory / "crl"
    crl_root.mkdir(exist_ok=True)
    revoked_at = dt.datetime.now(dt.UTC) - dt.timedelta(days=1)
    lines = [
        index_line(e.certificate, revoked_at if e.kind == "revoked" else None)
        for e in entries
        if e.kind in ("good", "revoked")
    ]
    index = directory / "index.txt"
    index.write_text("".join(lines))
    (directory / "index.txt.attr").write_text("unique_subject = no\n")
    for domain in sorted({e.domain for e in entries if e.kind != "unreachable"}):
        revoked = [e.certificate for e in entries if e.domain == domain and e.kind in REVOKED_KINDS]
        (crl_root / f"{domain}.crl").write_bytes(ca.crl(revoked))
    ca_cert, ca_key = directory / "ca.pem", directory / "ca.key"
    ca_cert.write_bytes(ca.pem())
    ca_key.write_bytes(ca.key_pem())
    ca_key.chmod(0o600)
    return RevocationFiles(index, crl_root, ca_cert, ca_key)


def responder_argv(files: RevocationFiles) -> tuple[str, ...]:
    """`openssl ocsp` as a responder on `OCSP_PORT` (all addresses of its node), answers valid 1 h."""
    return (
        "openssl",
        "ocsp",
        "-index",
        str(files.index),
        "-port",
        str(OCSP_PORT),
        "-rsigner",
        str(files.ca_cert),
        "-rkey",
        str(files.ca_key),
        "-CA",
        str(files.ca_cert),
        "-nmin",
        "60",
        "-ignore_err",
    )
