"""`mecsa worker --broker redis://...`: run the chunks of distributed scans (`mecsa scan --engine celery`)."""

from __future__ import annotations

from typing import Annotated

import typer

from mecsa.cli.common import usage_error

WORKER_HELP = """Run chunks of `mecsa scan --engine celery` scans queued on the broker, until SIGTERM.

CONCURRENCY processes (default: the number of cores), each assessing one chunk at a time with the
scan's own --concurrency. Results go to --store (give every worker and the submitter the same
PostgreSQL URL when they run on several hosts). A chunk whose worker dies is delivered again; a
domain that was being assessed when a worker died MAX_ATTEMPTS times is stored as an error.
The per-IP connection limit and pace, and the observation cache, are shared through the broker's
Redis, which must be trusted (it holds pickled observations): see docs/scale-out.md."""


def register(app: typer.Typer) -> None:
    app.command("worker", help=WORKER_HELP)(worker_command)


def worker_command(
    broker: Annotated[str, typer.Option("--broker", help="The Redis URL: redis://HOST:PORT/DB.")],
    concurrency: Annotated[
        int | None, typer.Option("--concurrency", help="Worker processes (default: cores).", min=1, max=256)
    ] = None,
    store: Annotated[
        str | None,
        typer.Option(
            "--store",
            help="A SQLite file or a postgresql:// URL "
            "(default: $MECSA_STORE, else ~/.local/share/mecsa/store.sqlite).",
        ),
    ] = None,
    max_attempts: Annotated[
        int,
        typer.Option(
            "--max-attempts", help="Attempts per domain before it is stored as an error.", min=1, max=100
        ),
    ] = 3,
    visibility_timeout: Annotated[
        float,
        typer.Option(
            "--visibility-timeout",
            help="Seconds before the chunk of a vanished worker is delivered again.",
            min=1.0,
        ),
    ] = 3600.0,
    loglevel: Annotated[str, typer.Option("--loglevel", help="Celery's log level.")] = "INFO",
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
