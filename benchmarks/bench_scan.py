"""`mecsa scan` over N mail domains served by a few MX hosts: throughput, CPU, memory, politeness, agreement.

Everything on loopback. A child process serves:

- DNS: one zone per domain plus the providers' zone (mecsa's ZoneServer, answers memoised per
  question, every zone reported secure: this is not a validating resolver over Knot-signed zones);
- SMTP: three MX hosts of two providers with STARTTLS (aiosmtpd; certificate from a CA made here,
  TLSA 3 1 1 published) and one broken host without STARTTLS; each host counts its simultaneous
  connections, as its log would show;
- HTTPS: the MTA-STS policy host of every domain (a certificate per host name, made on first use).

Domains: 70 % on provider A (mx1 + mx2), 25 % on provider B, 5 % on the broken host; 10 % publish
no DMARC; 1 list line in 100 is not a domain. The scan runs with every check, TLS sweep included,
through the same code path as `mecsa scan` (`mecsa.scan.run.scan`), into a SQLite store.

    .venv/bin/python benchmarks/bench_scan.py [-n 1000] [--workers 2] [--concurrency 200]
                                              [--agree] [--only CHECK,...]

`--agree` then assesses every domain alone (`mecsa.assess.assess`, no sharing) and compares the
verdicts and levels. Every domain is a zone of its own, so `-n 10000` is the same zones under new
names (the memory comparison).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import datetime as dt
import hashlib
import io
import logging
import multiprocessing
import multiprocessing.connection
import os
import resource
import ssl
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import dns.name
import dns.zone
from aiosmtpd.smtp import SMTP
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

from mecsa.dns.zoneserver import ZoneData, ZoneServer, _Udp
from mecsa.observe import AssessOptions

ORIGIN = "scanbench.test"
HOSTS = {  # name -> (address, STARTTLS)
    f"mx1.pa.{ORIGIN}": ("127.77.0.2", True),
    f"mx2.pa.{ORIGIN}": ("127.77.0.3", True),
    f"mx.pb.{ORIGIN}": ("127.77.0.4", True),
    f"mx.broken.{ORIGIN}": ("127.77.0.6", False),
}
STS_ADDRESS = "127.77.0.5"
SERVER_LIFETIME_S = 1800


def domain(i: int) -> str:
    return f"d{i:05d}.{ORIGIN}"


def zone_of(i: int, distinct: int) -> int:
    return i % distinct


# --- certificates and zones (the server child and the parent both need some of it) ---------------


class Pki:
    """A CA, one leaf key, and certificates issued on demand (the MTA-STS host of each domain)."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.now = dt.datetime.now(dt.UTC)
        self.ca_key = ec.generate_private_key(ec.SECP256R1())
        self.ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "mecsa scan bench CA")])
        self.ca = (
            x509.CertificateBuilder()
            .subject_name(self.ca_name)
            .issuer_name(self.ca_name)
            .public_key(self.ca_key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(self.now - dt.timedelta(days=1))
            .not_valid_after(self.now + dt.timedelta(days=30))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(
                x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True
            )
            .add_extension(
                x509.SubjectKeyIdentifier.from_public_key(self.ca_key.public_key()), critical=False
            )
            .sign(self.ca_key, hashes.SHA256())
        )
        self.key = ec.generate_private_key(ec.SECP256R1())
        pem = serialization.Encoding.PEM
        (folder / "ca.pem").write_bytes(self.ca.public_bytes(pem))
        self.key_file = folder / "leaf.key"
        self.key_file.write_bytes(
            self.key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
        )
        self.spki = self.key.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        self._contexts: dict[str, ssl.SSLContext] = {}

    def context(self, names: list[str]) -> ssl.SSLContext:
        """A server context presenting a certificate for `names` (made once per first name)."""
        found = self._contexts.get(names[0])
        if found is not None:
            return found
        leaf = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0])]))
            .issuer_name(self.ca_name)
            .public_key(self.key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(self.now - dt.timedelta(days=1))
            .not_valid_after(self.now + dt.timedelta(days=30))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(n) for n in names]), critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([x509.OID_SERVER_AUTH]), critical=False)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(self.ca_key.public_key()), critical=False
            )
            .sign(self.ca_key, hashes.SHA256())
        )
        pem = serialization.Encoding.PEM
        chain = self.folder / f"chain-{len(self._contexts)}.pem"
        chain.write_bytes(leaf.public_bytes(pem) + self.ca.public_bytes(pem))
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(chain, self.key_file)
        chain.unlink()
        self._contexts[names[0]] = context
        return context


