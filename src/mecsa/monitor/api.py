"""What the web service (issue 16) shows and runs: the watch list with its state, the alerts, the monitor.

Plain functions over a `Store`, returning JSON-able rows; the web pages render them, and
`start_monitor` runs the scheduler in the web service's own event loop (`mecsa serve`).
"""

from __future__ import annotations

import asyncio
from typing import Any

from mecsa.monitor.run import AssessFn, next_due, run_daemon
from mecsa.monitor.state import alerts, watch_states
from mecsa.monitor.watchlist import WatchList
from mecsa.store import Store


def watch_rows(watchlist: WatchList, store: Store) -> list[dict[str, Any]]:
    """One row per watched domain: its schedule, the last pass (and its levels), the next, its open alerts."""
    import datetime as dt

    states = watch_states(store)
    levels = _levels(store, [s.last_assessment_id for s in states.values() if s.last_assessment_id])
    open_by_domain: dict[str, int] = {}
    for a in alerts(store, state="open", limit=100_000):
        open_by_domain[a.alert.domain] = open_by_domain.get(a.alert.domain, 0) + 1
    rows = []
    for w in watchlist.domains:
        s = states.get(w.name)
        rows.append(
            {
                "domain": w.name,
                "interval_s": w.interval_s,
                "notify": list(w.notify),
                "last_run_at": s.last_run_at.isoformat() if s and s.last_run_at else None,
                "last_assessment_id": s.last_assessment_id if s else None,
                "last_error": s.last_error if s else None,
                "last_levels": levels.get(s.last_assessment_id) if s and s.last_assessment_id else None,
                "next_pass_at": (
                    (s.last_run_at + dt.timedelta(seconds=w.interval_s)).isoformat()
                    if s and s.last_run_at
                    else None  # due now
                ),
                "reports": w.reports,
                "open_alerts": open_by_domain.get(w.name, 0),
            }
        )
    return rows


def _levels(store: Store, ids: list[int]) -> dict[int, dict[str, int | None]]:
    """The three levels of each stored assessment, in one query (no document parsed)."""
    from sqlalchemy import select

    from mecsa.store.schema import assessments

    areas = ("confidentiality", "phishing", "integrity")
    if not ids:
        return {}
    with store.engine.connect() as conn:
        rows = conn.execute(
            select(assessments.c.id, *(assessments.c[a] for a in areas)).where(assessments.c.id.in_(ids))
        ).all()
    return {int(r.id): {a: getattr(r, a) for a in areas} for r in rows}


def alert_rows(
    store: Store, domain: str | None = None, state: str | None = None, limit: int = 200
) -> list[dict[str, Any]]:
    """Stored alerts, newest first, with their evidence and fixes (`state`: open, resolved, event)."""
    return [a.to_json() for a in alerts(store, domain, state, limit)]


def next_pass_at(watchlist: WatchList, store: Store) -> str:
    import datetime as dt

    return next_due(watchlist, store, dt.datetime.now(dt.UTC)).isoformat()


def start_monitor(
    watchlist: WatchList, store: Store, assess: AssessFn | None = None
) -> tuple[asyncio.Task[None], asyncio.Event]:
    """Run the monitor in the running event loop; set the returned event to stop it, then await the task."""
    stop = asyncio.Event()
    return asyncio.get_running_loop().create_task(run_daemon(watchlist, store, stop, assess=assess)), stop
