"""The mta-sts check end to end: loopback DNS (serve_zones) and a loopback HTTPS policy host."""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from mecsa.assess import assess
from mecsa.checks import mta_sts
from mecsa.dns.resolver import DnsClient, Resolver
from mecsa.dns.zoneserver import Fault
from mecsa.model import CheckResult, ProtocolVerdict, Status, VerdictStatus
from mecsa.observe import AssessOptions, Context
from mecsa.observe import mta_sts as observe_mta_sts
from mecsa.probes import https, https_client
from mecsa.probes.https import Attempt
from mecsa.probes.https_helper import HelperProcess
from mecsa.probes.https_remote import RemoteAttempt
from tests.conftest import ServeZones
from tests.unit.mta_sts.pki import make_ca, make_leaf
from tests.unit.mta_sts.policy_server import PolicyServer, Reply

DOMAIN = "example.test"
POLICY_HOST = f"mta-sts.{DOMAIN}"
POLICY_IP = "127.0.0.2"
HEAD = "@ 300 IN SOA ns hostmaster 1 300 300 300 300\n@ IN NS ns\nns IN A 127.0.0.53\n"
MX = "@ IN MX 10 mx1\n@ IN MX 20 mx2.backup\nmx1 IN A 127.0.0.10\nmx2.backup IN A 127.0.0.11\n"
TXT = '_mta-sts IN TXT "v=STSv1; id=20240501T120000Z;"\n'
POLICY_A = f"mta-sts IN A {POLICY_IP}\n"
GOOD = (
    b"version: STSv1\r\nmode: enforce\r\nmx: mx1.example.test\r\nmx: *.backup.example.test\r\n"
    b"max_age: 604800\r\n"
)


@dataclass(frozen=True)
class Pki:
    ca_file: Path
    good: tuple[Path, Path]
    wrong_name: tuple[Path, Path]


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    directory = tmp_path_factory.mktemp("mtasts-pki")
    ca = make_ca()
    ca_file = directory / "ca.pem"
    ca_file.write_bytes(ca.cert_pem)
    return Pki(
        ca_file,
        make_leaf(ca, POLICY_HOST).write(directory, "good"),
        make_leaf(ca, f"www.{DOMAIN}").write(directory, "wrong"),
    )


@pytest.fixture(autouse=True)
def fast_timeouts(monkeypatch: pytest.MonkeyPatch) -> None:
    """Short HTTPS timeouts so that the silent-server case costs well under a second."""
    monkeypatch.setattr(https, "CONNECT_TIMEOUT_S", 0.5)
    monkeypatch.setattr(https, "READ_TIMEOUT_S", 0.4)
    monkeypatch.setattr(https, "ATTEMPT_TIMEOUT_S", 1.5)


StartServer = Callable[..., Awaitable[PolicyServer]]


@pytest.fixture
async def policy_server(pki: Pki) -> AsyncIterator[StartServer]:
    servers: list[PolicyServer] = []

    async def start(reply: Reply, *, wrong_name: bool = False) -> PolicyServer:
        cert, key = pki.wrong_name if wrong_name else pki.good
        server = await PolicyServer(cert, key, reply, POLICY_IP).start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        await server.stop()


# `_run` runs each scenario twice: its requests made here, then by the CLI's helper process.
RUNS = 2


@dataclass(frozen=True)
class Outcome:
    result: CheckResult
    verdict: ProtocolVerdict
    ids: dict[str, Status]


async def _run(
    serve_zones: ServeZones,
    pki: Pki,
    port: int,
    *,
    zone: str = MX + TXT + POLICY_A,
    faults: dict[str, Fault] | None = None,
    trust_test_ca: bool = True,
) -> Outcome:
    """The check on the scenario, with its requests made here; then again, made by the cold CLI's
    helper process (`mecsa.probes.https_remote`), which must give the same result."""
    ca_file = str(pki.ca_file) if trust_test_ca else None
    options = AssessOptions(ca_file=ca_file, https_port=port)
    here = await _check(await serve_zones({f"{DOMAIN}.": HEAD + zone}, faults=faults), options)
    helper = HelperProcess.spawn(ca_file)
    assert helper is not None
    try:
        remote = RemoteAttempt(helper, _no_fallback)
        there = await _check(await serve_zones({f"{DOMAIN}.": HEAD + zone}, faults=faults), options, remote)
        assert not remote.gone, "the helper was given up: the second run was made here"
    finally:
        helper.close()
        await _ended(helper)
    assert _timeless(_document(there)) == _timeless(_document(here))
    (verdict,) = here.verdicts
    return Outcome(here, verdict, {f.id: f.status for f in here.findings})


