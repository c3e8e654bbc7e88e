"""Web fixtures: the zone server, and a store on SQLite (the store tests also run on PostgreSQL)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from mecsa.dns.zoneserver import ThreadedZoneServer
from mecsa.store import Store, open_store
from tests.unit.web.service import zone_server


@pytest.fixture(scope="module")
def zones() -> Iterator[ThreadedZoneServer]:
    with zone_server() as server:
        yield server


@pytest.fixture
def sqlite_store(tmp_path: Path) -> Iterator[Store]:
    with open_store(tmp_path / "web.sqlite") as store:
        yield store
