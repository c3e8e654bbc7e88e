"""starttls, x509 and dane end to end: zones on the loopback DNS server, SMTP servers on 127.0.0.x."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import Any

from mecsa.assess import assess
from mecsa.dns.zoneserver import Fault
from mecsa.model import Assessment, Status, VerdictStatus
from mecsa.observe import AssessOptions
from tests.conftest import ServeZones
from tests.unit.transport.pki import Pki, self_signed
from tests.unit.transport.servers import (
    LoopbackServers,
    ResetsTls,
    broken_tls,
    garbage,
    long_line,
    server_context,
    silent,
)

HEAD = "@ 300 IN SOA ns hostmaster 1 300 300 300 300\n@ IN NS ns\nns IN A 127.0.0.53\n"
ONLY = frozenset({"starttls", "x509", "dane"})
MX1 = "mx1.example.test"


async def _assess(
    serve_zones: ServeZones,
    body: str,
    servers: LoopbackServers,
    ca_file: str,
    *,
    secure: bool = True,
    smtp_timeout: float = 0.5,
    tls_versions: bool = True,
    faults: dict[str, Fault] | None = None,
) -> Assessment:
    client = await serve_zones(
        {"example.test.": HEAD + body}, secure=["example.test."] if secure else [], faults=faults
    )
    options = AssessOptions(
        smtp_port=servers.port,
        smtp_timeout=smtp_timeout,
        ca_file=ca_file,
        only=ONLY,
        tls_versions=tls_versions,
    )
    return await assess("example.test", client, options)


def _ids(a: Assessment, protocol: str) -> dict[str, list[Status]]:
    out: dict[str, list[Status]] = {}
    for f in a.findings:
        if f.protocol == protocol:
            out.setdefault(f.id, []).append(f.status)
    return out


def _details(a: Assessment, check: str) -> dict[str, Any]:
    return dict(next(r for r in a.results if r.check == check).details)


def _tlsa(port: int, name: str, record: str) -> str:
    return f"_{port}._tcp.{name}. IN TLSA {record}\n"


async def test_good_host_passes_starttls_x509_and_dane(
    serve_zones: ServeZones, servers: LoopbackServers, pki: Pki, ca_file: str, tmp_path: Path
) -> None:
    leaf = pki.leaf(MX1)
    await servers.add_smtpd("127.0.0.2", server_context(leaf, pki.intermediate.pem, tmp_path))
    body = "@ IN MX 10 mx1\nmx1 IN A 127.0.0.2\n" + _tlsa(servers.port, MX1, f"3 1 1 {leaf.spki_sha256()}")
    a = await _assess(serve_zones, body, servers, ca_file)
    v = a.verdicts
    assert (v["starttls"].status, v["x509"].status, v["dane"].status) == (VerdictStatus.PASS,) * 3
    assert v["starttls"].share == v["x509"].share == v["dane"].share == 1.0
    assert _ids(a, "starttls")["starttls.ok"] == [Status.PASS]
    assert _ids(a, "x509").keys() >= {"x509.chain_valid", "x509.name_match", "x509.dates_valid"}
    assert _ids(a, "dane")["dane.match"] == [Status.PASS]
    assert _ids(a, "dane")["dane.single_record"] == [Status.WARN]  # no next key published
    address = _details(a, "starttls")["hosts"][0]["addresses"][0]
    assert address["smtp"]["tls"]["version"] == "TLSv1.3"
    assert address["smtp"]["banner"]["code"] == 220
    assert "STARTTLS" in address["smtp"]["extensions"]
    versions = {t["label"]: t["outcome"] for t in address["tls_sweep"]["versions"]}
    assert versions == {
        "TLSv1": "refused",
        "TLSv1.1": "refused",
        "TLSv1.2": "accepted",
        "TLSv1.3": "accepted",
    }
    cert = _details(a, "x509")["hosts"][0]["addresses"][0]["certificate"]
    assert cert["subject"] == f"CN={MX1}" and cert["issuer"] == "CN=Test Issuing CA"
    assert cert["key"] == {"type": "EC secp256r1", "bits": 256}
    assert 88 <= _details(a, "x509")["hosts"][0]["addresses"][0]["days_left"] <= 89
    json.dumps([r.details for r in a.results])  # details are JSON-able
    # One shared main session, then the sweep's offers (issue 20): TLSv1 + TLSv1.1 in one ClientHello,
    # the weak classes this OpenSSL can offer in another, and TLSv1.2; the main session negotiated
    # TLSv1.3, which proves it accepted, so that trial is not run again.
    assert servers.connections["127.0.0.2"] == 1 + 3
    tls13 = next(t for t in address["tls_sweep"]["versions"] if t["label"] == "TLSv1.3")
    assert tls13["reason"] == "negotiated by the main session" and tls13["version"] == "TLSv1.3"


async def test_checks_share_one_session_per_address(
    serve_zones: ServeZones, servers: LoopbackServers, pki: Pki, ca_file: str, tmp_path: Path
) -> None:
    await servers.add_smtpd("127.0.0.2", server_context(pki.leaf(MX1), pki.intermediate.pem, tmp_path))
    await servers.add_smtpd("127.0.0.3", None)
    body = "@ IN MX 10 mx1\nmx1 IN A 127.0.0.2\nmx1 IN A 127.0.0.3\n"
    a = await _assess(serve_zones, body, servers, ca_file, tls_versions=False)
    assert servers.connections == {"127.0.0.2": 1, "127.0.0.3": 1}
    # One address without STARTTLS fails the whole host: a host passes only when all its addresses do.
    assert a.verdicts["starttls"].status is VerdictStatus.FAIL and a.verdicts["starttls"].share == 0.0
    outcomes = {x["address"]: x["outcome"] for x in _details(a, "starttls")["hosts"][0]["addresses"]}
    assert outcomes == {"127.0.0.2": "pass", "127.0.0.3": "fail"}


async def test_only_pkix_usages_are_unusable_for_smtp(
    serve_zones: ServeZones, servers: LoopbackServers, pki: Pki, ca_file: str, tmp_path: Path
) -> None:
    leaf = pki.leaf(MX1)
    await servers.add_smtpd("127.0.0.2", server_context(leaf, pki.intermediate.pem, tmp_path))
    records = _tlsa(servers.port, MX1, f"1 1 1 {leaf.spki_sha256()}")
    records += _tlsa(servers.port, MX1, f"0 1 1 {pki.intermediate.spki_sha256()}")
    a = await _assess(
        serve_zones, "@ IN MX 10 mx1\nmx1 IN A 127.0.0.2\n" + records, servers, ca_file, tls_versions=False
    )
    assert _ids(a, "dane") == {"dane.unusable": [Status.FAIL]}
    assert _details(a, "dane")["hosts"][0]["addresses"][0]["dane"] == "unusable"


async def test_no_starttls_fails_starttls_and_x509(
    serve_zones: ServeZones, servers: LoopbackServers, ca_file: str
) -> None:
    await servers.add_smtpd("127.0.0.2", None)
    a = await _assess(serve_zones, "@ IN MX 10 mx1\nmx1 IN A 127.0.0.2\n", servers, ca_file)
    assert a.verdicts["starttls"].status is VerdictStatus.FAIL and a.verdicts["starttls"].share == 0.0
    assert _ids(a, "starttls") == {"starttls.not_offered": [Status.FAIL]}
    assert _ids(a, "x509") == {"x509.no_tls": [Status.FAIL]}
    assert _ids(a, "dane") == {"dane.no_tlsa": [Status.FAIL]}


async def test_starttls_offered_but_handshake_fails(
    serve_zones: ServeZones, servers: LoopbackServers, ca_file: str
) -> None:
    await servers.add_raw("127.0.0.2", broken_tls)
    a = await _assess(serve_zones, "@ IN MX 10 mx1\nmx1 IN A 127.0.0.2\n", servers, ca_file)
    assert _ids(a, "starttls") == {"starttls.handshake_failed": [Status.FAIL]}
    assert a.verdicts["starttls"].status is VerdictStatus.FAIL


async def test_handshake_reset_is_an_error_with_a_reason_for_starttls_x509_and_dane(
    serve_zones: ServeZones, servers: LoopbackServers, ca_file: str
) -> None:
    server = ResetsTls()
    await servers.add_raw("127.0.0.2", server)
    body = "@ IN MX 10 mx1\nmx1 IN A 127.0.0.2\n" + _tlsa(servers.port, MX1, "3 1 1 " + "00" * 32)
    a = await _assess(serve_zones, body, servers, ca_file, tls_versions=False)
    assert _ids(a, "starttls") == {"starttls.handshake_error": [Status.ERROR]}
    (finding,) = [f for f in a.findings if f.id == "starttls.handshake_error"]
    assert "hung up during the TLS handshake" in finding.message
    for protocol in ("starttls", "x509", "dane"):
        assert a.verdicts[protocol].status is VerdictStatus.ERROR, protocol
    assert server.connections == 2


async def test_tls10_only_does_not_count_for_mecsa(
    serve_zones: ServeZones, servers: LoopbackServers, pki: Pki, ca_file: str, tmp_path: Path
) -> None:
    import ssl

    context = server_context(pki.leaf(MX1), pki.intermediate.pem, tmp_path, version=ssl.TLSVersion.TLSv1)
    await servers.add_smtpd("127.0.0.2", context)
    a = await _assess(serve_zones, "@ IN MX 10 mx1\nmx1 IN A 127.0.0.2\n", servers, ca_file)
    ids = _ids(a, "starttls")
    assert ids["starttls.old_version"] == [Status.FAIL]
    assert ids["tls.legacy_versions"] == [Status.WARN]
    assert ids["tls.weak_ciphers"] == [Status.WARN]  # anonymous suites, at SECLEVEL=0
    assert a.verdicts["starttls"].status is VerdictStatus.FAIL
    assert a.verdicts["x509"].status is VerdictStatus.PASS  # the certificate itself is fine


async def test_expired_certificate(
    serve_zones: ServeZones, servers: LoopbackServers, pki: Pki, ca_file: str, tmp_path: Path
) -> None:
    await servers.add_smtpd(
        "127.0.0.2", server_context(pki.leaf(MX1, expired=True), pki.intermediate.pem, tmp_path)
    )
    a = await _assess(
        serve_zones, "@ IN MX 10 mx1\nmx1 IN A 127.0.0.2\n", servers, ca_file, tls_versions=False
    )
    ids = _ids(a, "x509")
    assert ids["x509.expired"] == [Status.FAIL]
    assert ids["x509.chain_valid"] == [Status.PASS]  # judged apart from the dates
    assert ids["x509.name_match"] == [Status.PASS]
    assert a.verdicts["x509"].status is VerdictStatus.FAIL
    assert a.verdicts["starttls"].status is VerdictStatus.PASS


async def test_wrong_name(
    serve_zones: ServeZones, servers: LoopbackServers, pki: Pki, ca_file: str, tmp_path: Path
) -> None:
    leaf = pki.leaf("other.example.test", "mx1.example.test.evil")
    await servers.add_smtpd("127.0.0.2", server_context(leaf, pki.intermediate.pem, tmp_path))
    a = await _assess(
        serve_zones, "@ IN MX 10 mx1\nmx1 IN A 127.0.0.2\n", servers, ca_file, tls_versions=False
    )
    mismatch = next(f for f in a.findings if f.id == "x509.name_mismatch")
    assert mismatch.status is Status.FAIL
    assert mismatch.evidence == ("other.example.test", "mx1.example.test.evil")
    assert _ids(a, "x509")["x509.chain_valid"] == [Status.PASS]
    assert a.verdicts["x509"].status is VerdictStatus.FAIL


async def test_self_signed_fails_x509_but_dane_ee_matches(
    serve_zones: ServeZones, servers: LoopbackServers, ca_file: str, tmp_path: Path
) -> None:
    leaf = self_signed(MX1)
    await servers.add_smtpd("127.0.0.2", server_context(leaf, b"", tmp_path))
    body = "@ IN MX 10 mx1\nmx1 IN A 127.0.0.2\n" + _tlsa(servers.port, MX1, f"3 1 1 {leaf.spki_sha256()}")
    a = await _assess(serve_zones, body, servers, ca_file, tls_versions=False)
    assert _ids(a, "x509")["x509.self_signed"] == [Status.FAIL]
    assert a.verdicts["x509"].status is VerdictStatus.FAIL
    assert a.verdicts["dane"].status is VerdictStatus.PASS  # DANE-EE needs no CA (RFC 7672 §3.1.1)


async def test_tlsa_mismatch(
    serve_zones: ServeZones, servers: LoopbackServers, pki: Pki, ca_file: str, tmp_path: Path
) -> None:
    await servers.add_smtpd("127.0.0.2", server_context(pki.leaf(MX1), pki.intermediate.pem, tmp_path))
    other = pki.leaf(MX1)  # same name, another key: e.g. a renewal with a new key
    body = "@ IN MX 10 mx1\nmx1 IN A 127.0.0.2\n" + _tlsa(servers.port, MX1, f"3 1 1 {other.spki_sha256()}")
    a = await _assess(serve_zones, body, servers, ca_file, tls_versions=False)
    assert _ids(a, "dane")["dane.no_match"] == [Status.FAIL]
    assert a.verdicts["dane"].status is VerdictStatus.FAIL
    address = _details(a, "dane")["hosts"][0]["addresses"][0]
    assert address["dane"] == "no_match"
    assert address["records"][0]["note"] == "the leaf does not match"


async def test_tlsa_2_1_1_matches_through_the_issuer(
    serve_zones: ServeZones, servers: LoopbackServers, pki: Pki, ca_file: str, tmp_path: Path
) -> None:
    await servers.add_smtpd("127.0.0.2", server_context(pki.leaf(MX1), pki.intermediate.pem, tmp_path))
    records = _tlsa(servers.port, MX1, f"2 1 1 {pki.intermediate.spki_sha256()}")
    records += _tlsa(servers.port, MX1, f"2 1 1 {pki.root.spki_sha256()}")  # root is not presented
    a = await _assess(
        serve_zones, "@ IN MX 10 mx1\nmx1 IN A 127.0.0.2\n" + records, servers, ca_file, tls_versions=False
    )
    assert a.verdicts["dane"].status is VerdictStatus.PASS
    pinned = next(f for f in a.findings if f.id == "dane.ta_pinned")
    assert "CN=Test Issuing CA" in pinned.message
    assert "dane.single_record" not in _ids(a, "dane")  # two usable records
    notes = {r["note"] for r in _details(a, "dane")["hosts"][0]["addresses"][0]["records"]}
    assert notes == {"matches trust anchor CN=Test Issuing CA", "no certificate above the leaf matches"}


async def test_tlsa_in_insecure_zone_is_not_usable(
    serve_zones: ServeZones, servers: LoopbackServers, pki: Pki, ca_file: str, tmp_path: Path
) -> None:
    leaf = pki.leaf(MX1)
    await servers.add_smtpd("127.0.0.2", server_context(leaf, pki.intermediate.pem, tmp_path))
    body = "@ IN MX 10 mx1\nmx1 IN A 127.0.0.2\n" + _tlsa(servers.port, MX1, f"3 1 1 {leaf.spki_sha256()}")
    a = await _assess(serve_zones, body, servers, ca_file, secure=False, tls_versions=False)
    assert _ids(a, "dane") == {"dane.not_secure": [Status.FAIL]}
    assert _details(a, "dane")["hosts"][0]["addresses"][0]["dane"] == "not_secure"
    assert a.verdicts["dane"].status is VerdictStatus.FAIL


async def test_bogus_tlsa_fails_and_failed_lookup_is_an_error(
    serve_zones: ServeZones, servers: LoopbackServers, pki: Pki, ca_file: str, tmp_path: Path
) -> None:
    await servers.add_smtpd("127.0.0.2", server_context(pki.leaf(MX1), pki.intermediate.pem, tmp_path))
    body = "@ IN MX 10 mx1\nmx1 IN A 127.0.0.2\n" + _tlsa(servers.port, MX1, "3 1 1 " + "00" * 32)
    owner = f"_{servers.port}._tcp.{MX1}"
    bogus = await _assess(
        serve_zones, body, servers, ca_file, tls_versions=False, faults={owner: Fault.BOGUS}
    )
    assert _ids(bogus, "dane") == {"dane.tlsa_bogus": [Status.FAIL]}
    failed = await _assess(
        serve_zones, body, servers, ca_file, tls_versions=False, faults={owner: Fault.TIMEOUT}
    )
    assert _ids(failed, "dane") == {"dane.tlsa_lookup_failed": [Status.ERROR]}
    assert failed.verdicts["dane"].status is VerdictStatus.ERROR


async def test_cname_mx_uses_the_expanded_tlsa_base_domain(
    serve_zones: ServeZones, servers: LoopbackServers, pki: Pki, ca_file: str, tmp_path: Path
) -> None:
    leaf = pki.leaf("real.example.test")
    await servers.add_smtpd("127.0.0.2", server_context(leaf, pki.intermediate.pem, tmp_path))
    body = "@ IN MX 10 mx1\nmx1 IN CNAME real\nreal IN A 127.0.0.2\n"
    body += _tlsa(servers.port, "real.example.test", f"3 1 1 {leaf.spki_sha256()}")
    a = await _assess(serve_zones, body, servers, ca_file, tls_versions=False)
    host = _details(a, "dane")["hosts"][0]
    assert host["tlsa_base_domain"] == "real.example.test"
    assert a.verdicts["dane"].status is VerdictStatus.PASS


async def test_hostile_servers_are_errors_and_the_good_host_still_counts(
    serve_zones: ServeZones, servers: LoopbackServers, pki: Pki, ca_file: str, tmp_path: Path
) -> None:
    await servers.add_smtpd(
        "127.0.0.2", server_context(pki.leaf("good.example.test"), pki.intermediate.pem, tmp_path)
    )
    await servers.add_raw("127.0.0.3", silent)
    await servers.add_raw("127.0.0.4", garbage)
    await servers.add_raw("127.0.0.5", long_line)
    body = "@ IN MX 10 good\n@ IN MX 20 silent\n@ IN MX 30 garbage\n@ IN MX 40 long\n"
    body += "good IN A 127.0.0.2\nsilent IN A 127.0.0.3\ngarbage IN A 127.0.0.4\nlong IN A 127.0.0.5\n"
    started = time.monotonic()
    a = await _assess(serve_zones, body, servers, ca_file, smtp_timeout=0.3)
    elapsed = time.monotonic() - started
    assert elapsed < 2.0  # the silent host costs one banner timeout (0.6 s), not more
    unreachable = sorted(f.subject or "" for f in a.findings if f.id == "starttls.unreachable")
    assert unreachable == [
        "garbage.example.test 127.0.0.4",
        "long.example.test 127.0.0.5",
        "silent.example.test 127.0.0.3",
    ]
    assert {f.status for f in a.findings if f.id.endswith(".unreachable")} == {Status.ERROR}
    reasons = {f.subject: f.evidence for f in a.findings if f.id == "starttls.unreachable"}
    assert "failure=timeout" in reasons["silent.example.test 127.0.0.3"]
    assert "failure=protocol" in reasons["garbage.example.test 127.0.0.4"]
    assert "failure=line_too_long" in reasons["long.example.test 127.0.0.5"]
    for protocol in ("starttls", "x509"):
        assert a.verdicts[protocol].status is VerdictStatus.PASS, protocol
        assert a.verdicts[protocol].share == 1.0
    assert "3 host(s) could not be reached" in a.verdicts["starttls"].reason


async def test_nothing_reachable_is_an_error_never_a_fail(
    serve_zones: ServeZones, servers: LoopbackServers, ca_file: str
) -> None:
    await servers.add_raw("127.0.0.2", garbage)
    a = await _assess(serve_zones, "@ IN MX 10 mx1\nmx1 IN A 127.0.0.2\n", servers, ca_file, smtp_timeout=0.3)
    for protocol in ("starttls", "x509", "dane"):
        assert a.verdicts[protocol].status is VerdictStatus.ERROR, protocol
        assert a.verdicts[protocol].share is None


async def test_mecsa_eighty_percent_rule(
    serve_zones: ServeZones, servers: LoopbackServers, pki: Pki, ca_file: str, tmp_path: Path
) -> None:
    names = ["a", "b", "c", "d", "e"]
    for i, name in enumerate(names[:4]):
        leaf = pki.leaf(f"{name}.example.test")
        await servers.add_smtpd(f"127.0.0.{i + 2}", server_context(leaf, pki.intermediate.pem, tmp_path))
    await servers.add_smtpd("127.0.0.6", None)
    body = "".join(f"@ IN MX {i} {n}\n{n} IN A 127.0.0.{i + 2}\n" for i, n in enumerate(names))
    a = await _assess(serve_zones, body, servers, ca_file, tls_versions=False)
    assert a.verdicts["starttls"].status is VerdictStatus.PASS and a.verdicts["starttls"].share == 0.8
    # Four of five is the least that passes: drop one good host and 3/4 = 75% fails.
    body = "".join(f"@ IN MX {i} {n}\n{n} IN A 127.0.0.{i + 2}\n" for i, n in enumerate(names) if n != "a")
    a = await _assess(serve_zones, body, servers, ca_file, tls_versions=False)
    assert a.verdicts["starttls"].status is VerdictStatus.FAIL and a.verdicts["starttls"].share == 0.75


async def test_null_mx_and_failed_mx_lookup(
    serve_zones: ServeZones, servers: LoopbackServers, ca_file: str
) -> None:
    servers.port = 2525  # nothing listens: nothing may be contacted
    a = await _assess(serve_zones, "@ IN MX 0 .\n", servers, ca_file)
    assert {a.verdicts[p].status for p in ONLY} == {VerdictStatus.NOT_APPLICABLE}
    a = await _assess(
        serve_zones, "@ IN MX 10 mx1\n", servers, ca_file, faults={"example.test/MX": Fault.SERVFAIL}
    )
    assert {a.verdicts[p].status for p in ONLY} == {VerdictStatus.ERROR}


async def test_null_mx_beside_a_real_mx_still_tests_the_real_host(
    serve_zones: ServeZones, servers: LoopbackServers, pki: Pki, ca_file: str, tmp_path: Path
) -> None:
    leaf = pki.leaf(MX1)
    await servers.add_smtpd("127.0.0.2", server_context(leaf, pki.intermediate.pem, tmp_path))
    body = "@ IN MX 0 .\n@ IN MX 10 mx1\nmx1 IN A 127.0.0.2\n"
    a = await _assess(serve_zones, body, servers, ca_file, tls_versions=False)
    assert a.verdicts["starttls"].status is VerdictStatus.PASS
    assert a.verdicts["x509"].status is VerdictStatus.PASS
    assert servers.connections["127.0.0.2"] == 1
    assert [h["name"] for h in _details(a, "starttls")["hosts"]] == [MX1]


async def test_no_tls_versions_skips_the_sweep(
    serve_zones: ServeZones, servers: LoopbackServers, pki: Pki, ca_file: str, tmp_path: Path
) -> None:
    await servers.add_smtpd("127.0.0.2", server_context(pki.leaf(MX1), pki.intermediate.pem, tmp_path))
    a = await _assess(
        serve_zones, "@ IN MX 10 mx1\nmx1 IN A 127.0.0.2\n", servers, ca_file, tls_versions=False
    )
    assert not any(f.id.startswith("tls.versions") for f in a.findings)
    details = _details(a, "starttls")
    assert details["tls_versions_swept"] is False
    assert "tls_sweep" not in details["hosts"][0]["addresses"][0]


async def test_unloadable_ca_file_is_an_error_not_a_verdict(
    serve_zones: ServeZones, servers: LoopbackServers, pki: Pki, tmp_path: Path
) -> None:
    await servers.add_smtpd("127.0.0.2", server_context(pki.leaf(MX1), pki.intermediate.pem, tmp_path))
    missing = str(tmp_path / "missing.pem")
    a = await _assess(
        serve_zones, "@ IN MX 10 mx1\nmx1 IN A 127.0.0.2\n", servers, missing, tls_versions=False
    )
    assert _ids(a, "x509")["x509.anchors_error"] == [Status.ERROR]
    assert a.verdicts["x509"].status is VerdictStatus.ERROR


async def _refuses_starttls(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    writer.write(b"220 mx ESMTP\r\n")
    replies = {b"EHLO": b"250-mx\r\n250 STARTTLS\r\n", b"STARTTLS": b"454 4.7.0 TLS not available\r\n"}
    while line := await reader.readline():
        verb = line.split()[0].upper() if line.split() else b""
        writer.write(replies.get(verb, b"221 bye\r\n"))
        await writer.drain()
        if verb == b"QUIT":
            break
    writer.close()


async def test_starttls_listed_but_refused(
    serve_zones: ServeZones, servers: LoopbackServers, ca_file: str
) -> None:
    await servers.add_raw("127.0.0.2", _refuses_starttls)
    a = await _assess(serve_zones, "@ IN MX 10 mx1\nmx1 IN A 127.0.0.2\n", servers, ca_file)
    refused = next(f for f in a.findings if f.id == "starttls.refused")
    assert refused.status is Status.FAIL and refused.evidence == ("4.7.0 TLS not available",)
    assert a.verdicts["starttls"].status is VerdictStatus.FAIL


async def _silent_at_starttls(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    writer.write(b"220 mx ESMTP\r\n")
    while line := await reader.readline():
        if line.upper().startswith(b"STARTTLS"):
            await reader.read()  # never answer STARTTLS: the probe times out at that step
            break
        writer.write(b"250-mx\r\n250 STARTTLS\r\n")
        await writer.drain()
    writer.close()


async def test_timeout_at_starttls_is_an_error_for_x509_and_dane_not_a_fail(
    serve_zones: ServeZones, servers: LoopbackServers, ca_file: str
) -> None:
    await servers.add_raw("127.0.0.2", _silent_at_starttls)
    body = "@ IN MX 10 mx1\nmx1 IN A 127.0.0.2\n" + _tlsa(servers.port, MX1, "3 1 1 " + "00" * 32)
    a = await _assess(serve_zones, body, servers, ca_file, smtp_timeout=0.3, tls_versions=False)
    assert _ids(a, "starttls") == {"starttls.handshake_error": [Status.ERROR]}
    assert _ids(a, "x509") == {"x509.tls_error": [Status.ERROR]}
    dane = _ids(a, "dane")
    assert dane["dane.tls_error"] == [Status.ERROR] and "dane.no_tls" not in dane
    for protocol in ("starttls", "x509", "dane"):
        assert a.verdicts[protocol].status is VerdictStatus.ERROR, protocol


async def test_expired_certificate_fails_even_when_the_chain_cannot_be_checked(
    serve_zones: ServeZones, servers: LoopbackServers, pki: Pki, tmp_path: Path
) -> None:
    await servers.add_smtpd(
        "127.0.0.2", server_context(pki.leaf(MX1, expired=True), pki.intermediate.pem, tmp_path)
    )
    missing = str(tmp_path / "missing.pem")
    a = await _assess(
        serve_zones, "@ IN MX 10 mx1\nmx1 IN A 127.0.0.2\n", servers, missing, tls_versions=False
    )
    ids = _ids(a, "x509")
    assert ids["x509.anchors_error"] == [Status.ERROR] and ids["x509.expired"] == [Status.FAIL]
    assert _details(a, "x509")["hosts"][0]["outcome"] == "fail"
    assert a.verdicts["x509"].status is VerdictStatus.FAIL


async def test_host_with_a_failed_address_lookup_never_passes(
    serve_zones: ServeZones, servers: LoopbackServers, pki: Pki, ca_file: str, tmp_path: Path
) -> None:
    # The IPv4 address is good, but the AAAA lookup failed: an untested IPv6 address may be broken,
    # so the host is "could not find out", never a pass.
    leaf = pki.leaf(MX1)
    await servers.add_smtpd("127.0.0.2", server_context(leaf, pki.intermediate.pem, tmp_path))
    body = "@ IN MX 10 mx1\nmx1 IN A 127.0.0.2\n" + _tlsa(servers.port, MX1, f"3 1 1 {leaf.spki_sha256()}")
    a = await _assess(
        serve_zones, body, servers, ca_file, tls_versions=False, faults={f"{MX1}/AAAA": Fault.SERVFAIL}
    )
    for protocol in ("starttls", "x509", "dane"):
        assert a.verdicts[protocol].status is VerdictStatus.ERROR, (protocol, a.verdicts[protocol])
        assert _ids(a, protocol)[f"{protocol}.host_partly_unresolved"] == [Status.ERROR]


async def test_host_with_a_failed_address_lookup_still_fails_on_proof(
    serve_zones: ServeZones, servers: LoopbackServers, pki: Pki, ca_file: str, tmp_path: Path
) -> None:
    await servers.add_smtpd("127.0.0.2", None)  # no STARTTLS at all on the address that answered
    a = await _assess(
        serve_zones,
        "@ IN MX 10 mx1\nmx1 IN A 127.0.0.2\n",
        servers,
        ca_file,
        tls_versions=False,
        faults={f"{MX1}/AAAA": Fault.SERVFAIL},
    )
    assert a.verdicts["starttls"].status is VerdictStatus.FAIL


async def test_dnssec_judges_the_same_tlsa_names_as_dane(
    serve_zones: ServeZones, servers: LoopbackServers, pki: Pki, ca_file: str, tmp_path: Path
) -> None:
    leaf = pki.leaf(MX1)
    await servers.add_smtpd("127.0.0.2", server_context(leaf, pki.intermediate.pem, tmp_path))
    body = "@ IN MX 10 mx1\nmx1 IN A 127.0.0.2\n" + _tlsa(servers.port, MX1, f"3 1 1 {leaf.spki_sha256()}")
    client = await serve_zones({"example.test.": HEAD + body}, secure=["example.test."])
    options = AssessOptions(smtp_port=servers.port, ca_file=ca_file, only=frozenset({"dnssec"}))
    a = await assess("example.test", client, options)
    subjects = _details(a, "dnssec")["subjects"]
    tlsa = [s for s in subjects if "TLSA" in json.dumps(s)]
    assert tlsa and all(f"_{servers.port}._tcp.{MX1}" in json.dumps(s) for s in tlsa), tlsa
    assert servers.connections == {}  # dnssec alone opens no SMTP session


async def test_dane_asks_tlsa_while_the_session_runs(
    serve_zones: ServeZones, servers: LoopbackServers, ca_file: str, monkeypatch: Any
) -> None:
    events: list[str] = []

    async def slow_greeting(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await asyncio.sleep(0.3)  # the banner comes late: a TLSA lookup after the session would follow it
        events.append("banner")
        writer.write(b"220 mx ESMTP\r\n")
        while line := await reader.readline():
            if line.upper().startswith(b"QUIT"):
                break
            writer.write(b"250-mx\r\n250 SIZE 1000\r\n")
            await writer.drain()
        writer.close()

    await servers.add_raw("127.0.0.2", slow_greeting)
    body = "@ IN MX 10 mx1\nmx1 IN A 127.0.0.2\n" + _tlsa(servers.port, MX1, "3 1 1 " + "00" * 32)
    client = await serve_zones({"example.test.": HEAD + body}, secure=["example.test."])
    ask = client.ask

    async def recording(name: Any, rdtype: Any, *, cd: bool = False) -> Any:
        events.append(f"{name.to_text(omit_final_dot=True)}/{rdtype.name}")
        return await ask(name, rdtype, cd=cd)

    monkeypatch.setattr(client, "ask", recording)
    options = AssessOptions(smtp_port=servers.port, ca_file=ca_file, only=frozenset({"dane"}))
    a = await assess("example.test", client, options)
    tlsa = f"_{servers.port}._tcp.{MX1}/TLSA"
    assert tlsa in events and events.index(tlsa) < events.index("banner")
    # The early answer still belongs to its host: published records, but no TLS on offer.
    assert _ids(a, "dane")["dane.no_tls"] == [Status.FAIL]
    assert _details(a, "dane")["hosts"][0]["tlsa_owner"] == f"_{servers.port}._tcp.{MX1}"
