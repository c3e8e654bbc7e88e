"""`mecsa scan status SCAN_ID`: how far a scan is, from the store (and, given the broker, from Redis)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from mecsa.distributed.bookkeeping import ScanKeys, progress
from mecsa.distributed.redisconn import REDIS_DOWN, connect

if TYPE_CHECKING:
    from mecsa.store import Store


async def scan_status(store: Store, scan_id: int, broker: str | None = None) -> str | None:
    """One line about the scan, None when the store has no such scan."""
    scan = store.get_scan(scan_id)
    if scan is None:
        return None
    entries = scan.options.get("entries")
    of = f"/{entries}" if isinstance(entries, int) else ""
    engine = scan.options.get("engine", "local")
    line = (
        f"scan {scan.id} {scan.state}: {scan.domains_done}{of} domains stored ({scan.errors} errors), "
        f"engine {engine}, started {scan.started_at.isoformat(timespec='seconds')}"
    )
    if scan.finished_at is not None:
        line += f", ended {scan.finished_at.isoformat(timespec='seconds')}"
    if broker is not None:
        redis = connect(broker)
        try:
            left, submitted = await progress(redis, ScanKeys(scan_id))
            line += f"; {left} chunks queued or running" + ("" if submitted else ", list still being queued")
        except REDIS_DOWN as exc:
            line += f"; broker unreachable: {exc}"
        finally:
            await redis.aclose()
    return line
