"""Reports arriving by SMTP: the handler the mail-mode receiver calls for a report address.

The receiver awaits it before its reply, so a mail is answered 250 only once its reports are
stored (or recorded as malformed); a store failure raises, and the receiver answers 451 so the
sender retries: nothing is lost.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from mecsa.reports.intake import IngestItem, Intake, ItemStatus
from mecsa.reports.limits import DEFAULT_LIMITS, Limits
from mecsa.reports.storage import ReportStore


def summarise(items: list[IngestItem]) -> str:
    counts = {s: sum(1 for i in items if i.status is s) for s in ItemStatus}
    return (
        f"{counts[ItemStatus.STORED]} stored, {counts[ItemStatus.DUPLICATE]} duplicates, "
        f"{counts[ItemStatus.ERROR]} errors"
    )


def report_handler(
    store: ReportStore,
    limits: Limits = DEFAULT_LIMITS,
    on_items: Callable[[list[IngestItem]], None] | None = None,
) -> Callable[[bytes, str], Awaitable[str]]:
    """A receiver `ReportHandler` that ingests each mail into `store` (one at a time)."""
    intake = Intake(store, limits)
    lock = asyncio.Lock()

    async def handle(raw: bytes, source: str) -> str:
        async with lock:  # one writer: SQLite allows no more, and reports are small
            items = await asyncio.to_thread(intake.message, source, raw)
        if on_items is not None:
            on_items(items)
        return summarise(items)

    return handle
