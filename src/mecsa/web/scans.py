"""Scans started from the service (an uploaded list, by an API token holder): the scanner's own loop.

`mecsa scan`'s `scan()` owns the terminal (progress display, Ctrl-C handlers), which a server must
keep; this runs the same parts below it (`run_scan`, `ResultSink`, `Assessor`) in the server's event
loop, one scan at a time per service, and stores into the same store. The summary page is the
scanner's own (`mecsa scan report --html`).

Unless `--allow-private`, the scan's DNS client withholds internal addresses (see `guard.py`): a
listed domain whose MX host is internal gets `error` verdicts for what needs a connection.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from typing import Any

from mecsa import __version__
from mecsa.scan.assessor import Assessor, ScanConfig
from mecsa.scan.engine import Counters, ResultSink, run_scan
from mecsa.scan.inputs import Target, read_targets
from mecsa.store import Store
from mecsa.web.guard import GuardedClient
from mecsa.web.settings import ServiceSettings

log = logging.getLogger("mecsa.web.scans")

SCAN_CONCURRENCY = 20  # domains in flight per scan: the service has pages to serve meanwhile


class _Discard:
    """The scan's record output: the store holds every record, nothing else is written."""

    def write(self, record: Mapping[str, Any]) -> None:
        pass

    def flush(self) -> None:
        pass


class GuardedAssessor(Assessor):
    """The scanner's assessor, asking DNS through a client that withholds internal addresses."""

    async def __call__(self, entry: Target) -> dict[str, Any]:
        from mecsa.assess import assess
        from mecsa.scan.records import assessment_record

        assert entry.domain is not None
        client = GuardedClient(self.client)  # one per domain: its refusals are that domain's
        assessment = await assess(entry.domain, client, self.config.options, shared=self.shared)
        return assessment_record(assessment, self.config.profile, self.scan_id)


class ScanRunner:
    def __init__(self, settings: ServiceSettings, store: Store) -> None:
        self.settings = settings
        self.store = store
        self.totals: dict[int, int] = {}  # scan id -> entries in its list
        self._tasks: dict[int, asyncio.Task[None]] = {}
        self._stop = asyncio.Event()

    @property
    def running(self) -> int:
        return sum(1 for t in self._tasks.values() if not t.done())

    async def start(self, text: str, name: str) -> int:
        """Start a scan of the list `text`; its id. ValueError when the list is empty or too long."""
        targets = list(read_targets(text.splitlines()))
        if not targets:
            raise ValueError("the list holds no domain")
        if len(targets) > self.settings.max_scan_domains:
            raise ValueError(
                f"the list holds {len(targets)} entries; at most {self.settings.max_scan_domains}"
            )
        if self.running:
            raise ValueError("a scan is running already; start the next one when it has finished")
        config = ScanConfig(
            options=self.settings.assess_options,
            profile=self.settings.profile,
            resolvers=self.settings.resolvers,
            dns_timeout=self.settings.dns_timeout,
            concurrency=SCAN_CONCURRENCY,
        )
        scan_id = await asyncio.to_thread(
            self.store.create_scan,
            options={**config.to_json(), "source": "web"},
            profile=config.profile,
            mecsa_version=__version__,
            input_name=name[:200],
        )
        self.totals[scan_id] = len(targets)
        kind = Assessor if self.settings.allow_private else GuardedAssessor
        assessor = kind(config, scan_id)
        counters = Counters(total=len(targets))
        sink = ResultSink(self.store, scan_id, _Discard(), counters)
        self._tasks[scan_id] = asyncio.create_task(self._run(scan_id, targets, assessor, sink))
        return scan_id

    async def _run(self, scan_id: int, targets: list[Any], assessor: Assessor, sink: ResultSink) -> None:
        state = "failed"
        try:
            outcome = await run_scan(
                targets,
                assessor,
                sink,
                scan_id=scan_id,
                concurrency=SCAN_CONCURRENCY,
                resume=False,
                stop=self._stop,
            )
            state = "interrupted" if outcome.interrupted else "finished"
        except Exception:
            log.exception("scan %d failed", scan_id)
        finally:
            await asyncio.to_thread(self.store.finish_scan, scan_id, state)

    async def close(self) -> None:
        self._stop.set()
        await asyncio.gather(*self._tasks.values(), return_exceptions=True)