async def _check(
    client: DnsClient, options: AssessOptions, https_attempt: Attempt | None = None
) -> CheckResult:
    ctx = Context(DOMAIN, Resolver(client), options, https_attempt=https_attempt)
    return mta_sts.evaluate(await mta_sts.observe(ctx))


def _no_fallback() -> Attempt:
    raise AssertionError("the helper was given up: the request would be made here")


async def _ended(helper: HelperProcess) -> None:
    for _ in range(100):
        if helper.reap():
            return
        await asyncio.sleep(0.05)
    helper.kill()
    raise AssertionError("the helper did not exit within 5 s of its socket's closing")


def _document(result: CheckResult) -> object:
    """What the JSON document carries of a result: its findings, verdicts and details."""
    return {
        "findings": [f.to_json() for f in result.findings],
        "verdicts": [v.to_json() for v in result.verdicts],
        "details": dict(result.details),
    }


def _timeless(data: object) -> object:
    """`data` without what differs from run to run: timings (`elapsed_s`), and the order of lists
    of strings (a DNS server may give an RRset's records in any order, and the document keeps
    the order they came in)."""
    if isinstance(data, dict):
        return {k: _timeless(v) for k, v in data.items() if k != "elapsed_s"}
    if isinstance(data, list):
        if all(isinstance(v, str) for v in data):
            return sorted(data)
        return [_timeless(v) for v in data]
    return data


async def test_good_enforce_policy_covering_every_mx_passes(
    serve_zones: ServeZones, pki: Pki, policy_server: StartServer
) -> None:
    server = await policy_server(Reply(body=GOOD))
    out = await _run(serve_zones, pki, server.port)
    assert out.verdict.status is VerdictStatus.PASS
    assert out.ids["mta_sts.enforced"] is Status.PASS
    assert out.verdict.details["mode"] == "enforce"
    assert out.verdict.details["mecsa_st_pass"] is True
    assert out.verdict.details["txt_id"] == "20240501T120000Z"
    assert out.verdict.details["mx"] == [
        {"host": "mx1.example.test", "covered": True, "pattern": "mx1.example.test"},
        {"host": "mx2.backup.example.test", "covered": True, "pattern": "*.backup.example.test"},
    ]
    assert out.verdict.share == 1.0
    # The probe connected to the address from our DNS, with SNI and Host set to the policy host.
    assert server.sni == [POLICY_HOST] * RUNS
    request, again = server.requests
    assert again == request  # the helper's request is the same, byte for byte
    assert request.startswith("GET /.well-known/mta-sts.txt HTTP/1.1\r\n")
    assert f"host: {POLICY_HOST}:{server.port}\r\n" in request.lower()
    fetch = out.result.details["fetch"]
    assert fetch["address"] == POLICY_IP and fetch["status"] == 200
    assert fetch["tls_version"] in ("TLSv1.2", "TLSv1.3")
    assert out.result.details["policy"]["mx"] == ["mx1.example.test", "*.backup.example.test"]


async def test_testing_mode_fails_our_rule_but_passes_mecsa_st(
    serve_zones: ServeZones, pki: Pki, policy_server: StartServer
) -> None:
    server = await policy_server(Reply(body=GOOD.replace(b"enforce", b"testing")))
    out = await _run(serve_zones, pki, server.port)
    assert out.verdict.status is VerdictStatus.FAIL
    assert out.ids["mta_sts.mode_testing"] is Status.FAIL
    assert "mta_sts.enforced" not in out.ids
    assert out.verdict.details["mode"] == "testing"
    assert out.verdict.details["mecsa_st_pass"] is True
    assert out.verdict.share == 0.0
    assert out.verdict.details["mecsa_st_share"] == 1.0


async def test_mode_none_fails_our_rule(
    serve_zones: ServeZones, pki: Pki, policy_server: StartServer
) -> None:
    server = await policy_server(Reply(body=GOOD.replace(b"enforce", b"none")))
    out = await _run(serve_zones, pki, server.port)
    assert out.verdict.status is VerdictStatus.FAIL
    assert out.ids["mta_sts.mode_none"] is Status.FAIL
    assert out.verdict.details["mode"] == "none"


