"""Helpers shared by the lab tests."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from mecsa.lab.programs import missing_programs


def lab_skip_reason() -> str | None:
    """Why the lab cannot run here, or None."""
    if os.geteuid() != 0:
        return "the lab needs root (network namespaces, mail servers); CI runs these tests as root"
    missing = missing_programs()
    if missing:
        return f"lab packages not installed: {', '.join(missing)} (see the README's install step)"
    return None


def require_lab() -> None:
    reason = lab_skip_reason()
    if reason:
        pytest.skip(reason)


def lab_dir(tag: str) -> Path:
    """A lab directory of the test's own, so that a developer's lab in /run/mecsa-lab is left alone."""
    return Path(f"/run/mecsa-lab-test-{tag}-{os.getpid()}")
