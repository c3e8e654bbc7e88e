"""Where mail mode keeps its evidence: an append-only SQLite table of entries keyed by token.

Every fact is one row (`kind`: delivery, analysis, assessment, probe, error) with its JSON and,
for deliveries, the raw message. Nothing is updated in place, so concurrent writers never race
on a read-modify-write; a report is assembled from a token's rows when asked for.

stdlib sqlite3 is synchronous: each call runs in a worker thread (asyncio.to_thread), on one
connection that an asyncio.Lock serialises. WAL lets `mecsa mailmode report` read while the
receiver writes.

The auto-reply rate limit lives here too (table `autoreplies`: one row per reply allowed), so a
restart does not forget it and several processes sharing the file (the web service's receiver,
`mecsa mailmode serve`) share one limit: `claim_autoreply` reads and writes in one
`BEGIN IMMEDIATE` transaction.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import Any

DEFAULT_FILE = "mailmode.sqlite3"
_SCHEMA = """
CREATE TABLE IF NOT EXISTS entries (
    id INTEGER PRIMARY KEY,
    token TEXT NOT NULL,
    kind TEXT NOT NULL,
    created_at TEXT NOT NULL,
    data TEXT NOT NULL,
    raw BLOB
);
CREATE INDEX IF NOT EXISTS entries_token ON entries (token, id);
CREATE TABLE IF NOT EXISTS autoreplies (
    id INTEGER PRIMARY KEY,
    recipient TEXT NOT NULL,
    sent_at TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS autoreplies_recipient ON autoreplies (recipient, sent_at);
CREATE INDEX IF NOT EXISTS autoreplies_sent_at ON autoreplies (sent_at);
"""


@dataclass(frozen=True, slots=True)
class StoredEntry:
    """One stored fact."""

    id: int
    token: str
    kind: str
    created_at: dt.datetime
    data: dict[str, Any]
    raw: bytes | None = None


def store_path(spec: str | Path) -> Path:
    """`--store` as a file: a directory (existing, or written with a trailing slash) gets mailmode.sqlite3."""
    text = str(spec)
    path = Path(text).expanduser()
    if path.is_dir() or text.endswith(("/", "\\")):
        return path / DEFAULT_FILE
    return path


class MailStore:
    """The SQLite store. Use `await MailStore.open(spec)`; `close()` when done."""

    def __init__(self, connection: sqlite3.Connection, path: Path) -> None:
        self._db = connection
        self.path = path
        self._lock = asyncio.Lock()

    @classmethod
    async def open(cls, spec: str | Path) -> MailStore:
        """Open (and create when needed) the store at `spec`."""
        path = store_path(spec)
        return cls(await asyncio.to_thread(_connect, path), path)

    async def _run(self, fn: Any, *args: Any) -> Any:
        async with self._lock:
            return await asyncio.to_thread(fn, self._db, *args)

    async def add(self, token: str, kind: str, data: dict[str, Any], raw: bytes | None = None) -> int:
        """Append one entry; returns its id."""
        text = json.dumps(data, sort_keys=True, default=str)
        now = dt.datetime.now(dt.UTC).isoformat()
        entry_id: int = await self._run(_insert, token, kind, now, text, raw)
        return entry_id

    async def entries(
        self, token: str, *, with_raw: bool = False, since: dt.datetime | None = None
    ) -> list[StoredEntry]:
        """Every entry of `token` (stored at or after `since`, when given), oldest first."""
        after = since.astimezone(dt.UTC).isoformat() if since is not None else ""
        rows: list[tuple[Any, ...]] = await self._run(_select, token, with_raw, after)
        return [
            StoredEntry(r[0], r[1], r[2], dt.datetime.fromisoformat(r[3]), json.loads(r[4]), r[5])
            for r in rows
        ]

    async def has(self, token: str) -> bool:
        """True when `token` has at least one entry."""
        found: bool = await self._run(_has, token)
        return found

    async def count(self, kind: str | None = None) -> int:
        """How many entries (of one kind) the store holds."""
        found: int = await self._run(_count, kind)
        return found

    async def tokens(self) -> list[str]:
        """Every token with at least one entry, newest first."""
        found: list[str] = await self._run(_tokens)
        return found

    async def claim_autoreply(
        self, recipient: str, now: dt.datetime, min_interval: dt.timedelta, max_per_hour: int
    ) -> tuple[bool, str]:
        """Whether an auto-reply to `recipient` is allowed at `now`; when it is, it is recorded.

        (allowed, reason). The rule is `mecsa.mailmode.autoreply.limit_decision`'s.
        """
        from mecsa.mailmode.autoreply import limit_decision, limiter_key

        key = limiter_key(recipient)

        def claim(db: sqlite3.Connection) -> tuple[bool, str]:
            hour_ago = (now - dt.timedelta(hours=1)).astimezone(dt.UTC).isoformat()
            db.execute("BEGIN IMMEDIATE")
            try:
                query = "SELECT MAX(sent_at) FROM autoreplies WHERE recipient = ?"
                row = db.execute(query, (key,)).fetchone()
                last = dt.datetime.fromisoformat(row[0]) if row and row[0] else None
                query = "SELECT COUNT(*) FROM autoreplies WHERE sent_at > ?"
                recent = int(db.execute(query, (hour_ago,)).fetchone()[0])
                decision = limit_decision(key, last, recent, now, min_interval, max_per_hour)
                if decision.reply:
                    db.execute(
                        "INSERT INTO autoreplies (recipient, sent_at) VALUES (?, ?)",
                        (key, now.astimezone(dt.UTC).isoformat()),
                    )
                    # older than both windows: never read again
                    oldest = (now - max(min_interval, dt.timedelta(hours=1))).astimezone(dt.UTC).isoformat()
                    db.execute("DELETE FROM autoreplies WHERE sent_at < ?", (oldest,))
                db.execute("COMMIT")
            except BaseException:
                db.execute("ROLLBACK")
                raise
            return decision.reply, decision.reason

        claimed: tuple[bool, str] = await self._run(claim)
        return claimed

    async def close(self) -> None:
        async with self._lock:
            await asyncio.to_thread(self._db.close)


def _connect(path: Path) -> sqlite3.Connection:
    path.parent.mkdir(parents=True, exist_ok=True)
    # check_same_thread=False: calls hop between worker threads, but the asyncio.Lock lets only one in.
    db = sqlite3.connect(path, check_same_thread=False, timeout=10.0)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=NORMAL")
    db.executescript(_SCHEMA)
    return db


def _insert(db: sqlite3.Connection, token: str, kind: str, now: str, text: str, raw: bytes | None) -> int:
    with db:
        cursor = db.execute(
            "INSERT INTO entries (token, kind, created_at, data, raw) VALUES (?, ?, ?, ?, ?)",
            (token, kind, now, text, raw),
        )
    return int(cursor.lastrowid or 0)


def _select(db: sqlite3.Connection, token: str, with_raw: bool, after: str) -> list[tuple[Any, ...]]:
    raw = "raw" if with_raw else "NULL"
    # created_at is UTC ISO 8601 throughout, so text order is time order
    query = (
        f"SELECT id, token, kind, created_at, data, {raw} FROM entries "
        "WHERE token = ? AND created_at >= ? ORDER BY id"
    )
    return list(db.execute(query, (token, after)))


def _has(db: sqlite3.Connection, token: str) -> bool:
    return db.execute("SELECT 1 FROM entries WHERE token = ? LIMIT 1", (token,)).fetchone() is not None


def _count(db: sqlite3.Connection, kind: str | None) -> int:
    if kind is None:
        return int(db.execute("SELECT COUNT(*) FROM entries").fetchone()[0])
    return int(db.execute("SELECT COUNT(*) FROM entries WHERE kind = ?", (kind,)).fetchone()[0])


def _tokens(db: sqlite3.Connection) -> list[str]:
    # the connection log's key is not a report token (mecsa.mailmode.connections)
    rows = db.execute(
        "SELECT token FROM entries WHERE token != '-connections-' GROUP BY token ORDER BY MAX(id) DESC"
    )
    return [r[0] for r in rows]
