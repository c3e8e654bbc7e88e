"""Migrations: a new store reaches every head, and the migrated schema equals the tables' metadata."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect, text

from mecsa.store import Store, StoreError, open_store
from mecsa.store.migrate import current_revisions, head_revisions, import_table_modules
from mecsa.store.schema import metadata


def test_a_new_store_is_at_every_head_revision(store: Store) -> None:
    with store.engine.connect() as conn:
        assert current_revisions(conn) == head_revisions() != frozenset()
    core = {"scans", "assessments", "assessment_protocols", "assessment_findings", "assessment_mx"}
    assert core <= set(inspect(store.engine).get_table_names())


def test_the_migrated_schema_equals_the_metadata_of_every_table_module(store: Store) -> None:
    # A feature that adds a table module without a revision (or the reverse) fails here.
    import_table_modules()
    with store.engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        differences = compare_metadata(context, metadata)
    assert differences == []


def test_a_store_at_an_unknown_revision_is_refused_with_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "newer.sqlite"
    with open_store(str(path)) as store, store.engine.begin() as conn:
        # one row per head (features branch off 0001_core): make one of them a revision we lack
        conn.execute(text("DELETE FROM alembic_version"))
        conn.execute(text("INSERT INTO alembic_version (version_num) VALUES ('9999_from_the_future')"))
    with pytest.raises(StoreError, match="9999_from_the_future"):
        open_store(str(path))


def test_an_unreachable_postgresql_server_is_a_one_line_store_error() -> None:
    # Port 9 on loopback: nothing listens there (discard), so the connection is refused at once.
    with pytest.raises(StoreError) as caught:
        open_store("postgresql://postgres@127.0.0.1:9/none")
    message = str(caught.value)
    assert message.startswith("cannot open the store postgresql+psycopg://postgres@127.0.0.1:9/none")
    assert "\n" not in message


def _open_at_once(path: str, barrier: Any, errors: Any) -> None:
    from mecsa.store import open_store

    barrier.wait()
    try:
        with open_store(path):
            pass
    except Exception as exc:  # reported to the parent, which asserts there were none
        errors.put(f"{type(exc).__name__}: {exc}")


def test_processes_opening_a_new_sqlite_store_at_once_create_it_once(tmp_path: Path) -> None:
    """A celery worker and its scan command open one new SQLite file together: neither may fail.

    Both used to read "no tables" before either wrote, and the second then failed with "table scans
    already exists" (seen once in CI).
    """
    import multiprocessing

    context = multiprocessing.get_context("fork")
    for round_ in range(5):
        path = str(tmp_path / f"s{round_}.sqlite")
        barrier, errors = context.Barrier(6), context.Queue()
        workers = [context.Process(target=_open_at_once, args=(path, barrier, errors)) for _ in range(6)]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join(60)
        found = []
        while not errors.empty():
            found.append(errors.get())
        assert found == [] and all(w.exitcode == 0 for w in workers)


def test_a_read_only_store_at_its_heads_still_opens(tmp_path: Path) -> None:
    """Opening takes the write lock only to migrate: a store opened read-only opens as before."""
    path = tmp_path / "s.sqlite"
    with open_store(str(path)):
        pass
    with open_store(f"sqlite:///file:{path}?mode=ro&uri=true") as store:  # SQLite's read-only mode
        assert store.list_scans() == []