def dkim_txt() -> str:
    public = rsa.generate_private_key(public_exponent=65537, key_size=2048).public_key()
    der = public.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    b64 = base64.b64encode(der).decode()
    parts = [f"v=DKIM1; k=rsa; p={b64[:200]}", *(b64[i : i + 250] for i in range(200, len(b64), 250))]
    return " ".join(f'"{p}"' for p in parts)


def zone_texts(n: int, smtp_port: int, spki: bytes) -> dict[str, str]:
    tlsa = hashlib.sha256(spki).hexdigest()
    head = f"$TTL 3600\n@ SOA ns.{ORIGIN}. h.{ORIGIN}. 1 7200 3600 1209600 300\n@ NS ns.{ORIGIN}.\n"
    providers = [head, "ns A 127.0.0.1", f'_spf TXT "v=spf1 ip4:192.0.2.0/24 include:_spf2.{ORIGIN} ~all"',
                 '_spf2 TXT "v=spf1 ip4:198.51.100.0/24 ~all"']  # fmt: skip
    for name, (address, _) in HOSTS.items():
        relative = name.removesuffix(f".{ORIGIN}")
        providers += [f"{relative} A {address}", f"_{smtp_port}._tcp.{relative} TLSA 3 1 1 {tlsa}"]
    # The TLD's zone too: DMARC discovery walks up the tree (RFC 9989), and a resolver would say NXDOMAIN.
    zones = {"test": head, ORIGIN: "\n".join(providers) + "\n"}
    dkim = dkim_txt()
    for i in range(n):
        if i % 20 == 19:
            mx = [f"@ MX 10 mx.broken.{ORIGIN}."]
        elif i % 4 == 3:
            mx = [f"@ MX 10 mx.pb.{ORIGIN}."]
        else:
            mx = [f"@ MX 10 mx1.pa.{ORIGIN}.", f"@ MX 20 mx2.pa.{ORIGIN}."]
        lines = [
            head,
            *mx,
            f'@ TXT "v=spf1 mx include:_spf.{ORIGIN} -all"',
            f"bench._domainkey TXT {dkim}",
            f'_smtp._tls TXT "v=TLSRPTv1; rua=mailto:tlsrpt@{domain(i)}"',
            '_mta-sts TXT "v=STSv1; id=20261201"',
            f"mta-sts A {STS_ADDRESS}",
        ]
        if i % 10 != 5:
            lines.append(f'_dmarc TXT "v=DMARC1; p=reject; rua=mailto:dmarc@{domain(i)}"')
        zones[domain(i)] = "\n".join(lines) + "\n"
    return zones


POLICY = (
    "version: STSv1\nmode: enforce\n" + "".join(f"mx: {h}\n" for h in HOSTS) + "max_age: 604800\n"
).encode()


def _first_chain(pki: Pki) -> tuple[Path, Path]:
    """A default certificate for the policy server (clients always send SNI, so it is never shown)."""
    chain = pki.folder / "default.pem"
    context_names = [f"mta-sts.{ORIGIN}"]
    pki.context(context_names)
    leaf = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, context_names[0])]))
        .issuer_name(pki.ca_name)
        .public_key(pki.key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(pki.now - dt.timedelta(days=1))
        .not_valid_after(pki.now + dt.timedelta(days=30))
        .sign(pki.ca_key, hashes.SHA256())
    )
    chain.write_bytes(leaf.public_bytes(serialization.Encoding.PEM))
    return chain, pki.key_file


