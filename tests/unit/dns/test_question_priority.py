"""Questions on the critical path go out before guessed DKIM selectors (issue 20)."""

from __future__ import annotations

import asyncio
import time

import dns.message
import pytest

from mecsa.assess import assess
from mecsa.dns import zoneserver
from mecsa.dns.resolver import BACKGROUND_WAIT, Resolver
from mecsa.dns.zoneserver import ZoneData
from mecsa.observe import AssessOptions
from tests.conftest import ServeZones

ZONE = (
    "@ 300 IN SOA ns hostmaster 1 300 300 300 300\n@ IN NS ns\nns IN A 127.0.0.53\n"
    "@ IN MX 10 mx\nmx IN A 127.0.0.99\n"
    '@ IN TXT "v=spf1 mx -all"\n_dmarc IN TXT "v=DMARC1; p=reject"\n'
)


@pytest.fixture
def arrivals(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The questions the loopback server receives, in order, as `name TYPE`."""
    order: list[str] = []
    real = zoneserver.answer

    def noting(data: ZoneData, query: dns.message.Message) -> dns.message.Message | None:
        q = query.question[0]
        order.append(f"{q.name.to_text(omit_final_dot=True)} {dns.rdatatype.to_text(q.rdtype)}")
        return real(data, query)

    monkeypatch.setattr(zoneserver, "answer", noting)
    return order


async def test_mx_question_reaches_the_server_before_any_guessed_selector(
    serve_zones: ServeZones, arrivals: list[str]
) -> None:
    client = await serve_zones({"prio.test.": ZONE})
    options = AssessOptions(only=frozenset({"mx", "dkim", "spf"}), dkim_selectors=("given",))
    await assess("prio.test", client, options)
    guesses = [i for i, q in enumerate(arrivals) if q.endswith("._domainkey.prio.test TXT")]
    guesses.remove(arrivals.index("given._domainkey.prio.test TXT"))  # asked for: not a guess
    assert len(guesses) > 10
    assert arrivals.index("prio.test MX") < min(guesses)
    assert arrivals.index("prio.test TXT") < min(guesses)  # SPF too


async def test_background_question_goes_out_after_a_later_foreground_one(
    serve_zones: ServeZones, arrivals: list[str]
) -> None:
    resolver = Resolver(await serve_zones({"prio.test.": ZONE}))
    late = resolver.resolve("guess._domainkey.prio.test", "TXT", background=True)
    first = resolver.resolve("prio.test", "MX")
    await asyncio.gather(late, first)
    ours = [q for q in arrivals if q.endswith("prio.test MX") or q.endswith("prio.test TXT")]
    assert ours == ["prio.test MX", "guess._domainkey.prio.test TXT"]


async def test_background_question_alone_does_not_wait(serve_zones: ServeZones) -> None:
    resolver = Resolver(await serve_zones({"prio.test.": ZONE}))
    started = time.monotonic()
    answer = await resolver.resolve("mx.prio.test", "A", background=True)
    assert answer.records
    assert time.monotonic() - started < BACKGROUND_WAIT
