"""Waiting for a `mecsa serve` that a test started: the one loop the browser and lab tests share."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import httpx


def wait_until_healthy(
    base: str, process: subprocess.Popen[bytes], log: Path, *, within: float = 30.0, pause: float = 0.1
) -> None:
    """Return once `base` answers /api/v1/health with 200; fail with the service's log if it exits
    or does not answer within `within` seconds."""
    deadline = time.monotonic() + within
    while True:
        try:
            if httpx.get(base + "/api/v1/health", timeout=max(1.0, pause * 10)).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            raise AssertionError(log.read_text(errors="replace"))
        time.sleep(pause)
