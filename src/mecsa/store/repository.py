"""The store's typed repository: open (and migrate) a store, record scans and results, read them.

Synchronous SQLAlchemy Core. A scan writes from one process in batches (one transaction each);
readers (the web service, `mecsa scan report`) can read meanwhile: SQLite runs in WAL mode.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, Row, create_engine, event, func, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import URL, Connection
from sqlalchemy.exc import DBAPIError, IntegrityError, SQLAlchemyError

from mecsa.store.migrate import StoreError, upgrade
from mecsa.store.records import NewResult, ScanRecord, StoredAssessment, as_utc, utc_now
from mecsa.store.schema import (
    DOMAIN_LENGTH,
    assessment_findings,
    assessment_mx,
    assessment_protocols,
    assessments,
    scans,
)
from mecsa.store.urls import display_url, resolve_store_url

# SQLite allows 999 bound parameters per statement in old builds: keep IN lists below that.
_IN_CHUNK = 500
SCAN_STATES = ("running", "finished", "interrupted", "failed")


def open_store(url: str | Path | URL | None = None, *, migrate: bool = True) -> Store:
    """Open the store at `url` (see `resolve_store_url`) and bring its schema up to date."""
    resolved = url if isinstance(url, URL) else resolve_store_url(url)
    engine = make_engine(resolved)
    try:
        if migrate:
            upgrade(engine)
        else:
            with engine.connect():
                pass
    except (DBAPIError, SQLAlchemyError) as exc:
        engine.dispose()
        reason = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0]
        raise StoreError(f"cannot open the store {display_url(resolved)}: {reason}") from None
    except StoreError:
        engine.dispose()
        raise
    return Store(engine)


def make_engine(url: URL) -> Engine:
    if url.get_backend_name() == "sqlite":
        engine = create_engine(url, connect_args={"timeout": 30})
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    return create_engine(url, pool_pre_ping=True)


_WAL_SWITCH_WAIT_S = 30.0  # as long as the engine's busy timeout


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    try:
        # WAL: readers do not block the scan's writer; foreign keys are off by default in SQLite.
        _switch_to_wal(cursor)
        for pragma in ("foreign_keys=ON", "synchronous=NORMAL"):
            cursor.execute(f"PRAGMA {pragma}")
    finally:
        cursor.close()


def _switch_to_wal(cursor: Any) -> None:
    """`PRAGMA journal_mode=WAL`, retried while another process holds the new file's lock.

    Switching a database to WAL needs an exclusive lock, and SQLite answers "database is locked"
    at once instead of calling the busy handler: processes that open one new store together (a
    Celery worker and its scan command) failed so, once in about 25 rounds of six processes. Once the
    file is in WAL mode (it stays so) the pragma takes no lock.
    """
    import sqlite3
    import time

    deadline = time.monotonic() + _WAL_SWITCH_WAIT_S
    pause = 0.005
    while True:
        try:
            cursor.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
        time.sleep(pause)
        pause = min(pause * 2, 0.1)


def _begin_writing(conn: Connection) -> None:
    """Open SQLite's transaction now, with its write lock: `BEGIN IMMEDIATE`.

    pysqlite opens a transaction only before an INSERT, UPDATE or DELETE, so a SAVEPOINT met
    first (`begin_nested`) opened one of its own, and releasing it committed: the assessments were
    stored apart from their protocol rows and the scan's counters, and a worker killed between the
    two left a stored domain counted nowhere (CI: 31 stored, 30 done). Begun here, the savepoint
    nests in this transaction, and the lock taken at once (waiting out the busy timeout) lets the
    look-up of the domains already held see the writes it must not repeat. PostgreSQL's
    transactions are begun by SQLAlchemy already.
    """
    if conn.dialect.name == "sqlite":
        conn.exec_driver_sql("BEGIN IMMEDIATE")


class Store:
    """Typed access to the store's core tables. Close it (or use `with`) to release connections."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    @property
    def url(self) -> str:
        return display_url(self.engine.url)

    def close(self) -> None:
        self.engine.dispose()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    # --- scans -------------------------------------------------------------------------------

    def create_scan(
        self, *, options: Mapping[str, Any], profile: str, mecsa_version: str, input_name: str | None = None
    ) -> int:
        with self.engine.begin() as conn:
            result = conn.execute(
                insert(scans).values(
                    input_name=input_name,
                    options=json.dumps(dict(options), sort_keys=True),
                    profile=profile,
                    mecsa_version=mecsa_version,
                    started_at=utc_now(),
                    state="running",
                    domains_done=0,
                    errors=0,
                )
            )
            key = result.inserted_primary_key
            assert key is not None
            return int(key[0])

    def get_scan(self, scan_id: int) -> ScanRecord | None:
        with self.engine.connect() as conn:
            row = conn.execute(select(scans).where(scans.c.id == scan_id)).first()
        return _scan(row) if row is not None else None

    def list_scans(self, limit: int = 100) -> list[ScanRecord]:
        """The newest scans first."""
        with self.engine.connect() as conn:
            rows = conn.execute(select(scans).order_by(scans.c.id.desc()).limit(limit)).all()
        return [_scan(r) for r in rows]

    def latest_scan_of(self, input_name: str) -> ScanRecord | None:
        """The newest scan of the list called `input_name` (what `--resume` continues)."""
        with self.engine.connect() as conn:
            row = conn.execute(
                select(scans).where(scans.c.input_name == input_name).order_by(scans.c.id.desc()).limit(1)
            ).first()
        return _scan(row) if row is not None else None

    def set_scan_state(self, scan_id: int, state: str) -> None:
        """`running` again (a resume) clears the end time; any other state sets it."""
        if state not in SCAN_STATES:
            raise ValueError(f"unknown scan state {state!r}")
        finished = None if state == "running" else utc_now()
        with self.engine.begin() as conn:
            conn.execute(update(scans).where(scans.c.id == scan_id).values(state=state, finished_at=finished))

    def finish_scan(self, scan_id: int, state: str = "finished") -> None:
        self.set_scan_state(scan_id, state)

    # --- results -----------------------------------------------------------------------------

    def add_result(self, scan_id: int | None, result: NewResult) -> int | None:
        return self.add_results(scan_id, [result])[0]

    def add_results(self, scan_id: int | None, results: Sequence[NewResult]) -> list[int | None]:
        """Store `results` in one transaction; the ids, None where the scan already held that domain."""
        if not results:
            return []
        now = utc_now()
        with self.engine.begin() as conn:
            _begin_writing(conn)
            ids = self._insert_assessments(conn, scan_id, results, now)
            protocol_rows: list[dict[str, Any]] = []
            finding_rows: list[dict[str, Any]] = []
            mx_rows: list[dict[str, Any]] = []
            stored = errors = 0
            for result, new_id in zip(results, ids, strict=True):
                if new_id is None:
                    continue
                stored += 1
                errors += result.is_error
                protocol_rows += [{"assessment_id": new_id, **r} for r in result.protocol_rows()]
                finding_rows += [{"assessment_id": new_id, **r} for r in result.finding_rows()]
                mx_rows += [{"assessment_id": new_id, **r} for r in result.mx_rows()]
            for table, rows in (
                (assessment_protocols, protocol_rows),
                (assessment_findings, finding_rows),
                (assessment_mx, mx_rows),
            ):
                if rows:
                    conn.execute(insert(table), rows)
            if scan_id is not None and stored:
                conn.execute(
                    update(scans)
                    .where(scans.c.id == scan_id)
                    .values(
                        domains_done=scans.c.domains_done + stored,
                        errors=scans.c.errors + errors,
                    )
                )
        return ids

    def _insert_assessments(
        self, conn: Connection, scan_id: int | None, results: Sequence[NewResult], now: Any
    ) -> list[int | None]:
        """One multi-row INSERT for the results the scan does not hold yet (one per domain)."""
        keys = [r.domain[:DOMAIN_LENGTH] for r in results]
        held = self._held(conn, scan_id, keys) if scan_id is not None else set()
        fresh: list[int] = []  # positions in `results` to insert
        for position, key in enumerate(keys):
            if scan_id is None or key not in held:
                held.add(key)
                fresh.append(position)
        ids: list[int | None] = [None] * len(results)
        if not fresh:
            return ids
        rows = [self._assessment_values(scan_id, results[i], keys[i], now) for i in fresh]
        inserted: Sequence[Row[Any] | None]
        try:
            with conn.begin_nested():
                inserted = conn.execute(
                    insert(assessments).returning(assessments.c.id, sort_by_parameter_order=True), rows
                ).all()
        except IntegrityError:
            # Another writer stored one of these domains meanwhile: row by row, skipping conflicts.
            inserted = [self._insert_one(conn, row) for row in rows]
        for position, row in zip(fresh, inserted, strict=True):
            ids[position] = None if row is None else int(row[0])
        return ids

    def _held(self, conn: Connection, scan_id: int, keys: list[str]) -> set[str]:
        held: set[str] = set()
        for start in range(0, len(keys), _IN_CHUNK):
            chunk = keys[start : start + _IN_CHUNK]
            found = conn.execute(
                select(assessments.c.domain).where(
                    assessments.c.scan_id == scan_id, assessments.c.domain.in_(chunk)
                )
            )
            held.update(r[0] for r in found)
        return held

    @staticmethod
    def _assessment_values(scan_id: int | None, result: NewResult, key: str, now: Any) -> dict[str, Any]:
        document = result.document
        return {
            "scan_id": scan_id,
            "domain": key,
            "created_at": now,
            "profile": str(document.get("profile") or ""),
            "mecsa_version": str(document.get("mecsa_version") or ""),
            **result.levels(),
            "error": result.is_error,
            "error_reason": result.error_reason,
            "duration_s": document.get("duration_s"),
            "document": json.dumps(document, ensure_ascii=False),
        }

    @staticmethod
    def _insert_one(conn: Connection, row: dict[str, Any]) -> Row[Any] | None:
        dialect_insert = postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert
        statement = (
            dialect_insert(assessments)
            .on_conflict_do_nothing(index_elements=["scan_id", "domain"])
            .returning(assessments.c.id)
        )
        return conn.execute(statement, row).first()

    def done_domains(self, scan_id: int, candidates: Iterable[str]) -> set[str]:
        """Which of `candidates` the scan already holds a result for (what --resume skips)."""
        wanted = [c[:DOMAIN_LENGTH] for c in candidates]
        done: set[str] = set()
        with self.engine.connect() as conn:
            for start in range(0, len(wanted), _IN_CHUNK):
                chunk = wanted[start : start + _IN_CHUNK]
                rows = conn.execute(
                    select(assessments.c.domain).where(
                        assessments.c.scan_id == scan_id, assessments.c.domain.in_(chunk)
                    )
                )
                done.update(r[0] for r in rows)
        return done

    def count_results(self, scan_id: int) -> int:
        with self.engine.connect() as conn:
            count = conn.execute(
                select(func.count()).select_from(assessments).where(assessments.c.scan_id == scan_id)
            ).scalar_one()
        return int(count)

    # --- reading assessments -----------------------------------------------------------------

    def get_assessment(self, assessment_id: int) -> StoredAssessment | None:
        with self.engine.connect() as conn:
            row = conn.execute(select(assessments).where(assessments.c.id == assessment_id)).first()
        return _assessment(row) if row is not None else None

    def assessments_of_domain(self, domain: str, limit: int = 50) -> list[StoredAssessment]:
        """The domain's results, newest first, from every scan and outside scans."""
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(assessments)
                .where(assessments.c.domain == domain)
                .order_by(assessments.c.created_at.desc(), assessments.c.id.desc())
                .limit(limit)
            ).all()
        return [_assessment(r) for r in rows]

    def scan_assessments(self, scan_id: int, batch: int = 500) -> Iterator[StoredAssessment]:
        """Every result of a scan in id order, fetched `batch` rows at a time (flat memory)."""
        last = 0
        while True:
            with self.engine.connect() as conn:
                rows = conn.execute(
                    select(assessments)
                    .where(assessments.c.scan_id == scan_id, assessments.c.id > last)
                    .order_by(assessments.c.id)
                    .limit(batch)
                ).all()
            if not rows:
                return
            for row in rows:
                yield _assessment(row)
            last = int(rows[-1].id)


def _scan(row: Row[Any]) -> ScanRecord:
    started = as_utc(row.started_at)
    assert started is not None
    return ScanRecord(
        id=int(row.id),
        input_name=row.input_name,
        options=json.loads(row.options),
        profile=row.profile,
        mecsa_version=row.mecsa_version,
        started_at=started,
        finished_at=as_utc(row.finished_at),
        state=row.state,
        domains_done=int(row.domains_done),
        errors=int(row.errors),
    )


def _assessment(row: Row[Any]) -> StoredAssessment:
    created = as_utc(row.created_at)
    assert created is not None
    return StoredAssessment(
        id=int(row.id),
        scan_id=None if row.scan_id is None else int(row.scan_id),
        domain=row.domain,
        created_at=created,
        profile=row.profile,
        mecsa_version=row.mecsa_version,
        levels={"confidentiality": row.confidentiality, "phishing": row.phishing, "integrity": row.integrity},
        error_reason=row.error_reason,
        duration_s=row.duration_s,
        document_text=row.document,
    )
