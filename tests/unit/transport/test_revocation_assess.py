"""Item 7 of issue 12 end to end: an MX on loopback whose certificate names an OCSP responder and a
CRL that the test serves on loopback (resolved through the test zone), for good, revoked and
unreachable sources.
"""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.x509 import ocsp

from mecsa.assess import assess
from mecsa.model import Assessment, Status, VerdictStatus
from mecsa.observe import AssessOptions
from tests.conftest import ServeZones
from tests.unit.transport.chains import Node
from tests.unit.transport.revocation_pki import HttpServer, RevokingCa, static
from tests.unit.transport.servers import LoopbackServers, server_context
from tests.unit.transport.test_transport_checks import HEAD, MX1, _ids

OCSP_IP, CRL_IP = "127.0.0.7", "127.0.0.8"
ZONE = HEAD + f"@ IN MX 10 mx1\nmx1 IN A 127.0.0.2\nocsp IN A {OCSP_IP}\ncrl IN A {CRL_IP}\n"


@pytest.fixture
async def http() -> AsyncIterator[tuple[HttpServer, HttpServer]]:
    responder, crls = await HttpServer(OCSP_IP).start(), await HttpServer(CRL_IP).start()
    yield responder, crls
    await responder.close()
    await crls.close()


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.9", 0))
        return int(s.getsockname()[1])


async def _run(
    serve_zones: ServeZones,
    servers: LoopbackServers,
    authority: RevokingCa,
    mx: Node,
    tmp_path: Path,
    *,
    revocation: bool = True,
) -> Assessment:
    pem = serialization.Encoding.PEM
    context = server_context(mx.issued, authority.issuing.cert.public_bytes(pem), tmp_path)
    await servers.add_smtpd("127.0.0.2", context)
    ca_file = tmp_path / "revocation-root.pem"
    ca_file.write_bytes(authority.root.cert.public_bytes(pem))
    client = await serve_zones({"example.test.": ZONE}, secure=["example.test."])
    options = AssessOptions(
        smtp_port=servers.port,
        smtp_timeout=0.5,
        ca_file=str(ca_file),
        only=frozenset({"x509"}),
        tls_versions=False,
        revocation=revocation,
    )
    return await assess("example.test", client, options)


async def test_ocsp_good_passes_and_the_crl_is_not_fetched(
    serve_zones: ServeZones, servers: LoopbackServers, http: tuple[HttpServer, HttpServer], tmp_path: Path
) -> None:
    responder, crls = http
    authority = RevokingCa()
    mx = authority.leaf(
        MX1,
        ocsp_urls=(responder.url("ocsp.example.test", "/"),),
        crl_urls=(crls.url("crl.example.test", "/i.crl"),),
    )
    responder.routes["/"] = static(authority.ocsp_response(mx, ocsp.OCSPCertStatus.GOOD))
    a = await _run(serve_zones, servers, authority, mx, tmp_path)
    assert a.verdicts["x509"].status is VerdictStatus.PASS
    assert _ids(a, "x509")["x509.not_revoked"] == [Status.PASS]
    method, path, host, content_type, body = responder.requests[0]
    assert (method, path, host, content_type) == (
        "POST",
        "/",
        f"ocsp.example.test:{responder.port}",
        "application/ocsp-request",
    )
    assert ocsp.load_der_ocsp_request(body).serial_number == mx.cert.serial_number
    assert crls.requests == []  # OCSP settled it


async def test_ocsp_revoked_fails_x509(
    serve_zones: ServeZones, servers: LoopbackServers, http: tuple[HttpServer, HttpServer], tmp_path: Path
) -> None:
    responder, _ = http
    authority = RevokingCa()
    mx = authority.leaf(MX1, ocsp_urls=(responder.url("ocsp.example.test", "/"),))
    responder.routes["/"] = static(authority.ocsp_response(mx, ocsp.OCSPCertStatus.REVOKED))
    a = await _run(serve_zones, servers, authority, mx, tmp_path)
    assert a.verdicts["x509"].status is VerdictStatus.FAIL
    ids = _ids(a, "x509")
    assert ids["x509.revoked"] == [Status.FAIL]
    assert ids["x509.chain_valid"] == [Status.PASS]  # the chain itself is fine: revocation fails it
    revoked = next(f for f in a.findings if f.id == "x509.revoked")
    assert "keyCompromise" in revoked.message and revoked.remediation == "x509.replace"
    details = next(r for r in a.results if r.check == "x509").details
    revocation = details["hosts"][0]["addresses"][0]["revocation"]
    assert revocation["state"] == "revoked"
    assert (
        revocation["answers"][0]["source"] == "ocsp" and revocation["answers"][0]["reason"] == "keyCompromise"
    )


async def test_unreachable_responder_falls_back_to_a_crl_that_lists_it(
    serve_zones: ServeZones, servers: LoopbackServers, http: tuple[HttpServer, HttpServer], tmp_path: Path
) -> None:
    _, crls = http
    authority = RevokingCa()
    mx = authority.leaf(
        MX1,
        ocsp_urls=(f"http://ocsp.example.test:{_closed_port()}/",),
        crl_urls=(crls.url("crl.example.test", "/i.crl"),),
    )
    crls.routes["/i.crl"] = static(authority.crl((mx,)))
    a = await _run(serve_zones, servers, authority, mx, tmp_path)
    assert a.verdicts["x509"].status is VerdictStatus.FAIL
    revoked = next(f for f in a.findings if f.id == "x509.revoked")
    assert "crl" in revoked.message and any("ocsp" in e and "unusable" in e for e in revoked.evidence)
    assert [r[0] for r in crls.requests] == ["GET"]


