"""The SMTP probe against loopback servers: good, plain, broken TLS and hostile ones."""

from __future__ import annotations

import asyncio
import ssl
import time
from pathlib import Path

import pytest
from cryptography import x509

from mecsa.probes.smtp import ConnectionLimits, Failure, SmtpTimeouts, Stage, probe_smtp
from tests.unit.transport.pki import Pki
from tests.unit.transport.servers import (
    LoopbackServers,
    ResetsTls,
    broken_tls,
    garbage,
    long_line,
    server_context,
    silent,
)

FAST = SmtpTimeouts.from_base(0.3)
MX = "mx.example.test"


async def test_starttls_session_records_every_step(
    servers: LoopbackServers, pki: Pki, tmp_path: Path
) -> None:
    leaf = pki.leaf(MX)
    await servers.add_smtpd("127.0.0.2", server_context(leaf, pki.intermediate.pem, tmp_path))
    obs = await probe_smtp(MX, "127.0.0.2", servers.port, timeouts=FAST)
    assert obs.failed_stage is None and obs.reason is None
    assert obs.banner is not None and obs.banner.code == 220
    assert "STARTTLS" in obs.keywords and any(e.startswith("SIZE ") for e in obs.extensions)
    assert obs.starttls_offered is True
    assert obs.tls is not None and obs.tls.version == "TLSv1.3"
    assert obs.tls.full_chain
    assert obs.tls.chain == (leaf.der, pki.intermediate.der)
    assert "STARTTLS" not in {e.split()[0] for e in obs.extensions_tls}  # the second EHLO was read
    assert obs.extensions_tls
    assert obs.quit_ok


async def test_plain_server_is_not_offering_starttls(servers: LoopbackServers) -> None:
    await servers.add_smtpd("127.0.0.2", None)
    obs = await probe_smtp(MX, "127.0.0.2", servers.port, timeouts=FAST)
    assert obs.reachable and obs.starttls_offered is False
    assert obs.tls is None and obs.failed_stage is None and obs.quit_ok


async def test_offered_but_broken_handshake_is_not_the_same_as_not_offered(servers: LoopbackServers) -> None:
    await servers.add_raw("127.0.0.2", broken_tls)
    obs = await probe_smtp(MX, "127.0.0.2", servers.port, timeouts=FAST)
    assert obs.starttls_offered is True
    assert obs.starttls is not None and obs.starttls.code == 220
    assert obs.failed_stage is Stage.TLS and obs.failure is Failure.HANDSHAKE
    assert obs.extensions == ("SIZE 1000", "STARTTLS")  # earlier steps are kept


async def test_reset_during_the_handshake_is_retried_once_then_a_hangup_with_a_reason(
    servers: LoopbackServers,
) -> None:
    server = ResetsTls()
    await servers.add_raw("127.0.0.2", server)
    obs = await probe_smtp(MX, "127.0.0.2", servers.port, timeouts=FAST)
    assert server.connections == 2  # one retry on a fresh connection
    assert obs.failed_stage is Stage.TLS and obs.failure is Failure.CLOSED
    assert obs.reason is not None and "hung up during the TLS handshake" in obs.reason
    assert "retry" in obs.reason
    assert not obs.reason.rstrip().endswith(":")


