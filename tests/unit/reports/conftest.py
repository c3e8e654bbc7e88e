"""Report-store fixtures: the report tests that touch SQL run on SQLite and on a real PostgreSQL."""

from __future__ import annotations

import itertools
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.pgcluster import PostgresCluster

_databases = itertools.count(1)


@pytest.fixture(scope="session")
def reports_postgres() -> Iterator[PostgresCluster]:
    # Not under pytest's basetemp: on a machine where several root pytest sessions run at once,
    # one session's clean-up of /tmp/pytest-of-root removes another's directories (seen here as
    # initdb failing half-way); a directory of our own is removed by us alone.
    directory = Path(tempfile.mkdtemp(prefix="mecsa-reports-pg-"))
    try:
        with PostgresCluster(directory / "cluster") as cluster:
            yield cluster
    finally:
        shutil.rmtree(directory, ignore_errors=True)


@pytest.fixture(params=["sqlite", "postgresql"])
def any_store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return str(tmp_path / "store.sqlite")
    cluster: PostgresCluster = request.getfixturevalue("reports_postgres")
    return cluster.create_database(f"r{next(_databases)}")
