"""`mecsa starttls HOST[:PORT]`: target parsing, and one real run in a subprocess against loopback."""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path

import click
import pytest

from mecsa.cli.starttls import probe_server, render_results, split_target
from mecsa.observe import AssessOptions
from tests.conftest import ServeZones
from tests.unit.transport.pki import Pki
from tests.unit.transport.servers import LoopbackServers, server_context

HEAD = "@ 300 IN SOA ns hostmaster 1 300 300 300 300\n@ IN NS ns\nns IN A 127.0.0.53\n"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("mx.example.test", ("mx.example.test", 25)),
        ("MX.Example.Test:2525", ("mx.example.test", 2525)),
        ("127.0.0.2:587", ("127.0.0.2", 587)),
        ("::1", ("::1", 25)),
        ("[::1]:2525", ("::1", 2525)),
    ],
)
def test_split_target(text: str, expected: tuple[str, int]) -> None:
    assert split_target(text) == expected


@pytest.mark.parametrize("text", ["mx.example.test:0", "mx.example.test:x", "[::1]:99999"])
def test_split_target_rejects_bad_ports(text: str) -> None:
    with pytest.raises(click.exceptions.Exit):
        split_target(text)


async def test_probe_server_by_ip_skips_dane(
    serve_zones: ServeZones, servers: LoopbackServers, pki: Pki, ca_file: str, tmp_path: Path
) -> None:
    await servers.add_smtpd(
        "127.0.0.2", server_context(pki.leaf("mx.example.test"), pki.intermediate.pem, tmp_path)
    )
    client = await serve_zones({"example.test.": HEAD})
    options = AssessOptions(smtp_port=servers.port, smtp_timeout=0.5, ca_file=ca_file, tls_versions=False)
    results = await probe_server("127.0.0.2", client, options)
    assert [r.check for r in results] == ["starttls", "x509"]
    text = render_results("127.0.0.2", servers.port, results)
    assert "TLS: TLSv1.3" in text
    assert "certificate: CN=mx.example.test issued by CN=Test Issuing CA" in text
    assert "x509: fail" in text  # an IP literal is not the certificate's name


async def test_probe_server_by_name_shows_every_address_from_the_typed_facts(
    serve_zones: ServeZones, servers: LoopbackServers, pki: Pki, ca_file: str, tmp_path: Path
) -> None:
    leaf = pki.leaf("mx.example.test")
    await servers.add_smtpd("127.0.0.2", server_context(leaf, pki.intermediate.pem, tmp_path))
    await servers.add_smtpd("127.0.0.3", None)
    tlsa = f"_{servers.port}._tcp.mx IN TLSA 3 1 1 {leaf.spki_sha256()}\n"
    body = HEAD + "mx IN A 127.0.0.2\nmx IN A 127.0.0.3\nmx IN A 127.0.0.4\n" + tlsa
    client = await serve_zones({"example.test.": body}, secure=["example.test."])
    options = AssessOptions(smtp_port=servers.port, smtp_timeout=0.5, ca_file=ca_file)
    results = await probe_server("mx.example.test", client, options)
    assert [r.check for r in results] == ["starttls", "x509", "dane"]
    lines = render_results("mx.example.test", servers.port, results).splitlines()
    tls_address = lines.index("  127.0.0.2: starttls pass")
    assert lines[tls_address + 1] == "    banner: 220 mx.test Python SMTP 1.4.6"
    assert lines[tls_address + 2].startswith("    EHLO: SIZE 33554432, 8BITMIME, STARTTLS")
    assert lines[tls_address + 3].startswith("    TLS: TLSv1.3 ")
    assert lines[tls_address + 3].endswith(" (2 certificate(s) presented)")
    assert lines[tls_address + 4].startswith("    EHLO after TLS: SIZE 33554432")
    assert lines[tls_address + 5] == (
        "    versions: TLSv1 refused, TLSv1.1 refused, TLSv1.2 accepted, TLSv1.3 accepted"
    )
    assert lines[tls_address + 6].startswith("    weak suites: NULL refused, ")
    assert lines[tls_address + 7] == "    certificate: CN=mx.example.test issued by CN=Test Issuing CA"
    expires = leaf.cert.not_valid_after_utc.isoformat()
    assert (
        lines[tls_address + 8]
        == f"      names: mx.example.test; expires {expires} (88 days); key EC secp256r1 256"
    )
    assert lines[tls_address + 9] == "    DANE: matched"
    assert lines[tls_address + 10] == f"      3 1 1 {leaf.spki_sha256()}: the leaf matches"
    plain = lines.index("  127.0.0.3: starttls fail")
    assert lines[plain + 3] == "    DANE: no_tls"
    assert "  127.0.0.4: starttls error" in lines
    assert any(line.startswith("    stopped at connect: could not connect") for line in lines)
    assert "  dane: fail: 0 of 1 reachable MX host(s) match their DNSSEC-secure TLSA records" in "\n".join(
        lines
    )


async def _hostile(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    writer.write("220 mx\x1b[2J ESMTP \u202eevil\r\n".encode())
    while line := await reader.readline():
        if line.upper().startswith(b"EHLO"):
            writer.write(b"250-mx.example.test\r\n250 X-\x1b]0;pwned\x07\r\n")
        elif line.upper().startswith(b"QUIT"):
            writer.write(b"221 bye\r\n")
            await writer.drain()
            break
        await writer.drain()
    writer.close()


async def test_server_text_is_escaped_before_the_terminal(
    serve_zones: ServeZones, servers: LoopbackServers, ca_file: str
) -> None:
    await servers.add_raw("127.0.0.2", _hostile)
    client = await serve_zones({"example.test.": HEAD})
    options = AssessOptions(smtp_port=servers.port, smtp_timeout=0.5, ca_file=ca_file, tls_versions=False)
    text = render_results("127.0.0.2", servers.port, await probe_server("127.0.0.2", client, options))
    assert "\x1b" not in text and "\u202e" not in text and "\x07" not in text
    assert "    banner: 220 mx\\x1b[2J ESMTP \\u202eevil" in text.splitlines()
    assert "    EHLO: X-\\x1b]0;pwned\\x07" in text.splitlines()


async def test_cli_subprocess_prints_json(
    serve_zones: ServeZones, servers: LoopbackServers, pki: Pki, ca_file: str, tmp_path: Path
) -> None:
    leaf = pki.leaf("mx1.example.test")
    await servers.add_smtpd("127.0.0.2", server_context(leaf, pki.intermediate.pem, tmp_path))
    zone = HEAD + f"mx1 IN A 127.0.0.2\n_{servers.port}._tcp.mx1 IN TLSA 3 1 1 {leaf.spki_sha256()}\n"
    client = await serve_zones({"example.test.": zone}, secure=["example.test."])
    args = [
        "-m",
        "mecsa",
        "starttls",
        f"mx1.example.test:{servers.port}",
        "--json",
        "--ca-file",
        ca_file,
        "--resolver",
        str(client.nameservers[0]),
        "--smtp-timeout",
        "0.5",
        "--no-tls-versions",
    ]
    proc = await asyncio.create_subprocess_exec(
        sys.executable, *args, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    out, err = await asyncio.wait_for(proc.communicate(), 30)
    assert proc.returncode == 0, err.decode()
    data = json.loads(out)
    assert {p: v["status"] for p, v in data["protocols"].items()} == {
        "starttls": "pass",
        "x509": "pass",
        "dane": "pass",
    }
    address = data["checks"]["starttls"]["hosts"][0]["addresses"][0]
    assert address["smtp"]["tls"]["version"] == "TLSv1.3"
