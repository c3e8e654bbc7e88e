"""Bulk DNS-only assessments: N domains, bounded concurrency, one shared DnsClient.

A loopback DNS server (mecsa's ZoneServer, answering without delay) runs in a child process so
that the CPU time measured here is mecsa's alone; it memoises its wire answers per question so
that it is not the bottleneck. The parent assesses N domains with `--concurrency` at once and
reports domains per minute, CPU time, peak RSS and DNS questions per domain.

    .venv/bin/python benchmarks/bench_bulk.py [-n 1000] [--concurrency 200] [--profile FILE]

With `--profile FILE` the run is done under cProfile; the top functions are printed and the raw
profile is written to FILE (read it with `python -m pstats FILE`).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import collections
import contextlib
import cProfile
import multiprocessing
import multiprocessing.connection
import pstats
import resource
import socket
import sys
import time
from typing import Any

import dns.name
import dns.zone
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from mecsa.assess import assess
from mecsa.dns.answer import Rcode
from mecsa.dns.resolver import DnsClient, Nameserver
from mecsa.dns.zoneserver import ZoneData, ZoneServer, _Udp
from mecsa.observe import AssessOptions

ORIGIN = "bulk.test"
DNS_CHECKS = frozenset({"mx", "spf", "dmarc", "dkim", "tls-rpt", "dnssec"})
SERVER_LIFETIME_S = 150  # the server process ends by itself even if the parent dies


def domain(i: int) -> str:
    return f"d{i:05d}.{ORIGIN}"


class IndexedZoneData(ZoneData):
    """ZoneData whose zone lookups walk up the name (ZoneData scans every zone: O(zones) per query)."""

    def zone_for(self, qname: dns.name.Name) -> dns.zone.Zone | None:
        name = qname
        while True:
            zone = self.zones.get(name)
            if zone is not None or name == dns.name.root:
                return zone
            name = name.parent()

    def is_secure(self, qname: dns.name.Name) -> bool:
        zone = self.zone_for(qname)
        return zone is not None and zone.origin in self.secure_zones


def zone_texts(n: int) -> dict[str, str]:
    """One small zone per domain (the zone server's NXDOMAIN test scans a zone's nodes), one shared."""
    public = rsa.generate_private_key(public_exponent=65537, key_size=2048).public_key()
    der = public.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    b64 = base64.b64encode(der).decode()
    dkim = f'"v=DKIM1; k=rsa; p={b64[:200]}" "{b64[200:]}"'
    head = f"$TTL 300\n@ SOA ns.{ORIGIN}. hostmaster.{ORIGIN}. 1 7200 3600 1209600 300\n@ NS ns.{ORIGIN}.\n"
    zones = {
        ORIGIN: head
        + "ns A 127.0.0.1\n"
        + '_spf TXT "v=spf1 ip4:192.0.2.0/24 include:_spf2.bulk.test ~all"\n'
        + '_spf2 TXT "v=spf1 ip4:198.51.100.0/24 a:out.bulk.test ~all"\n'
        + "out A 192.0.2.10\n"
    }
    for i in range(n):
        a, b = 1 + i // 250, 1 + i % 250  # loopback addresses: nothing ever connects to them here
        zones[domain(i)] = (
            head
            + "\n".join(
                [
                    "@ MX 10 mx1",
                    "@ MX 20 mx2",
                    f"mx1 A 127.1.{a}.{b}",
                    f"mx2 A 127.2.{a}.{b}",
                    f'@ TXT "v=spf1 mx include:_spf.{ORIGIN} -all"',
                    f'_dmarc TXT "v=DMARC1; p=reject; rua=mailto:dmarc@{domain(i)}"',
                    f"bench._domainkey TXT {dkim}",
                    f'_smtp._tls TXT "v=TLSRPTv1; rua=mailto:tlsrpt@{domain(i)}"',
                ]
            )
            + "\n"
        )
    zones["test"] = head  # the TLD answers like a real one: RFC 9989's walk ends at _dmarc.test
    return zones


class _MemoUdp(_Udp):
    """The zone server's answers, memoised by the query's wire form after its ID."""

    def __init__(self, data: ZoneData, transport: object) -> None:
        super().__init__(data)
        self.transport = transport  # type: ignore[assignment]
        self.memo: dict[bytes, bytes] = {}
        self._sending: tuple[bytes, tuple[str, int]] | None = None

    def datagram_received(self, wire: bytes, addr: tuple[str, int]) -> None:
        cached = self.memo.get(wire[2:])
        if cached is not None:
            self.transport.sendto(wire[:2] + cached, addr)  # type: ignore[union-attr]
            return
        real = self.transport
        outer = self

        class Capture:
            def sendto(self, reply: bytes, to: tuple[str, int]) -> None:
                outer.memo[wire[2:]] = reply[2:]
                real.sendto(reply, to)  # type: ignore[union-attr]

        self.transport = Capture()  # type: ignore[assignment]
        try:
            super().datagram_received(wire, addr)
        finally:
            self.transport = real


def serve(n: int, conn: multiprocessing.connection.Connection, big_buffer: bool) -> None:
    async def run() -> None:
        texts = zone_texts(n)
        data = IndexedZoneData.from_texts(texts, secure=list(texts))
        server = await ZoneServer(data).start()
        assert server._udp is not None
        server._udp.set_protocol(_MemoUdp(data, server._udp))
        if big_buffer:
            # The default receive buffer (~208 KiB, ~160 datagrams) overflows under mecsa's default
            # 512 questions in flight, and each lost datagram costs a whole timeout. Root may force more.
            sock = server._udp.get_extra_info("socket")
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.SOL_SOCKET, getattr(socket, "SO_RCVBUFFORCE", 33), 16 << 20)
        conn.send(server.port)
        loop = asyncio.get_running_loop()
        stop = loop.create_future()

        def on_message() -> None:
            if not stop.done():
                stop.set_result(None)

        loop.add_reader(conn.fileno(), on_message)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop, SERVER_LIFETIME_S)
        await server.stop()

    asyncio.run(run())


class CountingClient(DnsClient):
    """Counts attempts and timed-out attempts (a lost UDP datagram costs a whole timeout)."""

    attempts_sent = 0
    timeouts = 0

    async def _ask_one(self, query: Any, server: Nameserver) -> Any:
        reply = await super()._ask_one(query, server)
        CountingClient.attempts_sent += 1
        CountingClient.timeouts += reply.rcode is Rcode.TIMEOUT
        return reply


Outcome = tuple[float, collections.Counter[str], list[int]]


async def bulk(
    port: int, n: int, concurrency: int, in_flight: int = 512, checks: frozenset[str] = DNS_CHECKS
) -> Outcome:
    """Assess domains 0..n-1, `concurrency` at once; wall seconds, verdict counts, questions per domain."""
    server = [Nameserver("127.0.0.1", port)]
    client = CountingClient(server, timeout=2.0, attempts=2, max_in_flight=in_flight)
    options = AssessOptions(only=checks, dkim_selectors=("bench",), check_deadline=60)
    gate = asyncio.Semaphore(concurrency)
    verdicts: collections.Counter[str] = collections.Counter()
    queries: list[int] = []

    async def one(i: int) -> None:
        async with gate:
            result = await assess(domain(i), client, options)
        queries.append(int(str(result.resolver["queries"])))
        for protocol, verdict in result.verdicts.items():
            verdicts[f"{protocol}={verdict.status.value}"] += 1

    started = time.perf_counter()
    await asyncio.wait_for(asyncio.gather(*(one(i) for i in range(n))), 110)
    return time.perf_counter() - started, verdicts, queries


def by_package(stats: pstats.Stats) -> list[tuple[str, float]]:
    """Own time summed per package (mecsa module, dnspython, asyncio, ...), largest first."""
    totals: dict[str, float] = collections.defaultdict(float)
    for (filename, _, _), (_, _, tottime, _, _) in stats.stats.items():  # type: ignore[attr-defined]
        if "/mecsa/" in filename:
            key = "mecsa." + filename.split("/mecsa/")[-1].removesuffix(".py").replace("/", ".")
        elif "site-packages/" in filename:
            key = filename.split("site-packages/")[-1].split("/")[0]
        elif "asyncio/" in filename:
            key = "asyncio"
        elif filename == "~":
            key = "built-ins (sockets, epoll wait, ...)"
        else:
            key = "stdlib " + filename.rsplit("/", 1)[-1]
        totals[key] += tottime
    return sorted(totals.items(), key=lambda kv: -kv[1])[:15]


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("-n", type=int, default=1000, help="domains (default 1000)")
    p.add_argument("--concurrency", type=int, default=200, help="assessments at once (default 200)")
    p.add_argument("--profile", metavar="FILE", help="run under cProfile, write the stats to FILE")
    p.add_argument(
        "--default-rcvbuf", action="store_true", help="keep the server's default UDP receive buffer"
    )
    p.add_argument("--only", help=f"comma-separated checks (default {','.join(sorted(DNS_CHECKS))})")
    p.add_argument("--max-in-flight", type=int, default=512, help="DnsClient(max_in_flight=...)")
    p.add_argument("--top", type=int, default=25, help="functions to list with --profile")
    args = p.parse_args()

    checks = frozenset(args.only.split(",")) if args.only else DNS_CHECKS
    parent, child = multiprocessing.Pipe()
    server = multiprocessing.Process(target=serve, args=(args.n, child, not args.default_rcvbuf), daemon=True)
    server.start()
    if not parent.poll(60):
        print("the DNS server did not start", file=sys.stderr)
        server.kill()
        return 1
    port = parent.recv()

    # Warm the server's memo and the process's imports with one untimed pass over a few domains.
    asyncio.run(bulk(port, min(args.n, 20), 20))

    CountingClient.attempts_sent = CountingClient.timeouts = 0
    before = resource.getrusage(resource.RUSAGE_SELF)
    profiler = cProfile.Profile() if args.profile else None
    if profiler:
        profiler.enable()
    wall, verdicts, queries = asyncio.run(bulk(port, args.n, args.concurrency, args.max_in_flight, checks))
    if profiler:
        profiler.disable()
    after = resource.getrusage(resource.RUSAGE_SELF)
    parent.send("stop")
    server.join(10)
    if server.is_alive():
        server.kill()

    served = resource.getrusage(resource.RUSAGE_CHILDREN)
    server_cpu = served.ru_utime + served.ru_stime
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    print(f"domains: {args.n}, concurrency: {args.concurrency}, checks: {', '.join(sorted(checks))}")
    print(f"wall: {wall:.2f} s  ->  {args.n / wall * 60:,.0f} domains/minute")
    print(
        f"CPU (this process): {cpu:.2f} s  ({cpu / args.n * 1000:.2f} ms per domain, "
        f"{cpu / wall:.0%} of one core)"
    )
    print(f"CPU of the DNS server process (whole life, zone parsing included): {server_cpu:.2f} s")
    print(f"peak RSS: {after.ru_maxrss / 1024:.0f} MiB")
    print(
        f"DNS questions per domain: mean {sum(queries) / len(queries):.1f}, "
        f"min {min(queries)}, max {max(queries)}; {sum(queries) / wall:,.0f} questions/s"
    )
    print(f"UDP attempts: {CountingClient.attempts_sent}, timed out: {CountingClient.timeouts}")
    print("verdicts:", ", ".join(f"{k} {v}" for k, v in sorted(verdicts.items())))
    if profiler:
        profiler.dump_stats(args.profile)
        stats = pstats.Stats(args.profile)
        print("\nown time by package:")
        for package, seconds in by_package(stats):
            print(f"  {seconds:7.2f} s  {package}")
        print(f"\ntop {args.top} by own time:")
        stats.sort_stats("tottime").print_stats(args.top)
        print(f"\ntop {args.top} by cumulative time:")
        stats.sort_stats("cumulative").print_stats(args.top)
    return 0


if __name__ == "__main__":
    sys.exit(main())
