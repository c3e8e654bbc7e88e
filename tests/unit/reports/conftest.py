"""Report-store fixtures: the report tests that touch SQL run on SQLite and on a real PostgreSQL."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.pgcluster import PostgresCluster

_databases = itertools.count(1)


@pytest.fixture(scope="session")
def reports_postgres() -> Iterator[PostgresCluster]:
    # The cluster lives in a temporary directory of its own (tests/pgcluster.py), not under
    # pytest's basetemp, which concurrent root sessions clean up under each other.
    with PostgresCluster() as cluster:
        yield cluster


@pytest.fixture(params=["sqlite", "postgresql"])
def any_store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return str(tmp_path / "store.sqlite")
    cluster: PostgresCluster = request.getfixturevalue("reports_postgres")
    return cluster.create_database(f"r{next(_databases)}")
