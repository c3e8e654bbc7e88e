"""A throwaway Redis from Debian's `redis-server`, on a loopback port (as tests/pgcluster.py for PostgreSQL).

    with RedisServer() as server:            # or RedisServer(prefix=[...]) to run it in a namespace
        url = server.url()                   # redis://127.0.0.1:PORT/0

`appendonly` keeps the data across `restart()` (the broker-restart test); the files live in a
directory of its own, removed at `stop()`.
"""

from __future__ import annotations

import contextlib
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType

import pytest

REDIS_SERVER = "/usr/bin/redis-server"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


class RedisServer:
    def __init__(self, *, prefix: Sequence[str] = (), port: int | None = None, persist: bool = False) -> None:
        if not Path(REDIS_SERVER).exists():
            pytest.skip("Debian's redis-server is not installed (scripts/bootstrap installs it)")
        self.prefix = list(prefix)
        self.port = port or free_port()
        self.persist = persist
        self.directory = Path(tempfile.mkdtemp(prefix="mecsa-redis-"))
        self.process: subprocess.Popen[bytes] | None = None

    def url(self, db: int = 0) -> str:
        return f"redis://127.0.0.1:{self.port}/{db}"

    def start(self) -> RedisServer:
        argv = [
            REDIS_SERVER, "--port", str(self.port), "--bind", "127.0.0.1", "--dir", str(self.directory),
            "--save", "", "--appendonly", "yes" if self.persist else "no", "--appendfsync", "always",
            "--daemonize", "no", "--logfile", str(self.directory / "redis.log"),
        ]  # fmt: skip
        self.process = subprocess.Popen([*self.prefix, *argv], stdin=subprocess.DEVNULL)
        self._wait_ready()
        return self

    def _wait_ready(self, timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.process is not None
            if self.process.poll() is not None:
                raise RuntimeError(f"redis-server exited: {self.log()}")
            if self._ping():
                return
            time.sleep(0.02)
        raise RuntimeError(f"redis-server did not answer within {timeout} s: {self.log()}")

    def _ping(self) -> bool:
        """PING over a socket of our own (the namespace's loopback is reached through `prefix`)."""
        if self.prefix:
            probe = [*self.prefix, "redis-cli", "-p", str(self.port), "ping"]
            done = subprocess.run(probe, capture_output=True, text=True, check=False)
            return done.stdout.strip() == "PONG"
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", self.port), 0.5) as s:
            s.sendall(b"PING\r\n")
            return s.recv(64).startswith(b"+PONG")
        return False

    def log(self) -> str:
        path = self.directory / "redis.log"
        return path.read_text(errors="replace")[-2000:] if path.exists() else ""

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)

    def restart(self, down_s: float = 0.0) -> None:
        """Stop the server abruptly and start it again on the same port and data directory."""
        self.kill()
        time.sleep(down_s)
        self.start()

    def stop(self) -> None:
        self.kill()
        shutil.rmtree(self.directory, ignore_errors=True)

    def __enter__(self) -> RedisServer:
        return self.start()

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