async def test_mx_not_covered_fails_both_rules(
    serve_zones: ServeZones, pki: Pki, policy_server: StartServer
) -> None:
    # *.example.test covers one label only: not mx2.backup.example.test (RFC 8461 §4.1).
    policy = GOOD.replace(b"*.backup.example.test", b"*.example.test")
    server = await policy_server(Reply(body=policy))
    out = await _run(serve_zones, pki, server.port)
    assert out.verdict.status is VerdictStatus.FAIL
    (miss,) = [f for f in out.result.findings if f.id == "mta_sts.mx_not_covered"]
    assert miss.subject == "mx2.backup.example.test"
    assert out.verdict.details["mecsa_st_pass"] is False
    assert out.verdict.share == 0.5
    assert "senders will refuse it" in miss.message


@pytest.mark.parametrize(
    ("mode", "truth"),
    [
        (b"none", "mode none is no active policy (RFC 8461 §5): no sender refuses it"),
        (b"testing", "in testing mode senders report the failure and still deliver"),
    ],
)
async def test_mx_not_covered_never_claims_senders_refuse_without_enforce(
    serve_zones: ServeZones, pki: Pki, policy_server: StartServer, mode: bytes, truth: str
) -> None:
    policy = GOOD.replace(b"*.backup.example.test", b"*.example.test").replace(b"enforce", mode)
    server = await policy_server(Reply(body=policy))
    out = await _run(serve_zones, pki, server.port)
    assert out.verdict.status is VerdictStatus.FAIL
    (miss,) = [f for f in out.result.findings if f.id == "mta_sts.mx_not_covered"]
    assert "refuse it" not in miss.message.replace("no sender refuses it", "")
    assert truth in miss.message
    assert out.verdict.details["mecsa_st_pass"] is False


async def test_redirect_is_not_followed_and_fails(
    serve_zones: ServeZones, pki: Pki, policy_server: StartServer
) -> None:
    location = f"https://{POLICY_HOST}/elsewhere.txt"
    server = await policy_server(Reply(301, "Moved", headers=(("Location", location),)))
    out = await _run(serve_zones, pki, server.port)
    assert out.verdict.status is VerdictStatus.FAIL
    (finding,) = [f for f in out.result.findings if f.id == "mta_sts.redirect"]
    assert location in finding.evidence
    assert len(server.requests) == RUNS
    assert out.verdict.details["mecsa_st_pass"] is False


async def test_wrong_content_type_fails(
    serve_zones: ServeZones, pki: Pki, policy_server: StartServer
) -> None:
    server = await policy_server(Reply(content_type="text/html; charset=utf-8", body=GOOD))
    out = await _run(serve_zones, pki, server.port)
    assert out.verdict.status is VerdictStatus.FAIL
    assert out.ids["mta_sts.content_type"] is Status.FAIL
    assert out.verdict.details["mecsa_st_pass"] is False
    assert out.verdict.details["mode"] == "enforce"  # still parsed and reported


async def test_text_plain_with_charset_is_accepted(
    serve_zones: ServeZones, pki: Pki, policy_server: StartServer
) -> None:
    server = await policy_server(Reply(content_type="Text/Plain; charset=utf-8", body=GOOD))
    out = await _run(serve_zones, pki, server.port)
    assert out.verdict.status is VerdictStatus.PASS


async def test_silent_server_is_an_error_within_the_timeouts(
    serve_zones: ServeZones, pki: Pki, policy_server: StartServer
) -> None:
    server = await policy_server(Reply(hang=True))
    started = time.monotonic()
    out = await _run(serve_zones, pki, server.port)
    assert time.monotonic() - started < 3
    assert out.verdict.status is VerdictStatus.ERROR
    assert out.ids["mta_sts.fetch_error"] is Status.ERROR
    assert out.result.details["fetch"]["error"]["stage"] == "http"
    assert out.result.details["fetch"]["error"]["kind"] == "timeout"
    assert out.verdict.details["mecsa_st_pass"] is None


