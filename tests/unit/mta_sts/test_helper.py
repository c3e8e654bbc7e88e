"""The cold CLI's HTTPS helper process: it ends with its socket, and when it cannot answer, the
request is made here instead, with the same result (mecsa.probes.https_helper, https_remote).

The helper's agreement with the in-process path on every policy scenario is in test_check.py.
Here, a helper that misbehaves is a socketpair whose far end the test holds: a real helper
cannot be made to answer nonsense.
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import sys
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from mecsa.observe.mta_sts import in_process_attempt
from mecsa.probes import https, https_helper, https_remote
from mecsa.probes.https import Attempt, FetchFailure, HttpsAnswer
from mecsa.probes.https_helper import HelperProcess
from mecsa.probes.https_remote import RemoteAttempt
from tests.unit.mta_sts.pki import make_ca, make_leaf
from tests.unit.mta_sts.policy_server import PolicyServer, Reply

HOST = "mta-sts.example.test"
ADDRESS = "127.0.0.2"
PATH = https.WELL_KNOWN_PATH
BODY = b"version: STSv1\r\nmode: enforce\r\nmx: mx1.example.test\r\nmax_age: 86400\r\n"


@pytest.fixture(scope="module")
def ca_and_leaf(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, tuple[Path, Path]]:
    directory = tmp_path_factory.mktemp("helper-pki")
    ca = make_ca()
    (directory / "ca.pem").write_bytes(ca.cert_pem)
    return directory / "ca.pem", make_leaf(ca, HOST).write(directory, "leaf")


@pytest.fixture
async def server(ca_and_leaf: tuple[Path, tuple[Path, Path]]) -> AsyncIterator[PolicyServer]:
    _, (cert, key) = ca_and_leaf
    started = await PolicyServer(cert, key, Reply(body=BODY), ADDRESS).start()
    yield started
    await started.stop()


@pytest.fixture
def ca_file(ca_and_leaf: tuple[Path, tuple[Path, Path]]) -> str:
    return str(ca_and_leaf[0])


class Counted:
    """The in-process fallback, counting how often the remote side fell back to it."""

    def __init__(self, ca_file: str) -> None:
        self.ca_file = ca_file
        self.built = 0

    def __call__(self) -> Attempt:
        self.built += 1
        return in_process_attempt(self.ca_file)


@pytest.fixture
def fake_helper() -> Iterator[tuple[HelperProcess, socket.socket]]:
    """A HelperProcess whose far end is the test's; its pid is a process that only sleeps."""
    ours, theirs = socket.socketpair()
    ours.setblocking(False)
    pid = os.posix_spawn(sys.executable, [sys.executable, "-c", "import time; time.sleep(60)"], os.environ)
    helper = HelperProcess(pid, ours)
    yield helper, theirs
    helper.kill()
    theirs.close()
    helper.close()
    for _ in range(100):
        if helper.reap():
            break
        time.sleep(0.05)


async def _ask(attempt: Attempt, port: int, address: str = ADDRESS) -> HttpsAnswer | FetchFailure:
    return await attempt(HOST, f":{port}", address, port, PATH)


async def test_the_helper_answers_and_ends_when_its_socket_closes(server: PolicyServer, ca_file: str) -> None:
    helper = HelperProcess.spawn(ca_file)
    assert helper is not None
    fallback = Counted(ca_file)
    remote = RemoteAttempt(helper, fallback)
    answer = await _ask(remote, server.port)
    assert isinstance(answer, HttpsAnswer) and answer.status == 200 and answer.body == BODY
    assert fallback.built == 0 and not remote.gone
    helper.close()
    for _ in range(100):
        if helper.reap():
            break
        await asyncio.sleep(0.05)
    else:
        helper.kill()
        pytest.fail("the helper did not exit within 5 s of its socket's closing")


