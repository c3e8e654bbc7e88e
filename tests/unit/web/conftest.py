"""Web fixtures: the zone server; a store on SQLite, and `store` on SQLite and on a real PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from mecsa.dns.zoneserver import ThreadedZoneServer
from mecsa.store import Store, open_store

# `store`: the same test on SQLite and on a real PostgreSQL server (tests/pgcluster.py)
from tests.unit.store.conftest import postgres, store, store_url  # noqa: F401
from tests.unit.web.service import zone_server


@pytest.fixture(scope="module")
def zones() -> Iterator[ThreadedZoneServer]:
    with zone_server() as server:
        yield server


@pytest.fixture
def sqlite_store(tmp_path: Path) -> Iterator[Store]:
    with open_store(tmp_path / "web.sqlite") as opened:
        yield opened
