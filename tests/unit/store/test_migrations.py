"""Migrations: a new store reaches every head, and the migrated schema equals the tables' metadata."""

from __future__ import annotations

from pathlib import Path

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
        conn.execute(text("UPDATE alembic_version SET version_num = '9999_from_the_future'"))
    with pytest.raises(StoreError, match="9999_from_the_future"):
        open_store(str(path))


def test_an_unreachable_postgresql_server_is_a_one_line_store_error() -> None:
    # Port 9 on loopback: nothing listens there (discard), so the connection is refused at once.
    with pytest.raises(StoreError) as caught:
        open_store("postgresql://postgres@127.0.0.1:9/none")
    message = str(caught.value)
    assert message.startswith("cannot open the store postgresql+psycopg://postgres@127.0.0.1:9/none")
    assert "\n" not in message
