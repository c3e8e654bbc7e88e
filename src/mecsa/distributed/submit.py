"""`mecsa scan FILE --engine celery`: queue the list as chunks, then follow the scan through the store.

The submitting command reads the list once, lazily, and queues one task per `chunk_size` domains
(a --resume skips the domains the store holds). Meanwhile and afterwards it reads the scan's new
results back from the store, writes them to the output as a local scan would (JSONL or CSV), and
drives the same progress display. It ends when Redis says no chunk is left: the scan `finished`.

Ctrl-C (or SIGTERM) marks the scan `interrupted` and tells the workers to drop its remaining chunks;
`--resume` queues what is missing, as for a local scan. A submitter that dies instead leaves the
workers to finish the scan on their own (the last chunk marks it finished); `mecsa scan status`
follows it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from sqlalchemy import select

from mecsa.distributed.app import QUEUE, TASK, make_app
from mecsa.distributed.bookkeeping import ScanKeys, chunk_queued, progress
from mecsa.distributed.codec import config_to_json, target_to_json
from mecsa.distributed.redeliver import QueueDepth, Redeliverer
from mecsa.distributed.redisconn import REDIS_DOWN, connect, patiently
from mecsa.scan.engine import Counters, ScanOutcome
from mecsa.scan.inputs import Target, chunked, read_targets
from mecsa.scan.output import RecordWriter, make_writer
from mecsa.scan.progress import ProgressDisplay
from mecsa.scan.run import ScanRequest, ScanRun, count_entries, open_lines, pick_scan
from mecsa.store.schema import assessments

if TYPE_CHECKING:
    from celery import Celery
    from redis.asyncio import Redis

    from mecsa.store import Store

DEFAULT_CHUNK_SIZE = 50
POLL_S = 0.5
_BATCH = 500  # ids per look-up: an IN list stays below old SQLite builds' 999 parameters


async def submit_scan(
    request: ScanRequest,
    store: Store,
    broker: str,
    stdout: TextIO,
    stdin: TextIO,
    *,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
) -> ScanRun:
    """Run (or resume) the scan of `request.source` on the workers of `broker`, following it to its end."""
    app = make_app(broker)
    redis = connect(broker)
    try:
        await patiently(lambda: redis.ping(), patience_s=10)
    except REDIS_DOWN as exc:
        await redis.aclose()
        raise LookupError(f"cannot reach the broker {broker}: {exc}") from None
    total = None if request.source == "-" else count_entries(Path(request.source))
    noted: dict[str, Any] = {"engine": "celery", "chunk_size": chunk_size}
    if total is not None:
        noted["entries"] = total
    scan_id, resumed = pick_scan(store, request, noted)
    keys = ScanKeys(scan_id)
    if resumed:
        store.set_scan_state(scan_id, "running")
        await redis.delete(keys.cancelled, keys.chunks, keys.payloads, keys.submitted)
    counters = Counters(total=total)
    append = resumed and request.output is not None and request.output.exists()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    state = "failed"
    with contextlib.ExitStack() as stack:
        if request.output is None:
            out = stdout
        else:
            out = stack.enter_context(
                request.output.open("a" if append else "w", encoding="utf-8", newline="")
            )
        header = not (append and request.output is not None and request.output.stat().st_size > 0)
        follower = Follower(store, scan_id, make_writer(request.output_format, out, header=header), counters)
        display = ProgressDisplay(counters, request.progress, every=request.progress_every)
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        try:
            lines = stack.enter_context(open_lines(request.source, stdin))
            display.start()
            depth = stack.enter_context(contextlib.closing(QueueDepth(broker)))
            redeliverer = Redeliverer(
                redis, keys, lambda args: app.send_task(TASK, args=args, queue=QUEUE), depth
            )
            following = asyncio.ensure_future(follower.follow(redis, keys, stop, redeliverer))
            await _queue(
                app, redis, keys, store, read_targets(lines), request, chunk_size, resumed, counters, stop
            )
            stopped = asyncio.ensure_future(stop.wait())
            await asyncio.wait({following, stopped}, return_when=asyncio.FIRST_COMPLETED)
            for waiting in (following, stopped):
                waiting.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await waiting
            follower.catch_up()
            if stop.is_set():
                await patiently(lambda: redis.set(keys.cancelled, 1))
                state = "interrupted"
            else:
                state = "finished"
                if counters.total is not None:  # repeated lines: stored once, counted as skipped
                    counters.skipped = max(counters.skipped, counters.total - counters.done)
            with contextlib.suppress(*REDIS_DOWN):
                stats = await redis.hgetall(keys.stats)
                counters.observations = {_text(k): int(v) for k, v in stats.items()}
        finally:
            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.remove_signal_handler(sig)
            await display.stop()
            store.finish_scan(scan_id, state)
            await redis.aclose()
    return ScanRun(scan_id, ScanOutcome(state == "interrupted", counters))


async def _queue(
    app: Celery,
    redis: Redis,
    keys: ScanKeys,
    store: Store,
    targets: Iterable[Target],
    request: ScanRequest,
    chunk_size: int,
    resumed: bool,
    counters: Counters,
    stop: asyncio.Event,
) -> None:
    config = config_to_json(request.config)
    with app.producer_or_acquire() as producer:
        for chunk in chunked(targets, chunk_size):
            if stop.is_set():
                return
            if resumed:
                done = store.done_domains(keys.scan_id, [t.key for t in chunk])
                counters.skipped += sum(t.key in done for t in chunk)
                chunk = [t for t in chunk if t.key not in done]
                if not chunk:
                    continue
            chunk_id = int(await patiently(lambda: redis.incr(keys.seq)))
            args = [keys.scan_id, chunk_id, config, [target_to_json(t) for t in chunk]]
            await patiently(lambda: chunk_queued(redis, keys, chunk_id, json.dumps(args)))  # noqa: B023
            app.send_task(TASK, args=args, queue=QUEUE, producer=producer)
            await asyncio.sleep(0)  # let the display and the follower run between chunks
    await patiently(lambda: redis.set(keys.submitted, 1))


class Follower:
    """Reads the scan's new results from the store into the output and the counters."""

    def __init__(self, store: Store, scan_id: int, writer: RecordWriter, counters: Counters) -> None:
        self.store = store
        self.scan_id = scan_id
        self.writer = writer
        self.counters = counters
        self.last_id = self._max_id()  # a resumed scan's earlier results are not written again
        self.floor = self.last_id
        self.seen: set[int] = set()

    def _max_id(self) -> int:
        from sqlalchemy import func

        with self.store.engine.connect() as conn:
            found = conn.execute(
                select(func.max(assessments.c.id)).where(assessments.c.scan_id == self.scan_id)
            ).scalar_one()
        return int(found or 0)

    def read_new(self, after: int) -> int:
        """Write the results with an id above `after` not written yet; how many were.

        Ids first (the look-back window re-reads them), documents only for the new ones."""
        written = 0
        while True:
            with self.store.engine.connect() as conn:
                ids = (
                    conn.execute(
                        select(assessments.c.id)
                        .where(assessments.c.scan_id == self.scan_id, assessments.c.id > after)
                        .order_by(assessments.c.id)
                        .limit(_BATCH)
                    )
                    .scalars()
                    .all()
                )
                new = [int(i) for i in ids if int(i) not in self.seen]
                rows = (
                    conn.execute(
                        select(assessments.c.id, assessments.c.error, assessments.c.document)
                        .where(assessments.c.id.in_(new))
                        .order_by(assessments.c.id)
                    ).all()
                    if new
                    else []
                )
            for row in rows:
                self.seen.add(int(row.id))
                self.writer.write(json.loads(row.document))
                self.counters.done += 1
                self.counters.errors += bool(row.error)
                written += 1
                self.last_id = max(self.last_id, int(row.id))
            if len(ids) < _BATCH:
                break
            after = int(ids[-1])
        if written:
            self.writer.flush()
        return written

    def catch_up(self) -> None:
        """Every result not written yet, however late it committed: ids are not commit order."""
        self.read_new(self.floor)

    async def follow(
        self, redis: Redis, keys: ScanKeys, stop: asyncio.Event, redeliverer: Redeliverer | None = None
    ) -> None:
        """Until every chunk is queued and done: new results every `POLL_S` seconds, and lost chunks
        queued again (`redeliver.py`)."""
        while not stop.is_set():
            # PostgreSQL hands out ids before commit: look back a little for late commits.
            self.read_new(max(self.floor, self.last_id - 500))
            try:
                left, submitted = await progress(redis, keys)
                if redeliverer is not None and left:
                    await redeliverer.tick()
            except REDIS_DOWN:
                left, submitted = 1, False  # the broker is restarting: keep following
            if submitted and left == 0:
                return
            await asyncio.sleep(POLL_S)


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