# --- the server child ------------------------------------------------------------------------------


class IndexedZoneData(ZoneData):
    """Zone look-ups by walking up the name (as in bench_bulk.py): ZoneData scans every zone."""

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


class MemoUdp(_Udp):
    """Answers memoised by the query's wire form after its ID (the server must not be the bottleneck)."""

    def __init__(self, data: ZoneData, transport: Any) -> None:
        super().__init__(data)
        self.transport = transport
        self.memo: dict[bytes, bytes] = {}

    def datagram_received(self, wire: bytes, addr: tuple[str, int]) -> None:
        cached = self.memo.get(wire[2:])
        if cached is not None:
            self.transport.sendto(wire[:2] + cached, addr)  # type: ignore[union-attr]
            return
        real, memo = self.transport, self.memo

        class Capture:
            def sendto(self, reply: bytes, to: tuple[str, int]) -> None:
                memo[wire[2:]] = reply[2:]
                real.sendto(reply, to)  # type: ignore[union-attr]

        self.transport = Capture()  # type: ignore[assignment]
        try:
            super().datagram_received(wire, addr)
        finally:
            self.transport = real


class Connections:
    """One host's log of connections: how many at once, at most, and how many in all."""

    def __init__(self) -> None:
        self.active = self.peak = self.total = 0


class CountedSMTP(SMTP):
    log: Connections
    counted = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # STARTTLS calls this a second time for the same connection (the TLS transport): count once.
        if not self.counted:
            self.counted = True
            self.log.active += 1
            self.log.total += 1
            self.log.peak = max(self.log.peak, self.log.active)
        super().connection_made(transport)

    def connection_lost(self, exc: Exception | None) -> None:
        if self.counted:
            self.counted = False
            self.log.active -= 1
        super().connection_lost(exc)


class Sink:
    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        return "250 OK"


