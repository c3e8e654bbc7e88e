"""Warm in-process CPU per full assessment (issue 20): the bulk scanner's cost of one domain.

The servers of bench_latency.py (mecsa's ZoneServer, three aiosmtpd MX hosts with STARTTLS and
TLSA, the MTA-STS policy over HTTPS) run without delay in a child process, so that the CPU
measured here is the client's alone. The parent warms up (imports, TLS contexts, the suffix list)
and then runs `--runs` full assessments of `mail.bench.test` one after another, every check,
TLS sweep included, each with a fresh DnsClient (its own cache, as a single `mecsa assess`), and
reports the CPU time (`time.process_time()`) per assessment. Exits 1 above the target.

    .venv/bin/python benchmarks/bench_warm.py [--runs 30] [--profile FILE] [--no-sweep] [--forget]

The same domain is assessed each time, so the process-wide caches of DNS names and rdata
(`mecsa.dns.names`, `mecsa.dns.reply`) would serve later runs what a scan of new domains would
parse afresh: `--forget` empties them before each assessment, the honest figure for a scan.
The load of a shared machine inflates CPU times; callgrind's instruction counts do not (run
with `--runs 1` and `--runs 11` under `valgrind --tool=callgrind`, subtract, divide by 10).

Loopback only. With `--profile FILE` the measured runs go under cProfile (slower; the figure
printed is then the profiled one) and the top functions are listed.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import cProfile
import logging
import multiprocessing
import multiprocessing.connection
import os
import pstats
import ssl
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import bench_latency as lab

from mecsa.assess import assess
from mecsa.dns import reply
from mecsa.dns.resolver import DnsClient, Nameserver
from mecsa.dns.zoneserver import ZoneData
from mecsa.observe import AssessOptions, SharedObservations
from mecsa.scan.records import assessment_record

TARGET_CPU_MS = 30.0
DOCUMENT: list[float] = []  # CPU of building the stored document, per assessment
SERVER_LIFETIME_S = 600  # the server process ends by itself even if the parent dies


def serve(conn: multiprocessing.connection.Connection) -> None:
    """The child: every server, without delay; sends (dns, smtp, https ports, CA file), then runs."""

    async def run() -> None:
        logging.getLogger("mail.log").setLevel(logging.CRITICAL)  # refused weak-TLS trials are expected
        tmp = Path(tempfile.mkdtemp(prefix="mecsa-bench-warm-"))
        ca_file, cert, key, spki = lab.make_pki(tmp)
        server_tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        server_tls.load_cert_chain(cert, key)
        loop = asyncio.get_running_loop()
        lab.SlowSMTP.delay = 0.0
        probe = await loop.create_server(asyncio.Protocol, "127.0.0.2", 0)
        smtp_port = probe.sockets[0].getsockname()[1]
        probe.close()

        def factory(name: str) -> Any:
            return lambda: lab.SlowSMTP(
                lab.Handler(), hostname=f"{name}.{lab.DOMAIN}", tls_context=server_tls, ident="bench"
            )

        servers = [await loop.create_server(factory(n), a, smtp_port) for n, a in lab.MX_HOSTS]
        https = await lab.serve_policy(0.0, lab.POLICY.encode(), server_tls, 0)
        tld = "@ SOA ns.bench.test. hostmaster.bench.test. 1 7200 3600 1209600 300\n@ NS ns.bench.test.\n"
        data = ZoneData.from_texts(
            {"bench.test": lab.zone_text(smtp_port, spki), "test": tld}, secure=["bench.test", "test"]
        )
        dns_server = await lab.DelayedZoneServer(data, 0.0).start()
        conn.send((dns_server.port, smtp_port, https.sockets[0].getsockname()[1], str(ca_file)))
        done = loop.create_future()

        def stop() -> None:
            if not done.done():
                done.set_result(None)

        loop.add_reader(conn.fileno(), stop)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(done, SERVER_LIFETIME_S)
        for server in (*servers, https):
            server.close()
        await dns_server.stop()

    asyncio.run(run())


async def measure(args: argparse.Namespace, ports: tuple[int, int, int, str]) -> list[float]:
    dns_port, smtp_port, https_port, ca_file = ports
    options = AssessOptions(
        dkim_selectors=("bench",),
        ca_file=ca_file,
        smtp_port=smtp_port,
        https_port=https_port,
        tls_versions=not args.no_sweep,
        only=frozenset(args.only.split(",")) if args.only else frozenset(),
    )

    # As in a scan: the transport observations (SMTP sessions, sweeps, MTA-STS is per domain) are
    # shared across the assessments, each domain's DNS is its own; the stored document is built.
    shared = None if args.cold_transport else SharedObservations()

    async def one() -> float:
        client = DnsClient([Nameserver("127.0.0.1", dns_port)], timeout=2.0, attempts=2)
        if args.forget:
            reply.forget()
        started = time.process_time()
        assessment = await assess(lab.DOMAIN, client, options, shared=shared)
        built = time.process_time()
        assessment_record(assessment, "mecsa-st", 1)
        took = time.process_time() - started
        DOCUMENT.append(time.process_time() - built)
        bad = {p: v.status.value for p, v in assessment.verdicts.items() if v.status.value != "pass"}
        if bad:
            raise SystemExit(f"not every verdict passed: {bad}")
        return took

    for _ in range(args.warmup):
        await one()
    profiler = cProfile.Profile(time.process_time) if args.profile else None
    if profiler:
        profiler.enable()
    cpus = [await one() for _ in range(args.runs)]
    if profiler:
        profiler.disable()
        profiler.dump_stats(args.profile)
        pstats.Stats(args.profile).sort_stats("cumulative").print_stats(45)
        pstats.Stats(args.profile).sort_stats("tottime").print_stats(30)
    return cpus


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--profile", metavar="FILE")
    parser.add_argument("--only", help="comma-separated checks (the CPU of a part; the target is for all)")
    parser.add_argument("--no-sweep", action="store_true", help="AssessOptions(tls_versions=False)")
    parser.add_argument(
        "--forget",
        action="store_true",
        help="empty the DNS name and rdata caches before each assessment, as if every domain were new",
    )
    parser.add_argument(
        "--cold-transport",
        action="store_true",
        help="every assessment runs its own SMTP sessions and sweep (no scan-wide observation cache)",
    )
    args = parser.parse_args()
    parent, child = multiprocessing.Pipe()
    server = multiprocessing.Process(target=serve, args=(child,), daemon=True)
    server.start()
    try:
        ports = parent.recv()
        cpus = asyncio.run(measure(args, ports))
    finally:
        parent.send("stop")
        server.join(10)
        if server.is_alive():
            server.kill()
    median = statistics.median(cpus) * 1000
    print(
        f"CPU per full assessment (client only, warm, {'no sweep' if args.no_sweep else 'sweep'}, "
        f"{'cold transport' if args.cold_transport else 'transport shared as in a scan'}"
        f"{', DNS caches emptied before each' if args.forget else ''}): "
        f"median {median:.1f} ms, min {min(cpus) * 1000:.1f} ms, max {max(cpus) * 1000:.1f} ms, "
        f"n={len(cpus)}; load average {os.getloadavg()[0]:.1f}"
    )
    print(
        "  of which the stored document (assessment_record): median"
        f" {statistics.median(DOCUMENT) * 1000:.1f} ms"
    )
    if median > TARGET_CPU_MS and not (args.profile or args.cold_transport or args.only):
        print(f"TARGET MISSED: {median:.1f} ms > {TARGET_CPU_MS:g} ms")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