async def test_txt_servfail_is_an_error_not_a_fail(
    serve_zones: ServeZones, pki: Pki, policy_server: StartServer
) -> None:
    server = await policy_server(Reply(body=GOOD))
    out = await _run(serve_zones, pki, server.port, faults={f"_mta-sts.{DOMAIN}/TXT": Fault.SERVFAIL})
    assert out.verdict.status is VerdictStatus.ERROR
    assert out.ids["mta_sts.lookup_failed"] is Status.ERROR
    assert "mta_sts.missing" not in out.ids
    assert out.verdict.details["mecsa_st_pass"] is None


async def test_certificate_for_another_name_fails(
    serve_zones: ServeZones, pki: Pki, policy_server: StartServer
) -> None:
    server = await policy_server(Reply(body=GOOD), wrong_name=True)
    out = await _run(serve_zones, pki, server.port)
    assert out.verdict.status is VerdictStatus.FAIL
    assert out.ids["mta_sts.certificate"] is Status.FAIL
    assert server.sni == [POLICY_HOST] * RUNS
    assert server.requests == []  # nothing was sent over the unverified connection
    error = out.result.details["fetch"]["error"]
    assert (error["stage"], error["kind"]) == ("tls", "certificate")
    assert "mismatch" in error["detail"].lower()


async def test_untrusted_ca_fails_without_ca_file(
    serve_zones: ServeZones, pki: Pki, policy_server: StartServer
) -> None:
    server = await policy_server(Reply(body=GOOD))
    out = await _run(serve_zones, pki, server.port, trust_test_ca=False)
    assert out.verdict.status is VerdictStatus.FAIL
    assert out.ids["mta_sts.certificate"] is Status.FAIL


async def test_missing_txt_fails_without_fetching(
    serve_zones: ServeZones, pki: Pki, policy_server: StartServer
) -> None:
    server = await policy_server(Reply(body=GOOD))
    out = await _run(serve_zones, pki, server.port, zone=MX + POLICY_A + '_mta-sts IN TXT "v=spf1 -all"\n')
    assert out.verdict.status is VerdictStatus.FAIL
    assert out.ids["mta_sts.missing"] is Status.FAIL
    assert server.requests == [] and server.sni == []
    assert out.verdict.details["mecsa_st_pass"] is False


async def test_two_records_fail(serve_zones: ServeZones, pki: Pki, policy_server: StartServer) -> None:
    server = await policy_server(Reply(body=GOOD))
    second = '_mta-sts IN TXT "v=STSv1; id=2"\n'
    out = await _run(serve_zones, pki, server.port, zone=MX + TXT + second + POLICY_A)
    assert out.verdict.status is VerdictStatus.FAIL
    assert out.ids["mta_sts.multiple"] is Status.FAIL


async def test_bad_id_fails(serve_zones: ServeZones, pki: Pki, policy_server: StartServer) -> None:
    server = await policy_server(Reply(body=GOOD))
    bad = '_mta-sts IN TXT "v=STSv1; id=2024-05-01"\n'
    out = await _run(serve_zones, pki, server.port, zone=MX + bad + POLICY_A)
    assert out.verdict.status is VerdictStatus.FAIL
    assert out.ids["mta_sts.bad_id"] is Status.FAIL


async def test_refused_connection_fails(serve_zones: ServeZones, pki: Pki) -> None:
    with socket.socket() as probe:
        probe.bind((POLICY_IP, 0))
        closed_port = probe.getsockname()[1]
    out = await _run(serve_zones, pki, closed_port)
    assert out.verdict.status is VerdictStatus.FAIL
    assert out.ids["mta_sts.fetch_failed"] is Status.FAIL
    assert out.result.details["fetch"]["error"]["kind"] == "refused"


async def test_policy_host_without_address_fails(serve_zones: ServeZones, pki: Pki) -> None:
    out = await _run(serve_zones, pki, 443, zone=MX + TXT)
    assert out.verdict.status is VerdictStatus.FAIL
    assert out.ids["mta_sts.policy_host_missing"] is Status.FAIL


async def test_policy_host_lookup_failure_is_an_error(serve_zones: ServeZones, pki: Pki) -> None:
    out = await _run(serve_zones, pki, 443, faults={POLICY_HOST: Fault.SERVFAIL})
    assert out.verdict.status is VerdictStatus.ERROR
    assert out.ids["mta_sts.fetch_error"] is Status.ERROR


