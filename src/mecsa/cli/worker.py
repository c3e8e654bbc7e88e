"""`mecsa worker --broker redis://...`: run the chunks of distributed scans (`mecsa scan --engine celery`)."""

from __future__ import annotations

import click

from mecsa.cli.common import STORE_HELP, usage_error

WORKER_HELP = """Run chunks of `mecsa scan --engine celery` scans queued on the broker, until SIGTERM.

CONCURRENCY processes (default: the number of cores), each assessing one chunk at a time with the
scan's own --concurrency. Results go to --store (give every worker and the submitter the same
PostgreSQL URL when they run on several hosts). A chunk whose worker dies is delivered again; a
domain that was being assessed when a worker died MAX_ATTEMPTS times is stored as an error.
The per-IP connection limit and pace, and the observation cache, are shared through the broker's
Redis, which must be trusted (it holds pickled observations): see docs/scale-out.md."""


@click.command("worker", help=WORKER_HELP)
@click.option("--broker", required=True, help="The Redis URL: redis://HOST:PORT/DB.")
@click.option(
    "--concurrency",
    type=click.IntRange(min=1, max=256),
    default=None,
    help="Worker processes (default: the number of cores).",
)
@click.option("--store", default=None, help=STORE_HELP)
@click.option(
    "--max-attempts",
    type=click.IntRange(min=1, max=100),
    default=3,
    help="Attempts per domain before it is stored as an error.",
)
@click.option(
    "--visibility-timeout",
    type=click.FloatRange(min=1.0),
    default=3600.0,
    help="Seconds before the chunk of a vanished worker is delivered again.",
)
@click.option("--loglevel", default="INFO", help="Celery's log level.")
def worker_command(
    broker: str,
    concurrency: int | None,
    store: str | None,
    max_attempts: int,
    visibility_timeout: float,
    loglevel: str,
) -> None:
    import os

    from mecsa.distributed.app import check_broker
    from mecsa.distributed.worker import run_worker
    from mecsa.store import StoreError, StoreUrlError

    try:
        check_broker(broker)
    except ValueError as exc:
        usage_error(str(exc))
    try:
        run_worker(
            broker,
            store_url=store,
            concurrency=concurrency or os.cpu_count() or 1,
            max_attempts=max_attempts,
            visibility_timeout_s=visibility_timeout,
            loglevel=loglevel.upper(),
        )
    except (StoreError, StoreUrlError) as exc:
        usage_error(str(exc))
