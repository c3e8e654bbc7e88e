"""A throwaway PostgreSQL cluster from Debian's `postgresql` package, on a loopback port.

PostgreSQL refuses to run as root (NOTES.md): as root the cluster runs as the `postgres` user
through runuser; otherwise as the current user. `fsync=off`: the data is thrown away anyway.
Other test modules reuse it: `with PostgresCluster() as pg: open_store(pg.create_database("db"))`.

The cluster lives in a directory of its own under the system temp directory, not under pytest's
tmp_path: pytest resets its base directory to mode 0700 whenever a session starts (any session of
root on this machine), which would lock the postgres user out mid-test.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path
from types import TracebackType

import pytest


def postgres_bin() -> Path | None:
    """The newest installed server's bin directory, or None without the package."""
    root = Path("/usr/lib/postgresql")
    versions = sorted(
        (p for p in root.glob("*/bin") if (p / "initdb").exists()),
        key=lambda p: int(p.parent.name) if p.parent.name.isdigit() else 0,
    )
    return versions[-1] if versions else None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


class PostgresCluster:
    def __init__(self) -> None:
        found = postgres_bin()
        if found is None:
            pytest.skip("Debian's postgresql package is not installed (scripts/bootstrap installs it)")
        self.bin = found
        self.directory = Path(tempfile.mkdtemp(prefix="mecsa-pg-"))
        self.port = free_port()
        self._as_root = os.geteuid() == 0

    def _run(self, *args: str) -> subprocess.CompletedProcess[str]:
        command = [str(self.bin / args[0]), *args[1:]]
        if self._as_root:
            command = ["runuser", "-u", "postgres", "--", *command]
        return subprocess.run(command, check=True, capture_output=True, text=True, timeout=60)

    def start(self) -> PostgresCluster:
        if self._as_root:
            shutil.chown(self.directory, "postgres")
        data = self.directory / "data"
        self._run("initdb", "-D", str(data), "-A", "trust", "-U", "postgres", "--no-sync")
        options = f"-k {self.directory} -c listen_addresses=127.0.0.1 -p {self.port} -c fsync=off"
        self._run("pg_ctl", "-D", str(data), "-o", options, "-l", str(self.directory / "log"), "-w", "start")
        return self

    def stop(self) -> None:
        with contextlib.suppress(subprocess.SubprocessError):
            self._run("pg_ctl", "-D", str(self.directory / "data"), "-m", "fast", "-w", "stop")
        shutil.rmtree(self.directory, ignore_errors=True)

    def create_database(self, name: str) -> str:
        self._run("createdb", "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres", name)
        return self.url(name)

    def url(self, database: str) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def __enter__(self) -> PostgresCluster:
        return self.start()

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