async def test_a_reset_then_a_good_handshake_passes_on_the_retry(
    servers: LoopbackServers, pki: Pki, tmp_path: Path
) -> None:
    context = server_context(pki.leaf(MX), pki.intermediate.pem, tmp_path)
    resets = ResetsTls()

    async def flaky(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if resets.connections == 0:
            await resets(reader, writer)  # the first connection is reset in the handshake
            return
        writer.write(b"220 mx ESMTP\r\n")
        while line := await reader.readline():
            verb = line.strip().upper()
            if verb.startswith(b"EHLO"):
                writer.write(b"250-mx\r\n250 STARTTLS\r\n")
            elif verb == b"STARTTLS":
                writer.write(b"220 go ahead\r\n")
                await writer.drain()
                await writer.start_tls(context)
                continue
            elif verb == b"QUIT":
                break
            await writer.drain()
        writer.close()

    await servers.add_raw("127.0.0.2", flaky)
    obs = await probe_smtp(MX, "127.0.0.2", servers.port, timeouts=FAST)
    assert resets.connections == 1
    assert obs.failed_stage is None and obs.tls is not None
    assert obs.tls.version == "TLSv1.3"


async def test_a_tls_refusal_is_not_retried(servers: LoopbackServers) -> None:
    connections = 0

    async def counted(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal connections
        connections += 1
        await broken_tls(reader, writer)

    await servers.add_raw("127.0.0.2", counted)
    obs = await probe_smtp(MX, "127.0.0.2", servers.port, timeouts=FAST)
    assert (obs.failure, connections) == (Failure.HANDSHAKE, 1)


async def _multiline(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    writer.write(b"220-mx.example.test first line\r\n220-second\r\n220 ESMTP ready\r\n")
    while line := await reader.readline():
        if line.upper().startswith(b"EHLO"):
            writer.write(
                b"250-mx.example.test hi\r\n250-SIZE 10240000\r\n250-PIPELINING\r\n250 REQUIRETLS\r\n"
            )
        elif line.upper().startswith(b"QUIT"):
            writer.write(b"221 bye\r\n")
            await writer.drain()
            break
    writer.close()


async def test_multiline_banner_and_extensions_are_parsed(servers: LoopbackServers) -> None:
    await servers.add_raw("127.0.0.2", _multiline)
    obs = await probe_smtp(MX, "127.0.0.2", servers.port, timeouts=FAST)
    assert obs.banner is not None
    assert obs.banner.lines == ("mx.example.test first line", "second", "ESMTP ready")
    assert obs.extensions == ("SIZE 10240000", "PIPELINING", "REQUIRETLS")
    assert obs.starttls_offered is False and obs.quit_ok


async def test_silent_server_times_out_at_the_banner(servers: LoopbackServers) -> None:
    await servers.add_raw("127.0.0.2", silent)
    started = time.monotonic()
    obs = await probe_smtp(MX, "127.0.0.2", servers.port, timeouts=FAST)
    elapsed = time.monotonic() - started
    assert obs.connected and obs.failed_stage is Stage.BANNER and obs.failure is Failure.TIMEOUT
    assert FAST.banner - 0.05 <= elapsed < FAST.banner + 0.5


async def test_garbage_is_a_protocol_error(servers: LoopbackServers) -> None:
    await servers.add_raw("127.0.0.2", garbage)
    obs = await probe_smtp(MX, "127.0.0.2", servers.port, timeouts=FAST)
    assert obs.failed_stage is Stage.BANNER and obs.failure is Failure.PROTOCOL
    assert obs.reason is not None and "HTTP/1.1" in obs.reason


async def test_one_megabyte_line_fails_fast_without_buffering_it(servers: LoopbackServers) -> None:
    await servers.add_raw("127.0.0.2", long_line)
    started = time.monotonic()
    obs = await probe_smtp(MX, "127.0.0.2", servers.port, timeouts=FAST)
    assert obs.failed_stage is Stage.BANNER and obs.failure is Failure.LINE_TOO_LONG
    assert time.monotonic() - started < FAST.banner  # did not wait for a timeout


async def test_closed_port_is_a_network_failure() -> None:
    obs = await probe_smtp(MX, "127.0.0.9", 9, timeouts=FAST)
    assert not obs.connected and obs.failed_stage is Stage.CONNECT and obs.failure is Failure.NETWORK


async def test_no_more_than_two_sessions_per_address(servers: LoopbackServers) -> None:
    live = 0
    peak = 0

    async def counting(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal live, peak
        live += 1
        peak = max(peak, live)
        await asyncio.sleep(0.05)
        writer.write(b"554 go away\r\n")
        await writer.drain()
        await reader.read(100)
        live -= 1
        writer.close()

    await servers.add_raw("127.0.0.2", counting)
    limits = ConnectionLimits()
    results = await asyncio.gather(
        *(probe_smtp(MX, "127.0.0.2", servers.port, timeouts=FAST, limits=limits) for _ in range(6))
    )
    assert all(r.failure is Failure.REJECTED and r.failed_stage is Stage.BANNER for r in results)
    assert peak == 2


def test_timeouts_derive_from_one_base_value() -> None:
    t = SmtpTimeouts.from_base(10)
    assert (t.connect, t.banner, t.command, t.tls, t.session) == (10, 20, 10, 10, 50)


async def test_presented_chain_parses_as_certificates(
    servers: LoopbackServers, pki: Pki, tmp_path: Path
) -> None:
    leaf = pki.leaf(MX)
    await servers.add_smtpd("127.0.0.2", server_context(leaf, pki.intermediate.pem, tmp_path))
    obs = await probe_smtp(MX, "127.0.0.2", servers.port, timeouts=FAST)
    assert obs.tls is not None
    subjects = [x509.load_der_x509_certificate(d).subject.rfc4514_string() for d in obs.tls.chain]
    assert subjects == [f"CN={MX}", "CN=Test Issuing CA"]


async def test_ipv6_address(servers: LoopbackServers, pki: Pki, tmp_path: Path) -> None:
    try:
        await servers.add_smtpd("::1", server_context(pki.leaf(MX), b"", tmp_path))
    except OSError:
        pytest.skip("no IPv6 loopback here")
    obs = await probe_smtp(MX, "::1", servers.port, timeouts=FAST)
    assert obs.tls is not None and obs.tls.version == "TLSv1.3" and obs.quit_ok


async def _silent_after_starttls(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    writer.write(b"220 mx ESMTP\r\n")
    while line := await reader.readline():
        if line.upper().startswith(b"EHLO"):
            writer.write(b"250-mx\r\n250 STARTTLS\r\n")
        elif line.upper().startswith(b"STARTTLS"):
            writer.write(b"220 go ahead\r\n")
            await writer.drain()
            await reader.read()  # swallow the ClientHello and never answer
            break
        await writer.drain()
    writer.close()


async def test_silent_tls_handshake_is_a_timeout_not_a_handshake_failure(servers: LoopbackServers) -> None:
    await servers.add_raw("127.0.0.2", _silent_after_starttls)
    started = time.monotonic()
    obs = await probe_smtp(MX, "127.0.0.2", servers.port, timeouts=FAST)
    assert obs.failed_stage is Stage.TLS and obs.failure is Failure.TIMEOUT
    assert time.monotonic() - started < FAST.tls + 0.5


class _SlowGoodbye:
    """A server that answers QUIT only after `delay`, and records what it read after QUIT.

    With `tls`, it offers STARTTLS and speaks TLS after the 220 (asyncio's server-side start_tls).
    """

    def __init__(self, delay: float, tls: ssl.SSLContext | None = None) -> None:
        self.delay = delay
        self.tls = tls
        self.quit = asyncio.Event()
        self.quit_over_tls = False
        self.after_quit: bytes | None = None

    async def __call__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            writer.write(b"220 mx ESMTP\r\n")
            while line := await reader.readline():
                verb = line.strip().upper()
                if verb.startswith(b"EHLO"):
                    tls = writer.get_extra_info("ssl_object") is not None
                    offer = b"250 STARTTLS\r\n" if self.tls and not tls else b"250 SIZE 1000\r\n"
                    writer.write(b"250-mx\r\n" + offer)
                elif verb == b"STARTTLS" and self.tls:
                    writer.write(b"220 go ahead\r\n")
                    await writer.drain()
                    await writer.start_tls(self.tls)
                    continue
                elif verb == b"QUIT":
                    self.quit_over_tls = writer.get_extra_info("ssl_object") is not None
                    self.quit.set()
                    self.after_quit = await reader.read()  # b"": the client ended its side
                    await asyncio.sleep(self.delay)
                    writer.write(b"221 bye\r\n")
                    break
                await writer.drain()
        except (ConnectionError, OSError, ssl.SSLError):
            pass
        writer.close()


@pytest.mark.parametrize("tls", [False, True], ids=["plain", "tls"])
async def test_quit_is_sent_but_its_221_is_not_awaited(
    tls: bool, servers: LoopbackServers, pki: Pki, tmp_path: Path
) -> None:
    server = _SlowGoodbye(5.0, server_context(pki.leaf(MX), b"", tmp_path) if tls else None)
    await servers.add_raw("127.0.0.2", server)
    started = time.monotonic()
    obs = await probe_smtp(MX, "127.0.0.2", servers.port, timeouts=FAST)
    elapsed = time.monotonic() - started
    assert obs.failed_stage is None and obs.reachable
    assert (obs.tls is not None) is tls
    assert obs.quit_ok  # QUIT went out cleanly, though no 221 came back
    assert elapsed < FAST.command  # waiting for the 221 would have taken the whole command timeout
    await asyncio.wait_for(server.quit.wait(), 1)
    assert server.quit_over_tls is tls
    for _ in range(100):  # the server reads our end of stream right after QUIT
        if server.after_quit is not None:
            break
        await asyncio.sleep(0.01)
    assert server.after_quit == b""


async def test_sessions_that_end_without_waiting_for_221_keep_the_per_address_limit(
    servers: LoopbackServers,
) -> None:
    live = 0
    peak = 0

    async def counting(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal live, peak
        live += 1
        peak = max(peak, live)
        writer.write(b"220 mx\r\n")
        while line := await reader.readline():
            if line.upper().startswith(b"QUIT"):
                break
            await asyncio.sleep(0.02)
            writer.write(b"250 mx\r\n")
            await writer.drain()
        await reader.read()  # our socket's end: counted until the client has closed its side
        live -= 1
        writer.close()

    await servers.add_raw("127.0.0.2", counting)
    limits = ConnectionLimits()
    results = await asyncio.gather(
        *(probe_smtp(MX, "127.0.0.2", servers.port, timeouts=FAST, limits=limits) for _ in range(6))
    )
    assert all(r.reachable and r.quit_ok and r.failed_stage is None for r in results)
    assert peak == 2
