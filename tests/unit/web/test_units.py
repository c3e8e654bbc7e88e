"""The web service's pure parts: the address guard, rate windows, the diff, documents back to models."""

from __future__ import annotations

import dns.name
import dns.rdatatype
import pytest

from mecsa.dns.answer import Rcode
from mecsa.dns.resolver import DnsClient, Nameserver
from mecsa.dns.zoneserver import ThreadedZoneServer
from mecsa.report.json import assessment_to_json
from mecsa.report.view import build_view
from mecsa.web.document import assessment_from_document
from mecsa.web.guard import GuardedClient, is_internal
from mecsa.web.history import diff_documents
from mecsa.web.limits import SlidingWindow
from tests.unit.report.samples import SAMPLES, TODAY


@pytest.mark.parametrize(
    "address",
    [
        "10.1.2.3",
        "172.16.0.1",
        "192.168.1.1",
        "127.0.0.1",
        "127.8.9.10",
        "169.254.169.254",  # link-local: the cloud metadata service
        "100.64.0.1",  # CGNAT
        "0.0.0.0",
        "224.0.0.1",
        "192.0.2.1",  # documentation
        "::1",
        "fe80::1",
        "fc00::1",
        "fd12:3456::1",
        "::ffff:10.0.0.1",  # IPv4-mapped private
        "::ffff:127.0.0.1",
        "ff02::1",
        "::",
    ],
)
def test_internal_addresses_are_refused(address: str) -> None:
    assert is_internal(address)


@pytest.mark.parametrize("address", ["8.8.8.8", "193.0.14.129", "2001:4860:4860::8888", "::ffff:8.8.8.8"])
def test_public_addresses_are_allowed(address: str) -> None:
    assert not is_internal(address)


async def test_the_guard_withholds_internal_answers_and_passes_the_rest(zones: ThreadedZoneServer) -> None:
    host, port = zones.address.split(":")
    inner = DnsClient([Nameserver(host, int(port))], timeout=0.5)
    guard = GuardedClient(inner)
    internal = await guard.ask(dns.name.from_text("mx.internal.web.test"), dns.rdatatype.A)
    text = await guard.ask(dns.name.from_text("good.web.test"), dns.rdatatype.TXT)
    assert internal.rcode is Rcode.REFUSED and internal.message is None
    assert "127.0.0.2" in (internal.detail or "")
    assert text.rcode is Rcode.NOERROR and text.message is not None
    assert guard.refused == {"mx.internal.web.test": "127.0.0.2"}
    refusal = guard.refusal()
    assert refusal is not None and refusal.startswith("refused: mx.internal.web.test (127.0.0.2)")
    assert GuardedClient(inner).refusal() is None


def test_a_sliding_window_allows_the_limit_then_says_how_long_to_wait() -> None:
    now = [1000.0]
    window = SlidingWindow(2, 60.0, clock=lambda: now[0])
    assert window.hit("a") == 0.0
    now[0] += 10
    assert window.hit("a") == 0.0
    assert window.hit("a") == pytest.approx(50.0)
    assert window.hit("b") == 0.0  # keys are independent
    now[0] += 50.5
    assert window.hit("a") == 0.0  # the first event left the window
    assert window.hit("a") == pytest.approx(9.5)
    now[0] += 1000
    assert window.retry_after("a") == 0.0
    assert "a" not in window._events  # idle keys are forgotten


def _document(
    statuses: dict[str, str], findings: list[tuple[str, str, str | None]], level: int
) -> dict[str, object]:
    return {
        "domain": "x.test",
        "protocols": {p: {"status": s, "reason": "r"} for p, s in statuses.items()},
        "findings": [
            {"id": i, "status": s, "subject": subj, "message": "m", "protocol": "p"}
            for i, s, subj in findings
        ],
        "scores": {"confidentiality": level, "phishing": level, "integrity": level},
    }


def test_the_diff_names_changed_protocols_and_added_and_removed_findings() -> None:
    older = _document(
        {"spf": "pass", "dmarc": "fail", "dane": "error"},
        [("dmarc.missing", "fail", None), ("starttls.ok", "pass", "mx1"), ("x509.expired", "fail", "mx2")],
        3,
    )
    newer = _document(
        {"spf": "pass", "dmarc": "pass", "mta-sts": "fail"},
        [("dmarc.ok", "pass", None), ("starttls.ok", "pass", "mx1"), ("x509.expired", "fail", "mx3")],
        7,
    )
    diff = diff_documents(older, newer)
    changes = {(c.protocol, c.before, c.after) for c in diff.protocols}
    assert changes == {("dmarc", "fail", "pass"), ("dane", "error", "absent"), ("mta-sts", "absent", "fail")}
    assert [(f.id, f.subject) for f in diff.added] == [("dmarc.ok", None), ("x509.expired", "mx3")]
    assert [(f.id, f.subject) for f in diff.removed] == [("dmarc.missing", None), ("x509.expired", "mx2")]
    assert [(c.before, c.after) for c in diff.levels] == [(3, 7)] * 3
    assert not diff.unchanged
    assert diff_documents(newer, newer).unchanged
    assert diff.to_json()["protocols"][0] == {"protocol": "dmarc", "before": "fail", "after": "pass"}


@pytest.mark.parametrize("sample", sorted(SAMPLES))
@pytest.mark.parametrize("profile", ["mecsa", "mecsa-st"])
def test_a_stored_document_gives_back_its_levels_protocols_and_problems(sample: str, profile: str) -> None:
    # The typed facts stay behind (the service keeps the report it rendered from the live
    # assessment, store/web_reports.py); what the document holds comes back whole.
    assessment = SAMPLES[sample]()
    document = assessment_to_json(assessment, profile)
    rebuilt = assessment_from_document(document)
    assert assessment_to_json(rebuilt, profile) == document
    live, again = build_view(assessment, profile, TODAY), build_view(rebuilt, profile, TODAY)
    assert (again.areas, again.protocols, again.problems) == (live.areas, live.protocols, live.problems)


async def test_the_worker_loop_runs_coroutines_on_its_own_thread_and_cancels_them_on_close() -> None:
    import asyncio
    import threading

    from mecsa.web.worker import WorkerLoop

    worker = WorkerLoop("test-loop")
    try:
        made_on = worker.call(threading.get_ident)

        async def where() -> int:
            return threading.get_ident()

        ran_on = await worker.run(where())
        forever = asyncio.ensure_future(worker.run(asyncio.sleep(3600)))
        await asyncio.sleep(0.05)
    finally:
        await asyncio.to_thread(worker.close)
    assert made_on == ran_on != threading.get_ident()
    await asyncio.wait([forever], timeout=5)  # closing cancelled it on the worker's loop
    assert forever.done() and forever.cancelled()
