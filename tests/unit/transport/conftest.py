"""Fixtures for the transport tests: a test PKI (made once), loopback SMTP servers, a CA file."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.unit.transport.pki import Pki
from tests.unit.transport.servers import LoopbackServers


@pytest.fixture(scope="session")
def pki() -> Pki:
    return Pki.create()


@pytest.fixture
async def servers() -> AsyncIterator[LoopbackServers]:
    running = LoopbackServers()
    yield running
    await running.close()


@pytest.fixture
def ca_file(pki: Pki, tmp_path: Path) -> str:
    return str(pki.write_root(tmp_path))
