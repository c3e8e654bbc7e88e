"""Alembic's environment for the store: always run programmatically by `mecsa.store.migrate`.

There is no alembic.ini: `migrate.upgrade` builds the Config, and hands over the open connection
in `config.attributes["connection"]`, so that the migration runs in the caller's transaction.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy.engine import Connection

from mecsa.store.migrate import import_table_modules
from mecsa.store.schema import metadata

import_table_modules()  # every feature's tables on the metadata, for comparisons (autogenerate)


def run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=metadata,
        # SQLite cannot ALTER most things: batch mode rebuilds the table instead.
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


_connection = context.config.attributes.get("connection")
if _connection is None:
    raise RuntimeError("mecsa's migrations run through mecsa.store.migrate, which passes a connection")
run(_connection)