def serve(n: int, folder: Path, conn: multiprocessing.connection.Connection) -> None:
    logging.getLogger("mail.log").setLevel(logging.CRITICAL)  # refused weak-TLS trials are expected

    async def run() -> None:
        pki = Pki(folder)
        tls = pki.context(list(HOSTS))
        loop = asyncio.get_running_loop()
        logs: dict[str, Connections] = {}
        servers: list[asyncio.Server] = []
        port = 0
        for name, (address, starttls) in HOSTS.items():
            log = logs[name] = Connections()

            def make(name: str = name, starttls: bool = starttls, log: Connections = log) -> SMTP:
                protocol = CountedSMTP(
                    Sink(), hostname=name, tls_context=tls if starttls else None, ident="bench"
                )
                protocol.log = log
                return protocol

            server = await loop.create_server(make, address, port)
            port = server.sockets[0].getsockname()[1]  # the same port on every host address
            servers.append(server)

        async def policy(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            try:
                await reader.readuntil(b"\r\n\r\n")
                writer.write(
                    b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nConnection: close\r\n"
                    + f"Content-Length: {len(POLICY)}\r\n\r\n".encode()
                    + POLICY
                )
                await writer.drain()
            except (ConnectionError, asyncio.IncompleteReadError, ssl.SSLError):
                pass
            finally:
                writer.close()

        sts = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        sts.load_cert_chain(*_first_chain(pki))

        def by_name(sslobj: ssl.SSLObject, name: str | None, _: ssl.SSLContext) -> None:
            if name:  # each domain's policy host gets its own certificate, made on its first visit
                sslobj.context = pki.context([name])

        sts.sni_callback = by_name
        https = await asyncio.start_server(policy, STS_ADDRESS, 0, ssl=sts)
        texts = zone_texts(n, port, pki.spki)
        data = IndexedZoneData.from_texts(texts, secure=list(texts))
        dns_server = await ZoneServer(data).start()
        assert dns_server._udp is not None
        dns_server._udp.set_protocol(MemoUdp(data, dns_server._udp))
        conn.send((dns_server.port, port, https.sockets[0].getsockname()[1]))
        # "logs": send the hosts' logs so far and go on serving; "stop": end. (A reader thread, so
        # that the serving loop never blocks; the server ends by itself after SERVER_LIFETIME_S.)
        for message in ("logs", "stop"):
            with contextlib.suppress(TimeoutError):
                while await asyncio.wait_for(asyncio.to_thread(conn.recv), SERVER_LIFETIME_S) != message:
                    pass
            if message == "logs":
                conn.send({name: (log.peak, log.total) for name, log in logs.items()})
        for server in (*servers, https):
            server.close()
        await dns_server.stop()

    asyncio.run(run())


# --- the parent: the scan ----------------------------------------------------------------------------


class RssSampler(threading.Thread):
    """Peak resident memory of this process plus its children (the workers), the server excluded."""

    def __init__(self, exclude: int) -> None:
        super().__init__(daemon=True)
        self.exclude = exclude
        self.peak_kib = 0
        self.stopped = threading.Event()

    @staticmethod
    def rss_kib(pid: int) -> int:
        with contextlib.suppress(OSError), Path(f"/proc/{pid}/status").open() as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
        return 0

    def run(self) -> None:
        me = os.getpid()
        while not self.stopped.wait(0.1):
            children = Path(f"/proc/{me}/task/{me}/children").read_text().split()
            total = self.rss_kib(me) + sum(self.rss_kib(int(c)) for c in children if int(c) != self.exclude)
            self.peak_kib = max(self.peak_kib, total)


def options(ca_file: Path, ports: tuple[int, int, int], only: frozenset[str] = frozenset()) -> AssessOptions:
    return AssessOptions(
        dkim_selectors=("bench",),
        ca_file=str(ca_file),
        smtp_port=ports[1],
        https_port=ports[2],
        smtp_timeout=10.0,
        only=only,
    )


async def agree(
    records: dict[str, dict[str, Any]], dns_port: int, assess_options: AssessOptions
) -> tuple[int, list[str], list[str]]:
    """Every domain assessed alone (no shared observations): (equal, definite differences, error-only).

    A definite difference (pass against fail, or other levels without an error on either side) is a
    bug; an `error` on one side only means that side could not find out (a timeout under load).
    """
    from mecsa.assess import assess
    from mecsa.dns.resolver import DnsClient, Nameserver
    from mecsa.report.json import assessment_to_json

    gate = asyncio.Semaphore(50)
    equal = 0
    definite: list[str] = []
    error_only: list[str] = []

    async def one(name: str, record: dict[str, Any]) -> None:
        nonlocal equal
        async with gate:
            client = DnsClient([Nameserver("127.0.0.1", dns_port)], timeout=2.0)
            alone = assessment_to_json(await assess(name, client, assess_options))
        mine = {p: v["status"] for p, v in record["protocols"].items()}
        theirs = {p: v["status"] for p, v in alone["protocols"].items()}
        if mine == theirs and record["scores"] == alone["scores"]:
            equal += 1
            return
        differing = {p for p in mine.keys() | theirs.keys() if mine.get(p) != theirs.get(p)}
        line = f"{name}: " + ", ".join(
            f"{p} scan {mine.get(p)} / alone {theirs.get(p)}" for p in sorted(differing)
        )
        if all("error" in (mine.get(p), theirs.get(p)) for p in differing):
            error_only.append(line)
        else:
            definite.append(line)

    await asyncio.gather(*(one(n, r) for n, r in records.items() if "scores" in r))
    return equal, definite, error_only


async def main(args: argparse.Namespace) -> int:
    import json

    from mecsa.scan.assessor import ScanConfig
    from mecsa.scan.run import ScanRequest, scan
    from mecsa.store import open_store

    folder = Path(tempfile.mkdtemp(prefix="mecsa-scan-bench-"))
    context = multiprocessing.get_context("spawn")
    parent_end, child_end = context.Pipe()
    server = context.Process(target=serve, args=(args.n, folder, child_end), daemon=True)
    server.start()
    ports: tuple[int, int, int] = await asyncio.to_thread(parent_end.recv)
    listing = folder / "list.txt"
    with listing.open("w") as out:
        for i in range(args.n):
            out.write(f"{domain(i)}\n")
            if i % 100 == 99:
                out.write(f"not a domain {i}\n")
    assess_options = options(
        folder / "ca.pem", ports, frozenset(args.only.split(",")) if args.only else frozenset()
    )
    config = ScanConfig(
        options=assess_options, resolvers=(f"127.0.0.1:{ports[0]}",), concurrency=args.concurrency
    )
    request = ScanRequest(
        source=str(listing), config=config, output=folder / "out.jsonl", workers=args.workers,
        progress="lines", progress_every=10.0,
    )  # fmt: skip
    sampler = RssSampler(exclude=server.pid or 0)
    sampler.start()
    self_before = resource.getrusage(resource.RUSAGE_SELF)
    children_before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    with open_store(folder / "store.sqlite") as store:
        result = await scan(request, store, io.StringIO(), io.StringIO())
    wall = time.perf_counter() - started
    self_after = resource.getrusage(resource.RUSAGE_SELF)
    children_after = resource.getrusage(resource.RUSAGE_CHILDREN)  # the workers, joined by now
    sampler.stopped.set()
    sampler.join()
    parent_end.send("logs")
    host_logs: dict[str, tuple[int, int]] = await asyncio.to_thread(parent_end.recv)

    def cpu(after: Any, before: Any) -> float:
        return float(after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)

    c = result.outcome.counters
    parent_cpu, workers_cpu = cpu(self_after, self_before), cpu(children_after, children_before)
    records = {r["domain"]: r for r in map(json.loads, (folder / "out.jsonl").read_text().splitlines())}
    checks = args.only or "every check, TLS sweep included"
    print(f"\n{args.n} domains, {args.workers} workers, concurrency {args.concurrency}, {checks}")
    print(f"records: {len(records)} ({c.errors} error records)")
    print(f"wall {wall:.1f} s: {60 * c.done / wall:.0f} domains/min")
    print(
        f"CPU: parent {parent_cpu:.1f} s + workers {workers_cpu:.1f} s = "
        f"{1000 * (parent_cpu + workers_cpu) / max(c.done, 1):.1f} ms per domain"
    )
    asks, probes = c.observations.get("asks", 0), c.observations.get("probes", 0)
    if asks:
        hits = 100 * (asks - probes) / asks
        print(f"transport observations: {asks} asked, {probes} probed: {hits:.1f}% cache hits")
    print(f"peak RSS (scan process + workers): {sampler.peak_kib / 1024:.1f} MiB")
    for name, (peak, total) in host_logs.items():
        print(f"MX {name}: {total} connections, at most {peak} at once")
    statuses: dict[str, int] = {}
    for record in records.values():
        for protocol, verdict in record.get("protocols", {}).items():
            key = f"{protocol}={verdict['status']}"
            statuses[key] = statuses.get(key, 0) + 1
    print("verdicts:", ", ".join(f"{k} {v}" for k, v in sorted(statuses.items())))
    if args.agree:
        started = time.perf_counter()
        equal, definite, error_only = await agree(records, ports[0], assess_options)
        print(
            f"agreement with single assessments: {equal} equal, {len(definite)} differ, "
            f"{len(error_only)} differ only where one side could not find out (error) "
            f"({time.perf_counter() - started:.0f} s)"
        )
        for line in (definite + error_only)[:10]:
            print("  " + line)
    parent_end.send("stop")
    server.join(10)
    return 0


def parse() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("-n", type=int, default=1000, help="domains in the list")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--concurrency", type=int, default=200)
    parser.add_argument("--agree", action="store_true", help="compare with single assessments")
    parser.add_argument("--only", default="", help="comma-separated checks (default: every check)")
    return parser.parse_args()


if __name__ == "__main__":
    sys.exit(asyncio.run(main(parse())))