async def test_the_helper_leaves_with_status_0_after_saving_its_caches(
    server: PolicyServer, ca_file: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """It skips the interpreter's teardown (mecsa.probes.https_helper.exit_now), not the exit hooks."""
    monkeypatch.setenv("MECSA_CACHE_DIR", str(tmp_path))
    helper = HelperProcess.spawn(ca_file)
    assert helper is not None
    answer = await _ask(RemoteAttempt(helper, Counted(ca_file)), server.port)
    assert isinstance(answer, HttpsAnswer)
    helper.sock.close()
    status = await asyncio.to_thread(_exit_status, helper)
    assert status == 0
    assert await asyncio.to_thread(_saved_caches, tmp_path) == ["dataclass", "import", "regex"]


def _exit_status(helper: HelperProcess) -> int:
    for _ in range(100):
        pid, status = os.waitpid(helper.pid, os.WNOHANG)
        if pid:
            return os.waitstatus_to_exitcode(status)
        time.sleep(0.05)
    helper.kill()
    pytest.fail("the helper did not exit within 5 s of its socket's closing")


def _saved_caches(directory: Path) -> list[str]:
    return sorted(
        f.name.split("-")[0] for f in directory.iterdir() if f.name.endswith("-https-helper.marshal")
    )


async def test_a_helper_that_died_is_replaced_by_the_request_made_here(
    server: PolicyServer, ca_file: str
) -> None:
    helper = HelperProcess.spawn(ca_file)
    assert helper is not None
    helper.kill()
    fallback = Counted(ca_file)
    remote = RemoteAttempt(helper, fallback)
    try:
        answer = await _ask(remote, server.port)
        again = await _ask(remote, server.port)
    finally:
        helper.close()
    assert isinstance(answer, HttpsAnswer) and answer.body == BODY
    assert again == answer
    assert remote.gone and fallback.built == 1  # built once, used for every later request
    assert server.sni == [HOST, HOST]


@pytest.mark.parametrize(
    "reply",
    [b"not json\n", b'{"id": 1, "answer": {"address": 7}}\n', b'{"id": 99, "failure": {}}\n', b"[]\n"],
    ids=["not-json", "bad-answer", "unknown-id", "not-an-object"],
)
async def test_a_reply_that_makes_no_sense_means_the_request_is_made_here(
    server: PolicyServer, ca_file: str, fake_helper: tuple[HelperProcess, socket.socket], reply: bytes
) -> None:
    helper, theirs = fake_helper
    fallback = Counted(ca_file)
    remote = RemoteAttempt(helper, fallback)

    async def answer_badly() -> bytes:
        loop = asyncio.get_running_loop()
        theirs.setblocking(False)
        request = await loop.sock_recv(theirs, 65536)
        await loop.sock_sendall(theirs, reply)
        return request

    request, answer = await asyncio.gather(answer_badly(), _ask(remote, server.port))
    assert b'"host": "mta-sts.example.test"' in request  # it was asked first
    assert isinstance(answer, HttpsAnswer) and answer.body == BODY
    assert remote.gone and fallback.built == 1


async def test_a_silent_helper_is_given_up_after_the_bound_and_its_grace(
    server: PolicyServer,
    ca_file: str,
    fake_helper: tuple[HelperProcess, socket.socket],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(https, "ATTEMPT_TIMEOUT_S", 0.3)
    monkeypatch.setattr(https_remote, "GRACE_S", 0.2)
    helper, _ = fake_helper
    fallback = Counted(ca_file)
    remote = RemoteAttempt(helper, fallback)
    started = time.monotonic()
    answer = await _ask(remote, server.port)
    waited = time.monotonic() - started
    assert isinstance(answer, HttpsAnswer) and answer.body == BODY
    assert fallback.built == 1
    assert 0.5 <= waited < 3.0, waited


async def test_a_request_its_caller_cancelled_leaves_the_helper_in_use(
    ca_file: str, fake_helper: tuple[HelperProcess, socket.socket]
) -> None:
    # A check that ran out of its deadline cancels its fetch: the helper's late reply to it is
    # dropped, and the next request is still the helper's.
    helper, theirs = fake_helper
    theirs.setblocking(False)
    loop = asyncio.get_running_loop()
    remote = RemoteAttempt(helper, Counted(ca_file))
    first = asyncio.ensure_future(_ask(remote, 443))
    assert json.loads(await loop.sock_recv(theirs, 65536))["id"] == 1
    first.cancel()
    with pytest.raises(asyncio.CancelledError):
        await first
    late = HttpsAnswer(ADDRESS, 500, (), None, None)
    answer = HttpsAnswer(ADDRESS, 200, (("Content-Type", "text/plain"),), BODY, "TLSv1.3")

    async def answer_both() -> None:
        request = json.loads(await loop.sock_recv(theirs, 65536))
        assert request["id"] == 2
        await loop.sock_sendall(theirs, https_remote.encode_outcome(1, late))
        await loop.sock_sendall(theirs, https_remote.encode_outcome(2, answer))

    _, second = await asyncio.gather(answer_both(), _ask(remote, 443))
    assert second == answer and not remote.gone


async def test_an_error_in_the_helper_is_met_here_too(ca_file: str) -> None:
    # An address httpx cannot make a URL of (not an IPv6 literal: refused before any packet)
    # raises there as here: the helper says "error", the request is made here, and the caller
    # sees the exception the in-process path raises. (Addresses come from A/AAAA answers, so
    # this cannot happen in an assessment; it stands for any exception in the helper.)
    helper = HelperProcess.spawn(ca_file)
    assert helper is not None
    fallback = Counted(ca_file)
    remote = RemoteAttempt(helper, fallback)
    bad = "::zz"
    try:
        with pytest.raises(Exception) as here:
            await _ask(in_process_attempt(ca_file), 443, bad)
        with pytest.raises(here.type):
            await _ask(remote, 443, bad)
    finally:
        helper.close()
    assert remote.gone and fallback.built == 1


def test_no_helper_without_a_way_to_start_one(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "executable", "/nonexistent/python")
    assert HelperProcess.spawn(None) is None
    with https_helper.started(None, enabled=True) as helper:
        assert helper is None


def test_none_on_one_cpu_on_a_busy_machine_or_when_not_wanted(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(https_helper.SWITCH, raising=False)
    with https_helper.started(None, enabled=False) as helper:
        assert helper is None
    monkeypatch.setattr(os, "getloadavg", lambda: (0.2, 0.2, 0.2))
    monkeypatch.setattr(os, "sched_getaffinity", lambda _pid: {0})
    assert not https_helper.worth_starting()
    with https_helper.started(None) as helper:
        assert helper is None
    monkeypatch.setattr(os, "sched_getaffinity", lambda _pid: {0, 1})
    assert https_helper.worth_starting()
    monkeypatch.setattr(os, "getloadavg", lambda: (1.5, 1.5, 1.5))  # runs one after another
    assert https_helper.worth_starting()
    monkeypatch.setattr(os, "getloadavg", lambda: (1.9, 1.0, 0.5))  # both cores busy, on average
    assert not https_helper.worth_starting()
    monkeypatch.setenv(https_helper.SWITCH, "1")
    assert https_helper.worth_starting()
    monkeypatch.setenv(https_helper.SWITCH, "0")
    monkeypatch.setattr(os, "getloadavg", lambda: (0.0, 0.0, 0.0))
    assert not https_helper.worth_starting()


def test_a_bad_switch_says_so_and_decides_as_auto(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv(https_helper.SWITCH, "yes")
    monkeypatch.setattr(os, "sched_getaffinity", lambda _pid: {0, 1})
    monkeypatch.setattr(os, "getloadavg", lambda: (0.1, 0.1, 0.1))
    assert https_helper.worth_starting()
    assert "MECSA_HTTPS_HELPER must be 0, 1 or auto, not 'yes'; using auto" in capsys.readouterr().err


def test_the_outcomes_cross_unchanged() -> None:
    answer = HttpsAnswer(
        ADDRESS, 200, (("Content-Type", "text/plain"), ("X", "1")), b"\x00\xffbody", "TLSv1.3"
    )
    failure = FetchFailure("tls", https.FailureKind.CERTIFICATE, "hostname mismatch", ADDRESS)
    for outcome in (answer, failure, HttpsAnswer(ADDRESS, 301, (), None, None)):
        line = https_remote.encode_outcome(5, outcome)
        assert https_remote.decode_outcome(json.loads(line)) == outcome


async def test_a_request_the_helper_cannot_read_gets_an_error_reply_not_silence(ca_file: str) -> None:
    # Silence would hold the caller for the attempt's bound and the grace; an error reply sends
    # it to the in-process request at once.
    helper = HelperProcess.spawn(ca_file)
    assert helper is not None
    loop = asyncio.get_running_loop()
    try:
        await loop.sock_sendall(helper.sock, b'{"id": 7, "timeouts": "none"}\n')
        async with asyncio.timeout(30):
            reply = json.loads(await loop.sock_recv(helper.sock, 65536))
    finally:
        helper.close()
    assert reply["id"] == 7 and "error" in reply
    with pytest.raises(KeyError):
        https_remote.decode_outcome(reply)  # which RemoteAttempt takes as "the helper cannot answer"
