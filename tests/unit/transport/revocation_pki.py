"""A CA that publishes revocation for the tests: leaves with AIA OCSP and CRL distribution points,
OCSP responses and CRLs built with `cryptography`, and a small HTTP server on loopback that
serves them (an OCSP responder answering POSTs, CRLs answering GETs).
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509 import ocsp
from cryptography.x509.oid import AuthorityInformationAccessOID, ExtendedKeyUsageOID

from tests.unit.transport.chains import NOW, Node, Shape, ca, leaf
from tests.unit.transport.pki import new_key


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(x509.oid.NameOID.COMMON_NAME, cn)])


@dataclass
class RevokingCa:
    """A root and an issuing CA whose leaves point at `ocsp_url` and `crl_url`."""

    root: Node = field(default_factory=lambda: ca("Revocation Root", None))
    issuing: Node = field(init=False)

    def __post_init__(self) -> None:
        self.issuing = ca("Revocation Issuing CA", self.root)

    def leaf(self, name: str, *, ocsp_urls: tuple[str, ...] = (), crl_urls: tuple[str, ...] = ()) -> Node:
        key = new_key()
        builder = (
            x509.CertificateBuilder()
            .subject_name(_name(name))
            .issuer_name(self.issuing.cert.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(NOW - dt.timedelta(days=1))
            .not_valid_after(NOW + dt.timedelta(days=60))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        )
        if ocsp_urls:
            access = [
                x509.AccessDescription(AuthorityInformationAccessOID.OCSP, x509.UniformResourceIdentifier(u))
                for u in ocsp_urls
            ]
            builder = builder.add_extension(x509.AuthorityInformationAccess(access), critical=False)
        if crl_urls:
            points = [
                x509.DistributionPoint([x509.UniformResourceIdentifier(u)], None, None, None)
                for u in crl_urls
            ]
            builder = builder.add_extension(x509.CRLDistributionPoints(points), critical=False)
        return Node(builder.sign(self.issuing.key, hashes.SHA256()), key)

    def responder(self, *, ocsp_signing: bool = True) -> Node:
        """A delegated OCSP responder certificate issued by the issuing CA (RFC 6960 §4.2.2.2)."""
        node = leaf(self.issuing, "ocsp-responder.test")
        if ocsp_signing:
            key = new_key()
            builder = (
                x509.CertificateBuilder()
                .subject_name(_name("OCSP Responder"))
                .issuer_name(self.issuing.cert.subject)
                .public_key(key.public_key())
                .serial_number(x509.random_serial_number())
                .not_valid_before(NOW - dt.timedelta(days=1))
                .not_valid_after(NOW + dt.timedelta(days=30))
                .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.OCSP_SIGNING]), critical=False)
            )
            return Node(builder.sign(self.issuing.key, hashes.SHA256()), key)
        return node

    def ocsp_response(
        self,
        subject: Node,
        status: ocsp.OCSPCertStatus,
        *,
        signer: Node | None = None,
        include_signer: bool = False,
        next_update: dt.datetime | None = None,
        about: Node | None = None,
    ) -> bytes:
        """A signed OCSP response about `about` (default `subject`), by the issuer unless `signer`."""
        signer = signer or self.issuing
        revoked = status is ocsp.OCSPCertStatus.REVOKED
        builder = (
            ocsp.OCSPResponseBuilder()
            .add_response(
                (about or subject).cert,
                self.issuing.cert,
                hashes.SHA1(),
                status,
                NOW - dt.timedelta(hours=1),
                next_update or NOW + dt.timedelta(days=3),
                NOW - dt.timedelta(days=2) if revoked else None,
                x509.ReasonFlags.key_compromise if revoked else None,
            )
            .responder_id(ocsp.OCSPResponderEncoding.HASH, signer.cert)
        )
        if include_signer:
            builder = builder.certificates([signer.cert])
        response = builder.sign(signer.key, hashes.SHA256())
        return response.public_bytes(serialization.Encoding.DER)

    def crl(
        self,
        revoked: tuple[Node, ...] = (),
        *,
        signer: Node | None = None,
        next_update: dt.datetime | None = None,
        delta: bool = False,
        pem: bool = False,
    ) -> bytes:
        signer = signer or self.issuing
        builder = (
            x509.CertificateRevocationListBuilder()
            .issuer_name(self.issuing.cert.subject)
            .last_update(min(NOW - dt.timedelta(hours=1), (next_update or NOW) - dt.timedelta(days=1)))
            .next_update(next_update or NOW + dt.timedelta(days=7))
        )
        for node in revoked:
            entry = (
                x509.RevokedCertificateBuilder()
                .serial_number(node.cert.serial_number)
                .revocation_date(NOW - dt.timedelta(days=2))
                .add_extension(x509.CRLReason(x509.ReasonFlags.superseded), critical=False)
                .build()
            )
            builder = builder.add_revoked_certificate(entry)
        if delta:
            builder = builder.add_extension(x509.DeltaCRLIndicator(1), critical=True)
        crl = builder.sign(signer.key, hashes.SHA256())
        return crl.public_bytes(serialization.Encoding.PEM if pem else serialization.Encoding.DER)


Handler = Callable[[str, bytes], tuple[int, bytes]]


@dataclass
class HttpServer:
    """A tiny HTTP/1.1 server on loopback: `routes[path](method, body) -> (status, body)`.

    `hang` makes it accept and never answer. `requests` records (method, path, host, content type, body).
    """

    address: str = "127.0.0.1"
    routes: dict[str, Handler] = field(default_factory=dict)
    hang: bool = False
    requests: list[tuple[str, str, str, str, bytes]] = field(default_factory=list)
    port: int = 0
    _server: asyncio.Server | None = None

    async def start(self) -> HttpServer:
        self._server = await asyncio.start_server(self._handle, self.address, 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 1)

    def url(self, host: str, path: str) -> str:
        return f"http://{host}:{self.port}{path}"

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            lines = head.decode("latin-1").split("\r\n")
            method, path, _ = lines[0].split(" ", 2)
            headers = {k.strip().lower(): v.strip() for k, _, v in (h.partition(":") for h in lines[1:] if h)}
            body = await reader.readexactly(int(headers.get("content-length", "0")))
            self.requests.append(
                (method, path, headers.get("host", ""), headers.get("content-type", ""), body)
            )
            if self.hang:
                await asyncio.sleep(3600)
            handler = self.routes.get(path)
            status, payload = handler(method, body) if handler else (404, b"not found")
            writer.write(
                f"HTTP/1.1 {status} X\r\nContent-Length: {len(payload)}\r\nConnection: close\r\n\r\n".encode()
                + payload
            )
            await writer.drain()
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError, ValueError):
            pass
        finally:
            writer.close()


def static(payload: bytes, status: int = 200) -> Handler:
    return lambda method, body: (status, payload)


__all__ = ["HttpServer", "RevokingCa", "Shape", "static"]
