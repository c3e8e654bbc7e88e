"""The results store: SQLAlchemy 2 Core tables with Alembic migrations, SQLite by default, PostgreSQL by URL.

    from mecsa.store import open_store
    with open_store("postgresql://user@127.0.0.1:5432/mecsa") as store:   # or a file path, or None
        scan_id = store.create_scan(options={...}, profile="mecsa", mecsa_version="0.1.0")
        store.add_results(scan_id, [NewResult.from_document(document)])

`open_store` applies the migrations shipped in `mecsa/store/migrations/` (no alembic.ini needed).

Adding a feature's tables (DMARC reports, monitor watches, API tokens, ...):

1. Write `src/mecsa/store/<feature>.py` declaring `Table(...)`s on `mecsa.store.schema.metadata`
   (import it; never make a second MetaData). Reference core rows by foreign key, e.g.
   `ForeignKey("assessments.id", ondelete="CASCADE")`. The module is imported automatically by
   the migration environment; name it anything but `migrate`, `repository`, `records`, `summary`
   or `urls`.
2. Add `src/mecsa/store/migrations/versions/<NNNN>_<feature>.py` with `revision = "<NNNN>_<feature>"`,
   `down_revision = "0001_core"` (or the revision you build on) and `branch_labels = ("<feature>",)`,
   creating your tables with `op.create_table` (copy the columns; a migration must not import the
   live schema, which will change). Stores are upgraded to *all* heads, so features landing in
   parallel, each on top of `0001_core`, need no merge revision.
3. `tests/unit/store/test_migrations.py` fails until the migrated schema equals the metadata.
   Put your queries in your own module (functions taking a `Store` and using `store.engine`).
"""

from __future__ import annotations

from mecsa.store.migrate import StoreError
from mecsa.store.records import NewResult, ScanRecord, StoredAssessment
from mecsa.store.repository import Store, open_store
from mecsa.store.urls import StoreUrlError, default_store_path, resolve_store_url

__all__ = [
    "NewResult",
    "ScanRecord",
    "Store",
    "StoreError",
    "StoreUrlError",
    "StoredAssessment",
    "default_store_path",
    "open_store",
    "resolve_store_url",
]