@pytest.mark.parametrize(
    ("status", "verdict", "finding"),
    [(404, VerdictStatus.FAIL, Status.FAIL), (503, VerdictStatus.ERROR, Status.ERROR)],
)
async def test_non_200_status(
    serve_zones: ServeZones,
    pki: Pki,
    policy_server: StartServer,
    status: int,
    verdict: VerdictStatus,
    finding: Status,
) -> None:
    server = await policy_server(Reply(status, "Nope", body=b"nope"))
    out = await _run(serve_zones, pki, server.port)
    assert out.verdict.status is verdict
    fid = "mta_sts.fetch_failed" if finding is Status.FAIL else "mta_sts.fetch_error"
    assert out.ids[fid] is finding


@pytest.mark.parametrize("declare_length", [True, False])
async def test_oversized_policy_is_cut_and_fails(
    serve_zones: ServeZones, pki: Pki, policy_server: StartServer, declare_length: bool
) -> None:
    body = GOOD + b"x-pad: " + b"a" * (70 * 1024) + b"\r\n"
    server = await policy_server(Reply(body=body, declare_length=declare_length))
    out = await _run(serve_zones, pki, server.port)
    assert out.verdict.status is VerdictStatus.FAIL
    assert out.ids["mta_sts.policy_too_large"] is Status.FAIL


async def test_malformed_policy_fails(serve_zones: ServeZones, pki: Pki, policy_server: StartServer) -> None:
    server = await policy_server(Reply(body=GOOD.replace(b"max_age: 604800", b"max_age: forever")))
    out = await _run(serve_zones, pki, server.port)
    assert out.verdict.status is VerdictStatus.FAIL
    assert out.ids["mta_sts.policy_syntax"] is Status.FAIL
    assert out.verdict.details["mecsa_st_pass"] is False


async def test_null_mx_is_not_applicable(serve_zones: ServeZones, pki: Pki) -> None:
    out = await _run(serve_zones, pki, 443, zone="@ IN MX 0 .\n")
    assert out.verdict.status is VerdictStatus.NOT_APPLICABLE


async def test_mx_lookup_failure_is_an_error(
    serve_zones: ServeZones, pki: Pki, policy_server: StartServer
) -> None:
    server = await policy_server(Reply(body=GOOD))
    out = await _run(serve_zones, pki, server.port, faults={f"{DOMAIN}/MX": Fault.SERVFAIL})
    assert out.verdict.status is VerdictStatus.ERROR
    assert out.ids["mta_sts.mx_unknown"] is Status.ERROR
    assert out.verdict.details["mecsa_st_pass"] is None


async def test_assessment_carries_the_verdict_and_one_client(
    serve_zones: ServeZones, pki: Pki, policy_server: StartServer
) -> None:
    server = await policy_server(Reply(body=GOOD))
    client = await serve_zones({f"{DOMAIN}.": HEAD + MX + TXT + POLICY_A})
    options = AssessOptions(ca_file=str(pki.ca_file), https_port=server.port, only=frozenset({"mta-sts"}))
    assessment = await assess(DOMAIN, client, options)
    data = assessment.verdicts["mta-sts"].to_json()
    assert data["status"] == "pass"
    assert data["details"]["mecsa_st_pass"] is True
    assert data["share"] == 1.0


async def test_client_is_built_once_per_event_loop_not_per_assessment(
    serve_zones: ServeZones, pki: Pki, monkeypatch: pytest.MonkeyPatch
) -> None:
    client = await serve_zones({f"{DOMAIN}.": HEAD + MX})
    ctx = Context(DOMAIN, Resolver(client), AssessOptions(ca_file=str(pki.ca_file)))
    other = Context(DOMAIN, Resolver(client), AssessOptions(ca_file=str(pki.ca_file)))
    built: list[str | None] = []
    real = https_client.make_client

    def counting(ca_file: str | None) -> object:
        built.append(ca_file)
        return real(ca_file)

    monkeypatch.setattr(https_client, "make_client", counting)
    first = await observe_mta_sts.fetch_policy(ctx)
    second = await observe_mta_sts.fetch_policy(ctx)
    await observe_mta_sts.fetch_policy(other)  # a second assessment on the same loop
    assert built == [str(pki.ca_file)]
    assert first.failure is not None and first.failure.kind is https.FailureKind.NO_ADDRESS
    assert second.failure == first.failure
