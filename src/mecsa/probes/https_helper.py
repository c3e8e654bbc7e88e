"""The cold CLI's HTTPS helper process: started, and ended (issue 20). The talking is `https_remote`.

Why. In a cold `mecsa assess`, the MTA-STS policy fetch cost ~55 ms of the run's one busy core:
httpx and its stack (httpcore, anyio, h11, certifi: ~30 ms of imports), the client with its trust
store, and the TLS handshake. A cold run is CPU-bound while the machine's other cores sit idle.
So the CLI starts this helper first thing; it imports httpx and builds its client while the main
process works, and the main process only sends it the requests (`mecsa.probes.https_remote`).

Spawned, not forked: a fresh `python -m mecsa.probes.https_helper FD CA_FILE` inherits no threads,
event loop or sockets, only its end of a socketpair (and /dev/null for its standard streams). It
lives in a session of its own, so that the terminal's Ctrl-C is the main process's to handle, and
it ends when the main process closes its end of the pair, or dies.

This module is imported before the cold CLI's first DNS question, so it imports nothing heavy:
`os.posix_spawn`, not `subprocess`; socket and signal, which the head start and asyncio load
anyway; no asyncio, no ssl.

When. Only where a core is (partly) idle: the helper's start-up costs ~150 ms of CPU, three times
what it saves the main process, so with one CPU, or with every core busy (a shell loop running
`mecsa assess` in parallel), it would slow the runs down instead. `MECSA_HTTPS_HELPER=1` starts it
regardless, `0` never (`auto`, the default, decides by the CPUs and the load average). Library
callers, bulk scans and the web service make their requests in-process, where the imports are
paid once per process anyway.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import sys
from collections.abc import Iterator

MODULE = "mecsa.probes.https_helper"
# No interpreter to start (OSError; TypeError: sys.executable can be empty), or no posix_spawn
# or setsid on this platform.
_CANNOT_SPAWN = (OSError, TypeError, AttributeError, NotImplementedError)


SWITCH = "MECSA_HTTPS_HELPER"


def worth_starting() -> bool:
    """Whether a helper would run beside this process rather than take turns with it (see above)."""
    choice = os.environ.get(SWITCH, "auto").strip().lower()
    if choice in ("0", "1"):
        return choice == "1"
    if choice != "auto":
        sys.stderr.write(f"mecsa: {SWITCH} must be 0, 1 or auto, not {choice!r}; using auto\n")
    try:
        cpus = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # no affinity call on this platform
        cpus = os.cpu_count() or 1
    try:
        load = os.getloadavg()[0]
    except (AttributeError, OSError):
        load = 0.0
    # A core for this process, and a part of another idle, on average over the last minute. A
    # loop of runs one after the other stays near 1.5 on two cores (a run and its helper): on;
    # two at a time reach 2 and more: off.
    return cpus >= 2 and cpus - load >= 0.25


class HelperProcess:
    """A running helper: its pid and our end of the socketpair (non-blocking, for the event loop)."""

    def __init__(self, pid: int, sock: socket.socket) -> None:
        self.pid = pid
        self.sock = sock
        self._reaped = False

    @classmethod
    def spawn(cls, ca_file: str | None) -> HelperProcess | None:
        """Start the helper for this trust store; None when it cannot be started."""
        ours, theirs = socket.socketpair()
        try:
            theirs.set_inheritable(True)
            null = [(os.POSIX_SPAWN_OPEN, fd, os.devnull, os.O_RDWR, 0) for fd in (0, 1, 2)]
            # -P: the working directory is not put on the helper's path (a `mecsa` there is not
            # the one that is running).
            argv = [sys.executable, "-P", "-m", MODULE, str(theirs.fileno()), ca_file or ""]
            pid = os.posix_spawn(sys.executable, argv, os.environ, file_actions=null, setsid=True)
        except _CANNOT_SPAWN:
            ours.close()
            return None
        finally:
            theirs.close()
        ours.setblocking(False)
        return cls(pid, ours)

    def kill(self) -> None:
        if not self._reaped:
            with contextlib.suppress(OSError):
                os.kill(self.pid, signal.SIGKILL)

    def close(self) -> None:
        """Close our end: the helper sees the end of its input and exits. Its exit is not waited for."""
        self.sock.close()
        self.reap()

    def reap(self) -> bool:
        """Collect the helper's exit status if it has ended (no zombie left): whether it has."""
        if self._reaped:
            return True
        with contextlib.suppress(ChildProcessError):
            pid, _ = os.waitpid(self.pid, os.WNOHANG)
            if pid == 0:
                return False
        self._reaped = True
        return True


@contextlib.contextmanager
def started(ca_file: str | None, *, enabled: bool = True) -> Iterator[HelperProcess | None]:
    """A helper for the duration of the block (None: none started), closed after it."""
    helper = HelperProcess.spawn(ca_file) if enabled and worth_starting() else None
    try:
        yield helper
    finally:
        if helper is not None:
            helper.close()


def main(argv: list[str]) -> int:
    """The helper process: `python -m mecsa.probes.https_helper FD CA_FILE` (see the module's doc).

    Entered here, in a module that imports almost nothing, so that the dataclass and regex caches
    are in place before the helper's imports (asyncio, ssl, httpx) run.
    """
    from mecsa import codecache, importcache, regexcache

    importcache.install(command="https-helper")
    from mecsa.probes.httpx_guard import block_httpx_cli

    codecache.install(command="https-helper")
    regexcache.install(command="https-helper")
    block_httpx_cli()
    from mecsa.probes import https_remote

    return https_remote.serve(int(argv[0]), argv[1] or None)


def exit_now(code: int) -> None:
    """Leave once the exit hooks (the caches' saves) have run, without the interpreter's teardown.

    Finalising the helper's ~300 modules took 25-35 ms of CPU after the main process closed its
    end, on the core the next command starts on: a loop of `mecsa assess` runs paid it in each.
    Its standard streams are /dev/null: nothing is owed to them.
    """
    import atexit

    atexit._run_exitfuncs()
    os._exit(code)


if __name__ == "__main__":
    exit_now(main(sys.argv[1:]))
