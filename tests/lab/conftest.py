"""Fixtures for the lab tests: real servers in network namespaces (root only; CI runs them as root).

One lab with every shipped scenario is brought up once per session (about 15 s) and shared by
the mail-flow and scenario tests; the life-cycle tests bring up their own small labs.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.lab.helpers import lab_dir, require_lab


@pytest.fixture(scope="session")
def full_lab() -> Iterator[Path]:
    """Every shipped scenario, up for the whole session; torn down (and checked clean) at the end."""
    require_lab()
    from mecsa.lab.runner import down, up
    from mecsa.lab.scenario import shipped_scenarios

    directory = lab_dir("full")
    try:
        up(shipped_scenarios(), directory)
    except BaseException:
        down(directory)
        raise
    yield directory
    result = down(directory)
    assert result.leftovers == ()
