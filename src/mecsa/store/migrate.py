"""Apply the store's Alembic migrations programmatically when a store is opened (no alembic.ini).

Every feature's revisions live in `migrations/versions/`. Features develop in parallel, so their
revisions need not form one line: each names the revision it builds on (`down_revision`) and the
store is upgraded to *all* heads. Two features that both build on `0001_core` therefore merge
without a conflict and without a merge revision.
"""

from __future__ import annotations

import importlib
import pkgutil
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import text
from sqlalchemy.engine import Connection, Engine

MIGRATIONS = Path(__file__).with_name("migrations")
# Modules of this package that hold no tables.
_NOT_TABLE_MODULES = frozenset({"migrate", "migrations", "repository", "records", "summary", "urls"})
# Any fixed number: the key of the PostgreSQL advisory lock that serialises concurrent upgrades.
_PG_MIGRATION_LOCK = 0x6D65_6373_6100


class StoreError(RuntimeError):
    """The store cannot be used: unreachable, or at a schema this version of mecsa does not know."""


def import_table_modules() -> None:
    """Import every table module of `mecsa.store`, so that all tables are on the one `metadata`."""
    for info in pkgutil.iter_modules([str(Path(__file__).parent)]):
        if info.name not in _NOT_TABLE_MODULES and not info.name.startswith("_"):
            importlib.import_module(f"mecsa.store.{info.name}")


def alembic_config(connection: Connection | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["connection"] = connection
    return config


def head_revisions() -> frozenset[str]:
    return frozenset(ScriptDirectory.from_config(alembic_config()).get_heads())


def current_revisions(connection: Connection) -> frozenset[str]:
    return frozenset(MigrationContext.configure(connection).get_current_heads())


def upgrade(engine: Engine) -> None:
    """Bring the store's schema to every head revision; a no-op when it is there already."""
    heads = head_revisions()
    with engine.begin() as connection:
        if connection.dialect.name == "postgresql":
            # Two processes opening a new store at once must not both create the tables.
            connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _PG_MIGRATION_LOCK})
        elif connection.dialect.name == "sqlite":
            if current_revisions(connection) == heads:
                return  # the common case, without the write lock: a read-only store opens too
            # The same for SQLite: take the database's write lock, then read the revision again.
            # The driver would begin the transaction only at the first write, after two processes
            # had both read "no tables" (a worker and its scan command: "table ... already exists").
            # The other process waits (the engine's busy timeout), then finds the heads there.
            connection.exec_driver_sql("BEGIN IMMEDIATE")
        current = current_revisions(connection)
        if current == heads:
            return
        script = ScriptDirectory.from_config(alembic_config())
        known = {rev.revision for rev in script.walk_revisions()}
        unknown = current - known
        if unknown:
            raise StoreError(
                f"the store is at schema revision {', '.join(sorted(unknown))}, which this mecsa "
                "does not know (written by a newer mecsa?)"
            )
        command.upgrade(alembic_config(connection), "heads")