async def test_unreachable_sources_warn_and_never_fail(
    serve_zones: ServeZones, servers: LoopbackServers, http: tuple[HttpServer, HttpServer], tmp_path: Path
) -> None:
    _, crls = http
    authority = RevokingCa()
    mx = authority.leaf(
        MX1,
        ocsp_urls=(f"http://ocsp.example.test:{_closed_port()}/",),
        crl_urls=(crls.url("crl.example.test", "/missing.crl"),),  # 404
    )
    a = await _run(serve_zones, servers, authority, mx, tmp_path)
    assert a.verdicts["x509"].status is VerdictStatus.PASS
    ids = _ids(a, "x509")
    assert ids["x509.revocation_unknown"] == [Status.WARN]
    assert "x509.revoked" not in ids and "x509.not_revoked" not in ids
    unknown = next(f for f in a.findings if f.id == "x509.revocation_unknown")
    assert any("HTTP status 404" in e for e in unknown.evidence)


async def test_no_revocation_asks_nobody(
    serve_zones: ServeZones, servers: LoopbackServers, http: tuple[HttpServer, HttpServer], tmp_path: Path
) -> None:
    responder, _ = http
    authority = RevokingCa()
    mx = authority.leaf(MX1, ocsp_urls=(responder.url("ocsp.example.test", "/"),))
    responder.routes["/"] = static(authority.ocsp_response(mx, ocsp.OCSPCertStatus.REVOKED))
    a = await _run(serve_zones, servers, authority, mx, tmp_path, revocation=False)
    assert _ids(a, "x509")["x509.revocation_not_checked"] == [Status.INFO]
    assert responder.requests == []


async def test_a_certificate_without_sources_is_only_noted(
    serve_zones: ServeZones, servers: LoopbackServers, tmp_path: Path
) -> None:
    authority = RevokingCa()
    a = await _run(serve_zones, servers, authority, authority.leaf(MX1), tmp_path)
    assert a.verdicts["x509"].status is VerdictStatus.PASS
    assert _ids(a, "x509")["x509.revocation_not_published"] == [Status.INFO]


async def test_the_cli_asks_the_responder_unless_told_not_to(
    serve_zones: ServeZones, servers: LoopbackServers, http: tuple[HttpServer, HttpServer], tmp_path: Path
) -> None:
    import asyncio
    import json
    import sys

    responder, _ = http
    authority = RevokingCa()
    mx = authority.leaf(MX1, ocsp_urls=(responder.url("ocsp.example.test", "/"),))
    responder.routes["/"] = static(authority.ocsp_response(mx, ocsp.OCSPCertStatus.REVOKED))
    pem = serialization.Encoding.PEM
    await servers.add_smtpd(
        "127.0.0.2", server_context(mx.issued, authority.issuing.cert.public_bytes(pem), tmp_path)
    )
    ca_file = tmp_path / "revocation-root.pem"
    ca_file.write_bytes(authority.root.cert.public_bytes(pem))
    client = await serve_zones({"example.test.": ZONE.replace("@ IN MX 10 mx1\n", "")})

    async def starttls(*extra: str) -> dict[str, Any]:
        args = ["-m", "mecsa", "starttls", f"{MX1}:{servers.port}", "--json", "--ca-file", str(ca_file)]
        args += [
            "--resolver",
            str(client.nameservers[0]),
            "--smtp-timeout",
            "0.5",
            "--no-tls-versions",
            *extra,
        ]
        proc = await asyncio.create_subprocess_exec(
            sys.executable, *args, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
        )
        out, err = await asyncio.wait_for(proc.communicate(), 30)
        assert proc.returncode == 0, err.decode()
        result: dict[str, Any] = json.loads(out)
        return result

    skipped = await starttls("--no-revocation")
    assert responder.requests == []
    assert "x509.revocation_not_checked" in json.dumps(skipped)
    asked = await starttls()
    assert len(responder.requests) == 1
    assert asked["protocols"]["x509"]["status"] == "fail"


async def test_two_certificates_naming_one_crl_fetch_it_once(
    serve_zones: ServeZones, servers: LoopbackServers, http: tuple[HttpServer, HttpServer], tmp_path: Path
) -> None:
    _, crls = http
    authority = RevokingCa()
    url = crls.url("crl.example.test", "/i.crl")
    first, second = authority.leaf(MX1, crl_urls=(url,)), authority.leaf(MX1, crl_urls=(url,))
    crls.routes["/i.crl"] = static(authority.crl((second,)))
    pem = serialization.Encoding.PEM
    issuing = authority.issuing.cert.public_bytes(pem)
    await servers.add_smtpd("127.0.0.2", server_context(first.issued, issuing, tmp_path))
    await servers.add_smtpd("127.0.0.3", server_context(second.issued, issuing, tmp_path))
    ca_file = tmp_path / "revocation-root.pem"
    ca_file.write_bytes(authority.root.cert.public_bytes(pem))
    zone = ZONE.replace("mx1 IN A 127.0.0.2\n", "mx1 IN A 127.0.0.2\nmx1 IN A 127.0.0.3\n")
    client = await serve_zones({"example.test.": zone}, secure=["example.test."])
    options = AssessOptions(
        smtp_port=servers.port,
        smtp_timeout=0.5,
        ca_file=str(ca_file),
        only=frozenset({"x509"}),
        tls_versions=False,
    )
    a = await assess("example.test", client, options)
    assert len(crls.requests) == 1
    assert sorted(s.value for s in _ids(a, "x509")["x509.revoked"] + _ids(a, "x509")["x509.not_revoked"]) == [
        "fail",
        "pass",
    ]
    assert a.verdicts["x509"].status is VerdictStatus.FAIL  # one address of the host is revoked
