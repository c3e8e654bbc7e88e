"""The in-process monitor's thread: it runs passes off the serving loop and stops cleanly, even mid-pass."""

from __future__ import annotations

import asyncio
import threading
import time
from pathlib import Path
from typing import Any

from mecsa.dns.resolver import DnsClient, Nameserver
from mecsa.monitor.watchlist import parse_watchlist
from mecsa.store import open_store
from mecsa.web.monitor_runner import PrivateBackground
from tests.unit.monitor import documents as docs


def _client() -> DnsClient:
    return DnsClient([Nameserver("127.0.0.1", 9)], timeout=0.1)


def _threads() -> int:
    return sum(1 for t in threading.enumerate() if t.name == "mecsa-monitor")


def test_a_pass_runs_on_the_monitors_own_thread_not_the_callers(tmp_path: Path) -> None:
    seen: list[str] = []

    async def assess(domain: str) -> dict[str, Any]:
        seen.append(threading.current_thread().name)
        doc = docs.top()
        doc["domain"] = domain
        return doc

    w = parse_watchlist({"domain": [{"name": "top.test"}], "notify": [], "interval": "1h"})

    async def main() -> None:
        with open_store(tmp_path / "s.sqlite") as store:
            background = PrivateBackground(w, store, _client, assess=assess)
            for _ in range(500):
                if store.assessments_of_domain("top.test"):
                    break
                await asyncio.sleep(0.01)
            assert background.monitoring
            await background.close()
            assert not background.monitoring

    asyncio.run(main())
    assert seen == ["mecsa-monitor"] and _threads() == 0


def test_closing_during_a_pass_that_hangs_cancels_it_after_the_grace(tmp_path: Path) -> None:
    started = threading.Event()

    async def hangs(_domain: str) -> dict[str, Any]:
        started.set()
        await asyncio.sleep(3600)
        raise AssertionError("not reached")

    w = parse_watchlist({"domain": [{"name": "top.test"}], "notify": []})

    async def main() -> float:
        with open_store(tmp_path / "s.sqlite") as store:
            background = PrivateBackground(w, store, _client, assess=hangs, grace_s=0.3)
            assert await asyncio.to_thread(started.wait, 10)
            begun = time.monotonic()
            await background.close()
            took = time.monotonic() - begun
            assert store.assessments_of_domain("top.test") == []  # nothing half-stored
            return took

    took = asyncio.run(main())
    assert 0.3 <= took < 5 and _threads() == 0


def test_without_a_watchlist_only_the_dns_client_lives_there(tmp_path: Path) -> None:
    async def main() -> None:
        with open_store(tmp_path / "s.sqlite") as store:
            background = PrivateBackground(None, store, _client)
            assert not background.monitoring
            where = await background.run(_thread_name())
            assert where == "mecsa-monitor"
            await background.close()

    asyncio.run(main())
    assert _threads() == 0


async def _thread_name() -> str:
    return threading.current_thread().name
