"""What the builders hand the runner: one daemon to start, and the sockets that say it is ready."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

Listen = tuple[str, str, int]  # ("tcp" | "udp" | "tcp6", address, port); tcp6: any address only


@dataclass(frozen=True, slots=True)
class Daemon:
    """One daemon to start in a node's namespace.

    `forks`: the command starts the daemon and exits (postfix start), so readiness is judged
    by the sockets alone. `devlog`: the syslog sink socket its /dev/log leads to.
    """

    name: str
    node: str
    argv: tuple[str, ...]
    listens: tuple[Listen, ...] = ()
    devlog: Path | None = None
    forks: bool = False
