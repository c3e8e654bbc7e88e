"""The alerts' life cycle in the store, and what each notifier was told.

A condition alert is `open` from the pass that first sees it until the first pass that does not
(then `resolved`); while open, its row follows the newest evidence. An event is stored once, as
`event`. What a notifier must be told is derived from what it was last told (`monitor_notified`):
a new or changed open alert, a resolved one it had been told about, an event it has not seen.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from sqlalchemy import Row, delete, func, insert, select, update

from mecsa.monitor.alert import Alert, AlertKind
from mecsa.store import Store
from mecsa.store.monitor import monitor_alerts, monitor_deliveries, monitor_notified, monitor_watch
from mecsa.store.records import as_utc

EVENT_MAX_AGE = dt.timedelta(days=7)  # an event held back (rate limit, failed delivery) is dropped after this


class Change(StrEnum):
    NEW = "new"
    CHANGED = "changed"
    RESOLVED = "resolved"
    EVENT = "event"


@dataclass(frozen=True, slots=True)
class StoredAlert:
    id: int
    state: str  # open | resolved | event
    alert: Alert
    first_seen: dt.datetime
    last_seen: dt.datetime
    resolved_at: dt.datetime | None

    @property
    def fingerprint(self) -> str:
        return self.alert.fingerprint

    def to_json(self) -> dict[str, Any]:
        return {
            **self.alert.to_json(),
            "id": self.id,
            "state": self.state,
            "first_seen": self.first_seen.isoformat(),
            "last_seen": self.last_seen.isoformat(),
            "resolved_at": self.resolved_at.isoformat() if self.resolved_at else None,
        }


@dataclass(frozen=True, slots=True)
class Pending:
    """One thing a notifier must be told."""

    change: Change
    stored: StoredAlert


def record_alerts(
    store: Store, domain: str, alerts: Sequence[Alert], assessment_id: int | None, now: dt.datetime
) -> None:
    """Bring the domain's alerts up to date with one pass's `alerts`."""
    conditions = {a.key: a for a in alerts if a.kind is AlertKind.CONDITION}
    with store.engine.begin() as conn:
        open_rows = conn.execute(
            select(monitor_alerts.c.id, monitor_alerts.c.key).where(
                monitor_alerts.c.domain == domain, monitor_alerts.c.state == "open"
            )
        ).all()
        open_keys = {row.key: int(row.id) for row in open_rows}
        for key, alert_id in open_keys.items():
            if key in conditions:
                a = conditions[key]
                conn.execute(
                    update(monitor_alerts)
                    .where(monitor_alerts.c.id == alert_id)
                    .values(
                        fingerprint=a.fingerprint,
                        severity=a.severity.value,
                        payload=_payload(a),
                        last_seen=now,
                        assessment_id=assessment_id,
                    )
                )
            else:
                conn.execute(
                    update(monitor_alerts)
                    .where(monitor_alerts.c.id == alert_id)
                    .values(state="resolved", resolved_at=now, assessment_id=assessment_id)
                )
        fresh = [a for a in alerts if a.kind is AlertKind.EVENT or a.key not in open_keys]
        if fresh:
            conn.execute(
                insert(monitor_alerts),
                [
                    {
                        "domain": domain,
                        "key": a.key,
                        "rule": a.rule,
                        "kind": a.kind.value,
                        "severity": a.severity.value,
                        "state": "open" if a.kind is AlertKind.CONDITION else "event",
                        "fingerprint": a.fingerprint,
                        "payload": _payload(a),
                        "first_seen": now,
                        "last_seen": now,
                        "resolved_at": None,
                        "assessment_id": assessment_id,
                    }
                    for a in fresh
                ],
            )


def _payload(alert: Alert) -> str:
    return json.dumps(alert.to_json(), ensure_ascii=False)


def _stored(row: Row[Any]) -> StoredAlert:
    first, last = as_utc(row.first_seen), as_utc(row.last_seen)
    assert first is not None and last is not None
    return StoredAlert(
        int(row.id),
        str(row.state),
        Alert.from_json(json.loads(row.payload)),
        first,
        last,
        as_utc(row.resolved_at),
    )


def pending(store: Store, domain: str, notifier: str, now: dt.datetime) -> list[Pending]:
    """What `notifier` has not been told about `domain`, in the order the alerts were raised."""
    told = monitor_notified.alias("told")
    query = (
        select(monitor_alerts, told.c.state.label("told_state"), told.c.fingerprint.label("told_fp"))
        .select_from(
            monitor_alerts.outerjoin(
                told, (told.c.alert_id == monitor_alerts.c.id) & (told.c.notifier == notifier)
            )
        )
        .where(monitor_alerts.c.domain == domain)
        .order_by(monitor_alerts.c.id)
    )
    out: list[Pending] = []
    with store.engine.connect() as conn:
        for row in conn.execute(query):
            change = _change(row, now)
            if change is not None:
                out.append(Pending(change, _stored(row)))
    return out


def _change(row: Row[Any], now: dt.datetime) -> Change | None:
    if row.state == "open":
        if row.told_state is None:
            return Change.NEW
        return Change.CHANGED if row.told_fp != row.fingerprint else None
    if row.state == "resolved":
        # a resolved alert is told only to a notifier that was told it was open
        return Change.RESOLVED if row.told_state == "open" else None
    first = as_utc(row.first_seen)
    if row.told_state is None and first is not None and now - first <= EVENT_MAX_AGE:
        return Change.EVENT
    return None


def mark_told(store: Store, notifier: str, told: Sequence[Pending], now: dt.datetime) -> None:
    if not told:
        return
    ids = [p.stored.id for p in told]
    with store.engine.begin() as conn:
        conn.execute(
            delete(monitor_notified).where(
                monitor_notified.c.notifier == notifier, monitor_notified.c.alert_id.in_(ids)
            )
        )
        conn.execute(
            insert(monitor_notified),
            [
                {
                    "alert_id": p.stored.id,
                    "notifier": notifier,
                    "state": p.stored.state,
                    "fingerprint": p.stored.fingerprint,
                    "sent_at": now,
                }
                for p in told
            ],
        )
        conn.execute(insert(monitor_deliveries).values(notifier=notifier, sent_at=now, alerts=len(told)))


def sent_in_last_hour(store: Store, notifier: str, now: dt.datetime) -> int:
    with store.engine.connect() as conn:
        count = conn.execute(
            select(func.count())
            .select_from(monitor_deliveries)
            .where(
                monitor_deliveries.c.notifier == notifier,
                monitor_deliveries.c.sent_at > now - dt.timedelta(hours=1),
            )
        ).scalar_one()
    return int(count)


def alerts(
    store: Store, domain: str | None = None, state: str | None = None, limit: int = 200
) -> list[StoredAlert]:
    """Stored alerts, newest first (for the web service and `mecsa monitor alerts`)."""
    query = select(monitor_alerts).order_by(monitor_alerts.c.id.desc()).limit(limit)
    if domain is not None:
        query = query.where(monitor_alerts.c.domain == domain)
    if state is not None:
        query = query.where(monitor_alerts.c.state == state)
    with store.engine.connect() as conn:
        return [_stored(r) for r in conn.execute(query)]


@dataclass(frozen=True, slots=True)
class WatchState:
    domain: str
    last_run_at: dt.datetime | None
    last_assessment_id: int | None
    last_error: str | None


def watch_states(store: Store) -> dict[str, WatchState]:
    with store.engine.connect() as conn:
        rows = conn.execute(select(monitor_watch)).all()
    return {
        r.domain: WatchState(
            r.domain,
            as_utc(r.last_run_at),
            None if r.last_assessment_id is None else int(r.last_assessment_id),
            r.last_error,
        )
        for r in rows
    }


def set_watch_state(
    store: Store, domain: str, now: dt.datetime, assessment_id: int | None, error: str | None
) -> None:
    values = {"last_run_at": now, "last_assessment_id": assessment_id, "last_error": error}
    with store.engine.begin() as conn:
        done = conn.execute(update(monitor_watch).where(monitor_watch.c.domain == domain).values(**values))
        if done.rowcount == 0:
            conn.execute(insert(monitor_watch).values(domain=domain, **values))
