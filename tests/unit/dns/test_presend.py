"""Questions sent before the DNS stack is imported (mecsa.dns.presend, mecsa.cli.head_start): the
resolver takes each once, as its own, and nothing is asked twice (a loopback responder counts)."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import dns.exception
import dns.message
import dns.name
import dns.rdatatype
import dns.rrset
import pytest

from mecsa.cli.head_start import MX_CHECKS, send_first_questions
from mecsa.dns import presend
from mecsa.dns.answer import Rcode
from mecsa.dns.resolver import DnsClient, Nameserver
from mecsa.dns.udp import make_query


class Responder:
    """A loopback UDP server that answers every MX question with one MX record, and counts."""

    def __init__(self, port: int = 0) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", port))
        self.port = self.sock.getsockname()[1]
        self.questions: list[tuple[str, str]] = []
        self._thread = threading.Thread(target=self._serve, daemon=True)

    def __enter__(self) -> Responder:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.sock.close()

    def _serve(self) -> None:
        while True:
            try:
                wire, source = self.sock.recvfrom(4096)
            except OSError:
                return
            try:
                query = dns.message.from_wire(wire)
            except dns.exception.DNSException:
                # Not a question: a stray datagram (other tests send junk to loopback ports).
                continue
            if not query.question:
                continue
            asked = query.question[0]
            self.questions.append((asked.name.to_text(), dns.rdatatype.to_text(asked.rdtype)))
            reply = dns.message.make_response(query)
            if asked.rdtype == dns.rdatatype.MX:
                reply.answer.append(dns.rrset.from_text(asked.name, 300, "IN", "MX", "10 mx.example."))
            try:
                self.sock.sendto(reply.to_wire(), source)
            except OSError:  # closed by __exit__ meanwhile
                return


@pytest.fixture(autouse=True)
def nothing_left() -> Iterator[None]:
    yield
    presend.discard()


@pytest.mark.parametrize("name", ["top.test", "Example.COM.", "a-b_c.x1.test", "."])
@pytest.mark.parametrize(("rdtype", "cd"), [(15, False), (15, True), (6, False)])
def test_the_octets_are_those_the_resolver_writes(name: str, rdtype: int, cd: bool) -> None:
    expected = make_query(dns.name.from_text(name), dns.rdatatype.RdataType(rdtype), cd=cd).wire[2:]
    assert presend.question_octets(name, rdtype, cd=cd) == expected


@pytest.mark.parametrize("name", ["bücher.test", "a..b.test", "a b.test", "x\\.y.test", "a" * 64 + ".test"])
def test_a_name_not_written_here_is_not_sent_early(name: str) -> None:
    assert presend.question_octets(name, 15) is None
    assert presend.send_early([(name, 15, False)], "127.0.0.1", 9) == 0


def test_the_resolver_takes_a_question_sent_early_and_asks_it_once() -> None:
    async def ask(port: int) -> tuple[Rcode, list[str]]:
        client = DnsClient([Nameserver("127.0.0.1", port)], timeout=2.0, attempts=1)
        reply = await client.ask(dns.name.from_text("top.test"), dns.rdatatype.MX)
        assert reply.message is not None
        return reply.rcode, [rr.to_text() for rr in reply.message.answer]

    with Responder() as server:
        assert presend.send_early([("top.test", 15, False)], "127.0.0.1", server.port) == 1
        time.sleep(0.2)  # the reply waits in the socket, as it does while the CLI imports
        assert server.questions == [("top.test.", "MX")]
        rcode, answer = asyncio.run(ask(server.port))
        assert presend.pending() == 0
        assert server.questions == [("top.test.", "MX")]  # taken, not asked again
    assert rcode is Rcode.NOERROR and answer == ["top.test. 300 IN MX 10 mx.example."]


def test_a_question_sent_early_to_another_server_is_not_taken_and_is_closed() -> None:
    with Responder() as other, Responder() as server:
        presend.send_early([("top.test", 15, False)], "127.0.0.1", other.port)
        client = DnsClient([Nameserver("127.0.0.1", server.port)], timeout=2.0, attempts=1)
        reply = asyncio.run(client.ask(dns.name.from_text("top.test"), dns.rdatatype.MX))
        assert reply.rcode is Rcode.NOERROR and server.questions == [("top.test.", "MX")]
        assert presend.pending() == 1
        presend.discard()
        assert presend.pending() == 0


def test_a_question_sent_early_and_lost_costs_what_a_lost_question_costs() -> None:
    """Sent before anyone listens, its datagram is lost: the resolver waits its timeout on the early
    socket, then asks again, as it retries any question."""
    probe = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    probe.bind(("127.0.0.1", 0))
    port = probe.getsockname()[1]
    probe.close()  # a port nobody listens on, yet
    assert presend.send_early([("top.test", 15, False)], "127.0.0.1", port) == 1
    with Responder(port) as server:
        client = DnsClient([Nameserver("127.0.0.1", port)], timeout=0.3, attempts=2)
        started = time.monotonic()
        reply = asyncio.run(client.ask(dns.name.from_text("top.test"), dns.rdatatype.MX))
        elapsed = time.monotonic() - started
    assert reply.rcode is Rcode.NOERROR and server.questions == [("top.test.", "MX")]
    assert elapsed >= 0.3


def test_the_cli_sends_the_probe_and_the_mx_question_only_when_a_check_needs_the_mx(tmp_path: Path) -> None:
    with Responder() as server:
        resolver = [f"127.0.0.1:{server.port}"]
        assert send_first_questions("top.test", resolver, frozenset({"spf", "dmarc"}), "both") == 1
        assert (
            send_first_questions("top.test", resolver, frozenset(MX_CHECKS), "both") == 1
        )  # the probe was out
        time.sleep(0.2)
        assert sorted(server.questions) == [(".", "SOA"), ("top.test.", "MX")]
    assert presend.take(presend.question_octets("top.test", 15) or b"", "127.0.0.1", server.port) is not None
    own = presend.question_octets("own.test", 15, cd=True)
    with Responder() as server:
        send_first_questions("own.test", [f"127.0.0.1:{server.port}"], frozenset({"mx"}), "own")
        assert presend.take(own or b"", "127.0.0.1", server.port) is not None  # asked with CD, as in own mode


def test_the_cli_asks_the_first_nameserver_of_resolv_conf(tmp_path: Path) -> None:
    conf = tmp_path / "resolv.conf"
    with Responder() as server:
        conf.write_text("# comment\nsearch example\nnameserver 127.0.0.1\nnameserver 10.0.0.1\n")
        # resolv.conf has no port: 53, where nothing here listens; only the choice is checked
        assert send_first_questions("top.test", None, frozenset({"mx"}), "both", str(conf)) == 2
        assert presend.take(presend.question_octets(".", 6) or b"", "127.0.0.1", 53) is not None
        del server
    for text in ("", "nameserver not-an-address\n", "options rotate\n"):
        conf.write_text(text)
        assert send_first_questions("top.test", None, frozenset({"mx"}), "both", str(conf)) == 0
    assert send_first_questions("top.test", ["not a resolver"], frozenset({"mx"}), "both") == 0


def test_the_head_start_knows_the_values_assess_checks_later() -> None:
    from mecsa.cli.head_start import DISCOVERY_METHODS, DNSSEC_MODES, arguments_pass
    from mecsa.dns.validation.verdict import DnssecMode
    from mecsa.observe.dmarc import DiscoveryMethod
    from mecsa.scoring import profile_names

    assert {m.value for m in DnssecMode} == DNSSEC_MODES
    assert {m.value for m in DiscoveryMethod} == DISCOVERY_METHODS
    for profile in profile_names():
        assert arguments_pass(5.0, "both", None, profile)
    assert arguments_pass(5.0, "own", "psl", "mecsa")
    bad = [
        (0.0, "both", None, "mecsa"),
        (5.0, "sometimes", None, "mecsa"),
        (5.0, "both", "guess", "mecsa"),
        (5.0, "both", None, "no-such-profile"),
        (5.0, "both", None, "../scoring/profiles/mecsa"),
    ]
    for args in bad:
        assert not arguments_pass(*args)


@pytest.mark.parametrize(
    "extra",
    [
        ["--dnssec-mode", "sometimes"],
        ["--timeout", "0"],
        ["--dmarc-discovery", "guess"],
        ["--profile", "no-such-profile"],
        ["--dkim-selector", "bad selector"],
        ["--trust-anchor", "/nonexistent/root.key"],
        ["--only", "no-such-check"],
        ["--resolver", "not-an-address"],  # a second, bad resolver after the good one
    ],
)
def test_a_usage_error_asks_nothing(extra: list[str]) -> None:
    from click.testing import CliRunner

    from mecsa.cli import app

    with Responder() as server:
        result = CliRunner().invoke(
            app, ["assess", "example.test", "--resolver", f"127.0.0.1:{server.port}", *extra]
        )
        time.sleep(0.2)
        assert result.exit_code == 2, result.output
        assert server.questions == []
