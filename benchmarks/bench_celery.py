"""`mecsa scan --engine celery` against the local engine at equal process counts: domains/min and CPU.

The target set is bench_scan.py's (everything on loopback: DNS, three STARTTLS MX hosts and a
broken one, the MTA-STS host of every domain), served by its child process. For each process
count P (default 1, 2 and 4):

- local: `mecsa.scan.run.scan` with `workers=P` (the `mecsa scan --workers P` code path);
- celery: a redis-server on a loopback port, one `mecsa worker --concurrency P` process (P pool
  processes) and the submitter (`mecsa.distributed.submit.submit_scan`, as `--engine celery`).

Both write the same SQLite store kind and have as many domains in flight (celery: --concurrency is
per worker process, so each gets its share). Reported: wall time from the submission (the celery
worker is started and ready before, as an operator runs it) and domains/min; CPU seconds of
everything that ran for the scan (the scan process, its workers, and for celery the worker
processes, their start-up included, and redis-server; the target servers excluded); and the
overhead, celery against local, in wall time and in CPU. The machine may be loaded: CPU is the steadier
figure. Each MX host's peak of simultaneous connections is printed too (at most 2 is the rule).

    .venv/bin/python benchmarks/bench_celery.py [-n 1000] [--processes 1,2,4] [--chunk-size 100]
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import io
import multiprocessing
import os
import resource
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_scan import domain, options, serve

from mecsa.scan.assessor import ScanConfig
from mecsa.scan.run import ScanRequest


@dataclass
class Run:
    engine: str
    processes: int
    done: int
    wall: float
    cpu: float

    @property
    def per_minute(self) -> float:
        return 60 * self.done / self.wall


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def self_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


async def local_run(config: ScanConfig, listing: Path, folder: Path, processes: int) -> Run:
    from mecsa.scan.run import scan
    from mecsa.store import open_store

    request = ScanRequest(source=str(listing), config=config, output=folder / f"local{processes}.jsonl",
                          workers=processes)  # fmt: skip
    before_self, before_children = self_cpu(), children_cpu()
    started = time.perf_counter()
    with open_store(folder / f"local{processes}.sqlite") as store:
        result = await scan(request, store, io.StringIO(), io.StringIO())
    wall = time.perf_counter() - started
    cpu = self_cpu() - before_self + children_cpu() - before_children
    return Run("local", processes, result.outcome.counters.done, wall, cpu)


def start_cluster(
    folder: Path, store_path: Path, processes: int
) -> tuple[subprocess.Popen[bytes], subprocess.Popen[bytes], str]:
    """redis-server on a loopback port and one `mecsa worker --concurrency P`."""
    from mecsa.store import open_store

    port = free_port()
    redis = subprocess.Popen(
        ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
         "--dir", str(folder), "--logfile", str(folder / f"redis{processes}.log")],
    )  # fmt: skip
    broker = f"redis://127.0.0.1:{port}/0"
    open_store(store_path).close()  # created before the worker, as an operator would
    with (folder / f"worker{processes}.log").open("w") as log:
        worker = subprocess.Popen(
            [sys.executable, "-m", "mecsa", "worker", "--broker", broker, "--store", str(store_path),
             "--concurrency", str(processes), "--loglevel", "INFO"],
            stdout=subprocess.DEVNULL, stderr=log,
        )  # fmt: skip
    return redis, worker, broker


async def celery_run(config: ScanConfig, listing: Path, folder: Path, processes: int, chunk: int) -> Run:
    from mecsa.distributed.submit import submit_scan
    from mecsa.store import open_store

    store_path = folder / f"celery{processes}.sqlite"
    before_self, before_children = self_cpu(), children_cpu()
    booted = time.perf_counter()
    redis, worker, broker = start_cluster(folder, store_path, processes)
    log = folder / f"worker{processes}.log"
    while "ready." not in log.read_text(errors="replace"):  # the pool is up: operators start it once
        assert worker.poll() is None, log.read_text()
        await asyncio.sleep(0.05)
    started = time.perf_counter()
    print(f"celery {processes} processes: worker ready in {started - booted:.1f} s", flush=True)
    # --concurrency is per worker process for the celery engine: split it, for as many in flight as local
    per_process = dataclasses.replace(config, concurrency=max(1, config.concurrency // processes))
    output = folder / f"celery{processes}.jsonl"
    request = ScanRequest(source=str(listing), config=per_process, output=output)
    try:
        with open_store(store_path) as store:
            result = await submit_scan(request, store, broker, io.StringIO(), io.StringIO(), chunk_size=chunk)
    finally:
        await asyncio.to_thread(stop_cluster, redis, worker)
    wall = time.perf_counter() - started  # from the submission: worker start-up not included
    cpu = self_cpu() - before_self + children_cpu() - before_children
    return Run("celery", processes, result.outcome.counters.done, wall, cpu)


def stop_cluster(redis: subprocess.Popen[bytes], worker: subprocess.Popen[bytes]) -> None:
    worker.send_signal(signal.SIGTERM)  # warm shutdown, then the pool is gone
    worker.wait(60)
    redis.terminate()
    redis.wait(10)


async def main(args: argparse.Namespace) -> int:
    folder = Path(tempfile.mkdtemp(prefix="mecsa-celery-bench-"))
    context = multiprocessing.get_context("spawn")
    parent_end, child_end = context.Pipe()
    server = context.Process(target=serve, args=(args.n, folder, child_end), daemon=True)
    server.start()
    ports: tuple[int, int, int] = await asyncio.to_thread(parent_end.recv)
    listing = folder / "list.txt"
    listing.write_text("".join(f"{domain(i)}\n" for i in range(args.n)))
    config = ScanConfig(
        options=options(folder / "ca.pem", ports), resolvers=(f"127.0.0.1:{ports[0]}",),
        concurrency=args.concurrency,
    )  # fmt: skip
    runs: list[Run] = []
    for processes in (int(p) for p in args.processes.split(",")):
        for engine in ("local", "celery"):
            if engine == "local":
                run = await local_run(config, listing, folder, processes)
            else:
                run = await celery_run(config, listing, folder, processes, args.chunk_size)
            runs.append(run)
            print(
                f"{run.engine:>6} {run.processes} processes: {run.done} domains, wall {run.wall:.1f} s "
                f"= {run.per_minute:.0f} domains/min, CPU {run.cpu:.1f} s "
                f"({1000 * run.cpu / max(run.done, 1):.1f} ms/domain)",
                flush=True,
            )
    parent_end.send("logs")
    host_logs: dict[str, tuple[int, int]] = await asyncio.to_thread(parent_end.recv)
    parent_end.send("stop")
    server.join(10)
    print(f"\n{args.n} domains, concurrency {args.concurrency}, chunk size {args.chunk_size}, "
          f"every check; {os.cpu_count()} cores (load average {os.getloadavg()[0]:.1f})")  # fmt: skip
    print(
        "processes | local dom/min | celery dom/min | wall overhead | CPU local | CPU celery | CPU overhead"
    )
    by = {(r.engine, r.processes): r for r in runs}
    for processes in sorted({r.processes for r in runs}):
        local, dist = by[("local", processes)], by[("celery", processes)]
        wall_over = 100 * (local.per_minute / dist.per_minute - 1)
        cpu_over = 100 * (dist.cpu / local.cpu - 1)
        rates = f"{processes:>9} | {local.per_minute:>13.0f} | {dist.per_minute:>14.0f} | {wall_over:>12.1f}%"
        print(f"{rates} | {local.cpu:>8.1f}s | {dist.cpu:>9.1f}s | {cpu_over:>11.1f}%")
    for name, (peak, total) in host_logs.items():
        print(f"MX {name}: {total} connections over all runs, at most {peak} at once")
    return 0


def parse() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("-n", type=int, default=1000, help="domains in the list")
    parser.add_argument("--processes", default="1,2,4", help="comma-separated process counts")
    parser.add_argument("--concurrency", type=int, default=100, help="domains in flight per scan")
    parser.add_argument("--chunk-size", type=int, default=25)
    return parser.parse_args()


if __name__ == "__main__":
    sys.exit(asyncio.run(main(parse())))
