"""`mecsa worker`: a Celery worker of distributed scans, `concurrency` processes on this host."""

from __future__ import annotations

import os
import socket

from mecsa.distributed.app import DEFAULT_VISIBILITY_TIMEOUT_S, make_app


def run_worker(
    broker: str,
    *,
    store_url: str | None,
    concurrency: int,
    max_attempts: int,
    visibility_timeout_s: float = DEFAULT_VISIBILITY_TIMEOUT_S,
    loglevel: str = "INFO",
) -> None:
    """Serve chunks until SIGTERM (warm shutdown: running chunks finish) or SIGINT."""
    from mecsa.store import open_store

    # Migrate once here, before the pool forks: its processes open the store as it is.
    open_store(store_url).close()
    app = make_app(
        broker, store_url=store_url, visibility_timeout_s=visibility_timeout_s, max_attempts=max_attempts
    )
    app.worker_main(
        [
            "worker",
            f"--concurrency={concurrency}",
            "--pool=prefork",
            f"--loglevel={loglevel}",
            # one name per process: several workers may run on one host
            f"--hostname=mecsa-{os.getpid()}@{socket.gethostname()}",
            "--without-gossip",
            "--without-mingle",
            "--without-heartbeat",
        ]
    )
