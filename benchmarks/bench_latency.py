"""One domain's assessment against loopback servers that answer after a fixed delay.

Everything runs in this process, on one event loop, on loopback only:

- a DNS server (mecsa's ZoneServer) whose every UDP answer is sent `--delay` seconds late;
- three SMTP servers (aiosmtpd, STARTTLS with a certificate made here) on 127.0.0.2-4, whose
  every reply is sent `--delay` seconds late;
- an HTTPS server for the MTA-STS policy on 127.0.0.5, whose response is sent `--delay` late.

A delayed reply stands for one network round trip; TLS handshakes and TCP connects are not
delayed (loopback), so the ideal wall time is (round trips on the slowest dependent chain) x delay.
The script runs `mecsa.assess.assess` a few times, traces every DNS question, SMTP session and
HTTPS fetch with timestamps, and prints measured / ideal.

    .venv/bin/python benchmarks/bench_latency.py [--delay 0.05] [--runs 3] [--timeline]
        [--dnssec-mode own|resolver|both [--validating]]

With `--dnssec-mode`, the zones are signed (`.` → `test.` → `bench.test.`, ECDSA, NSEC, made with
mecsa.dns.signing) and the client runs in that mode; the server sets AD like a validating resolver
only with `--validating` (own mode's point is a plain forwarder).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import dataclasses
import datetime as dt
import hashlib
import logging
import math
import ssl
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import dns.name
import dns.rdatatype
from aiosmtpd.smtp import SMTP
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

import mecsa.checks.registry as registry
import mecsa.checks.starttls as starttls_check
import mecsa.probes.https_client as https_client
import mecsa.probes.tls as tls_probe
from mecsa.assess import assess
from mecsa.dns.resolver import DnsClient, Nameserver
from mecsa.dns.signing import new_key, sign_zone
from mecsa.dns.validation.anchors import TrustAnchors, parse_anchors
from mecsa.dns.validation.verdict import DnssecMode
from mecsa.dns.zoneserver import ZoneData, ZoneServer, _Udp
from mecsa.observe import AssessOptions
from mecsa.probes.smtp import PER_ADDRESS_CONNECTIONS, ConnectionLimits, SmtpObservation, probe_smtp

DOMAIN = "mail.bench.test"  # a subdomain, so that DMARC falls back to the org domain bench.test
MX_HOSTS = (("mx1", "127.0.0.2"), ("mx2", "127.0.0.3"), ("mx3", "127.0.0.4"))
STS_ADDRESS = "127.0.0.5"
SPF_DEPTH = 4  # the domain's record plus three nested includes


# --- trace ------------------------------------------------------------------------------------


@dataclasses.dataclass
class Event:
    kind: str  # dns | smtp | sweep | https | check
    label: str
    start: float
    end: float = math.nan
    note: str = ""


class Trace:
    def __init__(self) -> None:
        self.t0 = time.perf_counter()
        self.events: list[Event] = []

    def reset(self) -> None:
        self.t0 = time.perf_counter()
        self.events.clear()

    def begin(self, kind: str, label: str) -> Event:
        event = Event(kind, label, time.perf_counter() - self.t0)
        self.events.append(event)
        return event

    def end(self, event: Event, note: str = "") -> None:
        event.end = time.perf_counter() - self.t0
        event.note = note


TRACE = Trace()
DEBUG = False


class TracedClient(DnsClient):
    """A DnsClient that records each question sent (cache hits never reach it)."""

    async def ask(self, name: dns.name.Name, rdtype: dns.rdatatype.RdataType, *, cd: bool = False) -> Any:
        event = TRACE.begin("dns", f"{name.to_text(omit_final_dot=True) or '.'}/{rdtype.name}")
        reply = await super().ask(name, rdtype, cd=cd)
        TRACE.end(event, reply.rcode.value)
        return reply


def traced(kind: str, fn: Callable[..., Awaitable[Any]], label: Callable[..., str]) -> Callable[..., Any]:
    async def wrapper(*args: Any, **kwargs: Any) -> Any:
        event = TRACE.begin(kind, label(*args, **kwargs))
        try:
            result = await fn(*args, **kwargs)
        except Exception as exc:
            TRACE.end(event, f"raised {exc!r}")
            if DEBUG:
                import traceback

                traceback.print_exc()
            raise
        note = ""
        if isinstance(result, SmtpObservation):
            waited = (event_now() - event.start) - result.elapsed_s
            note = f"tls={result.tls.version if result.tls else None} slot-wait={waited * 1000:.0f}ms"
        TRACE.end(event, note)
        return result

    return wrapper


def event_now() -> float:
    return time.perf_counter() - TRACE.t0


BLOCKING: list[tuple[float, float, str]] = []


def install_blocking_monitor(threshold: float) -> None:
    """Record every event-loop callback that runs longer than `threshold` s (what it was, when)."""
    original = asyncio.events.Handle._run

    def timed(handle: asyncio.events.Handle) -> None:
        started = time.perf_counter()
        original(handle)
        took = time.perf_counter() - started
        if took > threshold:
            callback = getattr(handle, "_callback", None)
            task = getattr(callback, "__self__", None)
            coro = task.get_coro() if isinstance(task, asyncio.Task) else None
            frame = getattr(coro, "cr_frame", None)
            where = repr(callback)[:100]
            if coro is not None and frame is not None:
                path = frame.f_code.co_filename.split("/src/")[-1]
                where = f"{getattr(coro, '__qualname__', coro)} @ {path}:{frame.f_lineno}"
            BLOCKING.append((started - TRACE.t0, took, where))

    setattr(asyncio.events.Handle, "_run", timed)  # noqa: B010


def install_tracing() -> None:
    """Wrap the probes where the checks look them up (benchmark process only; src is untouched)."""

    def smtp_label(host: str, address: str, port: int, **kw: Any) -> str:
        ctx = kw.get("tls_context")
        what = "main" if ctx is None else f"trial {ctx.minimum_version.name}-{ctx.maximum_version.name}"
        return f"{host}[{address}] {what}"

    def https_label(client: Any, host: str, shown: str, address: str, *rest: Any) -> str:
        return f"{host}[{address}]"

    # setattr: the checks call these through their module globals, so that is where to wrap them.
    setattr(starttls_check, "probe_smtp", traced("smtp", probe_smtp, smtp_label))  # noqa: B010
    setattr(tls_probe, "probe_smtp", traced("trial", probe_smtp, smtp_label))  # noqa: B010
    setattr(https_client, "request", traced("https", https_client.request, https_label))  # noqa: B010
    registry.CHECKS = tuple(
        dataclasses.replace(c, observe=traced("check", c.observe, lambda ctx, *a, _n=c.name: _n))
        for c in registry.CHECKS
    )


# --- servers ----------------------------------------------------------------------------------


class _DelayedUdp(_Udp):
    """Answers like the zone server, `delay` seconds later (one simulated round trip)."""

    def __init__(self, data: ZoneData, transport: asyncio.DatagramTransport, delay: float) -> None:
        super().__init__(data)
        self.transport = transport
        self.delay = delay

    def datagram_received(self, wire: bytes, addr: tuple[str, int]) -> None:
        asyncio.get_running_loop().call_later(self.delay, super().datagram_received, wire, addr)


class DelayedZoneServer(ZoneServer):
    def __init__(self, data: ZoneData, delay: float) -> None:
        super().__init__(data)
        self.delay = delay

    async def start(self) -> DelayedZoneServer:
        await super().start()
        assert self._udp is not None
        self._udp.set_protocol(_DelayedUdp(self.data, self._udp, self.delay))
        return self


class SlowSMTP(SMTP):
    """aiosmtpd, with the last line of every reply sent `delay` seconds late."""

    delay = 0.0

    async def push(self, status: Any) -> None:
        text = status.decode() if isinstance(status, bytes) else status
        if len(text) == 3 or text[3:4] == " ":
            await asyncio.sleep(self.delay)
        await super().push(status)


class Handler:
    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        return "250 OK"


async def serve_policy(delay: float, policy: bytes, tls: ssl.SSLContext, port: int) -> asyncio.Server:
    async def one(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await reader.readuntil(b"\r\n\r\n")
            await asyncio.sleep(delay)
            writer.write(
                b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nConnection: close\r\n"
                + f"Content-Length: {len(policy)}\r\n\r\n".encode()
                + policy
            )
            await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError, ssl.SSLError):
            pass
        finally:
            writer.close()

    return await asyncio.start_server(one, STS_ADDRESS, port, ssl=tls)


# --- certificates and zone --------------------------------------------------------------------


def make_pki(folder: Path) -> tuple[Path, Path, Path, bytes]:
    """A CA and one leaf naming every MX host and the MTA-STS host; returns paths and leaf SPKI."""
    now = dt.datetime.now(dt.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "mecsa bench CA")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    names = [f"{h}.{DOMAIN}" for h, _ in MX_HOSTS] + [f"mta-sts.{DOMAIN}"]
    leaf = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0])]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=30))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(n) for n in names]), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([x509.OID_SERVER_AUTH]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    pem = serialization.Encoding.PEM
    (folder / "ca.pem").write_bytes(ca.public_bytes(pem))
    (folder / "leaf.pem").write_bytes(leaf.public_bytes(pem) + ca.public_bytes(pem))
    (folder / "leaf.key").write_bytes(
        key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    spki = key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return folder / "ca.pem", folder / "leaf.pem", folder / "leaf.key", spki


def dkim_txt() -> str:
    public = rsa.generate_private_key(public_exponent=65537, key_size=2048).public_key()
    der = public.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    b64 = base64.b64encode(der).decode()
    parts = [f"v=DKIM1; k=rsa; p={b64[:200]}", *(b64[i : i + 250] for i in range(200, len(b64), 250))]
    return " ".join(f'"{p}"' for p in parts)


def zone_text(smtp_port: int, spki: bytes) -> str:
    tlsa = hashlib.sha256(spki).hexdigest()
    mx = "\n".join(f"mail MX {10 * (i + 1)} {h}.mail" for i, (h, _) in enumerate(MX_HOSTS))
    hosts = "\n".join(f"{h}.mail A {a}\n_{smtp_port}._tcp.{h}.mail TLSA 3 1 1 {tlsa}" for h, a in MX_HOSTS)
    return f"""
$TTL 300
@ SOA ns.bench.test. hostmaster.bench.test. 1 7200 3600 1209600 300
@ NS ns.bench.test.
ns A 127.0.0.1
_dmarc TXT "v=DMARC1; p=reject; rua=mailto:dmarc@bench.test"
{mx}
{hosts}
mail TXT "v=spf1 mx include:_spf1.bench.test -all"
_spf1 TXT "v=spf1 ip4:192.0.2.0/24 include:_spf2.bench.test ~all"
_spf2 TXT "v=spf1 a:out.bench.test include:_spf3.bench.test ~all"
_spf3 TXT "v=spf1 ip4:198.51.100.0/24 ~all"
out A 192.0.2.10
bench._domainkey.mail TXT {dkim_txt()}
_smtp._tls.mail TXT "v=TLSRPTv1; rua=mailto:tlsrpt@bench.test"
_mta-sts.mail TXT "v=STSv1; id=20261128T000000"
mta-sts.mail A {STS_ADDRESS}
"""


def signed_zones(bench: str) -> tuple[dict[str, str], TrustAnchors]:
    """`bench.test.` signed under a signed `test.` and root, and the root's DS as the trust anchor."""
    keys = {zone: new_key() for zone in (".", "test.", "bench.test.")}
    head = "$TTL 300\n@ SOA ns hostmaster 1 7200 3600 1209600 300\n@ NS ns.bench.test.\n"
    test = (
        head
        + "bench NS ns.bench\nns.bench A 127.0.0.1\n"
        + f"bench DS {keys['bench.test.'].ds('bench.test.')}\n"
    )
    root = head + "test. NS ns.bench.test.\n" + f"test. DS {keys['test.'].ds('test.')}\n"
    zones = {
        "bench.test.": sign_zone("bench.test.", bench, [keys["bench.test."]]),
        "test.": sign_zone("test.", test, [keys["test."]]),
        ".": sign_zone(".", root, [keys["."]]),
    }
    return zones, parse_anchors(f". IN DS {keys['.'].ds('.')}\n", "bench root")


POLICY = "version: STSv1\nmode: enforce\n" + "".join(f"mx: {h}.{DOMAIN}\n" for h, _ in MX_HOSTS)
POLICY += "max_age: 604800\n"


# --- the ideal ---------------------------------------------------------------------------------


def ideal_round_trips(runnable_trials: int, per_address: int) -> dict[str, int]:
    """Delayed replies on each dependent chain (the ideal wall time is the max times the delay).

    main SMTP session: banner, EHLO, STARTTLS, EHLO after TLS = 4 delayed replies (QUIT is sent,
    its 221 not awaited). A sweep session: banner, EHLO, STARTTLS = 3. The sweep goes out in
    offers (probes/tls.py): TLSv1+TLSv1.1 beside the main session in the address's second slot,
    then the weak classes in that slot; TLSv1.2 in the slot the main session leaves (TLSv1.3 is
    the main session's). With 2 slots that is main + one offer on the longest chain; with one
    slot, main + 3 offers. dane's TLSA lookup runs beside the sessions.
    `runnable_trials` is kept for the printout (trials this OpenSSL can offer).
    """
    mx_a = 2  # MX, then A/AAAA of every host at once
    session = 4
    trial = 3
    offers_after_main = 1 if per_address >= 2 else 3
    return {
        "transport, sweep fully parallel": mx_a + session + trial,
        f"transport, sweep in offers under {per_address} sessions per address (politeness limit)": mx_a
        + session
        + offers_after_main * trial,
        "transport without sweep (dane's TLSA beside the sessions)": mx_a + session,
        "spf include chain": SPF_DEPTH,
        "dmarc tree walk: _dmarc.sub -> _dmarc.org -> _dmarc.tld": 3,
        "mta-sts: TXT -> A -> HTTPS GET": 3,
    }


# --- run ---------------------------------------------------------------------------------------


async def main(args: argparse.Namespace) -> int:
    logging.getLogger("mail.log").setLevel(logging.CRITICAL)  # refused weak-TLS trials are expected
    install_tracing()
    if args.per_address:
        # An experiment, not a mecsa option: the per-address session limit the sweep runs under.
        limit = args.per_address
        setattr(starttls_check, "ConnectionLimits", lambda: ConnectionLimits(per_address=limit))  # noqa: B010
    if args.blocking:
        install_blocking_monitor(args.blocking / 1000)
    tmp = Path(tempfile.mkdtemp(prefix="mecsa-bench-"))
    ca_file, cert, key, spki = make_pki(tmp)
    server_tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_tls.load_cert_chain(cert, key)

    loop = asyncio.get_running_loop()
    SlowSMTP.delay = args.delay
    smtp_servers = []
    probe = await loop.create_server(asyncio.Protocol, "127.0.0.2", 0)  # a port, then bind it thrice
    smtp_port = probe.sockets[0].getsockname()[1]
    probe.close()

    def smtp_factory(name: str) -> Callable[[], asyncio.BaseProtocol]:
        def make() -> asyncio.BaseProtocol:
            return SlowSMTP(Handler(), hostname=f"{name}.{DOMAIN}", tls_context=server_tls, ident="bench")

        return make

    for name, address in MX_HOSTS:
        smtp_servers.append(await loop.create_server(smtp_factory(name), address, smtp_port))
    https = await serve_policy(args.delay, POLICY.encode(), server_tls, 0)
    https_port = https.sockets[0].getsockname()[1]

    if args.dnssec_mode:
        # signed_zones: the root, test. (which answers _dmarc.test like a real TLD) and bench.test.
        zones, anchors = signed_zones(zone_text(smtp_port, spki))
        data = ZoneData.from_texts(zones, secure=list(zones), validating=args.validating)
        dnssec: dict[str, Any] = {"dnssec_mode": DnssecMode(args.dnssec_mode), "trust_anchors": anchors}
    else:
        # the TLD answers like a real one (NXDOMAIN for _dmarc.test): RFC 9989's walk ends there
        tld = "@ SOA ns.bench.test. hostmaster.bench.test. 1 7200 3600 1209600 300\n@ NS ns.bench.test.\n"
        data = ZoneData.from_texts(
            {"bench.test": zone_text(smtp_port, spki), "test": tld}, secure=["bench.test", "test"]
        )
        dnssec = {}
    dns_server = await DelayedZoneServer(data, args.delay).start()
    client = TracedClient([Nameserver("127.0.0.1", dns_server.port)], timeout=2.0, attempts=2, **dnssec)
    options = AssessOptions(
        dkim_selectors=("bench",),
        ca_file=str(ca_file),
        smtp_port=smtp_port,
        https_port=https_port,
        tls_versions=not args.no_sweep,
    )

    runnable = sum(1 for v in tls_probe.TLS_VERSIONS if tls_probe.trial_context(v, "ALL") is not None) + sum(
        1 for _, spec in tls_probe.WEAK_CLASSES if tls_probe.trial_context(None, spec) is not None
    )
    chains = ideal_round_trips(runnable, args.per_address or PER_ADDRESS_CONNECTIONS)
    if args.no_sweep:
        chains = {k: v for k, v in chains.items() if not k.startswith("transport, sweep")}

    walls, cpus = [], []
    assessment = None
    for run in range(args.runs):
        TRACE.reset()
        BLOCKING.clear()
        started, cpu_started = time.perf_counter(), time.process_time()
        assessment = await asyncio.wait_for(assess(DOMAIN, client, options), 90)
        walls.append(time.perf_counter() - started)
        # CPU of the whole process (client and in-process servers): steadier than wall on a shared machine.
        cpus.append(time.process_time() - cpu_started)
        print(
            f"run {run + 1}: {walls[-1] * 1000:.0f} ms, CPU {cpus[-1] * 1000:.0f} ms, "
            f"{assessment.resolver['queries']} DNS questions"
            + f" + {assessment.resolver.get('validation_queries', 0)} for the chain walk"
        )
    assert assessment is not None

    for server in (*smtp_servers, https):
        server.close()
    await dns_server.stop()

    print(f"\ndelay per reply: {args.delay * 1000:.0f} ms; runnable sweep trials here: {runnable} of 9")
    verdicts = {p: v.status.value for p, v in assessment.verdicts.items()}
    print("verdicts:", ", ".join(f"{k}={v}" for k, v in sorted(verdicts.items())))
    for finding in assessment.findings:
        if finding.status.value == "error":
            print(f"  ERROR finding {finding.id}: {finding.message}")
    print("\nideal dependent chains (delayed replies):")
    for name, n in chains.items():
        print(f"  {n:3d}  {name}  = {n * args.delay * 1000:.0f} ms")
    ideal_par = max(v for k, v in chains.items() if "politeness" not in k)
    ideal_polite = max(chains.values())
    best, median = min(walls), statistics.median(walls)
    print(f"\nmeasured wall: best {best * 1000:.0f} ms, median {median * 1000:.0f} ms")
    print(f"CPU per assessment (client + servers): median {statistics.median(cpus) * 1000:.0f} ms")
    if args.delay > 0:
        print(
            f"ratio to ideal, unlimited per-address parallelism ({ideal_par} x delay): "
            f"{median / (ideal_par * args.delay):.2f}"
        )
        print(
            f"ratio to ideal, {args.per_address or PER_ADDRESS_CONNECTIONS} sessions per address "
            f"({ideal_polite} x delay): "
            f"{median / (ideal_polite * args.delay):.2f}"
        )
    checks = sorted((e for e in TRACE.events if e.kind == "check"), key=lambda e: -e.end)
    print("\nper check (last run), finish time:")
    for e in checks:
        print(f"  {e.label:9s} {e.end * 1000:7.0f} ms")
    kinds = {k: sum(1 for e in TRACE.events if e.kind == k) for k in ("dns", "smtp", "trial", "https")}
    print("\nlast run counts:", kinds)
    if args.blocking:
        print(f"\nevent-loop callbacks over {args.blocking:g} ms in the last run (start ms, took ms, what):")
        for at, took, what in BLOCKING:
            print(f"  {at * 1000:7.1f}  {took * 1000:6.1f}  {what}")
    if args.timeline:
        print("\ntimeline of the last run (ms from start; rounds = delays):")
        for e in sorted(TRACE.events, key=lambda e: (e.start, e.kind)):
            if e.kind == "check":
                continue
            rounds = (e.end - e.start) / args.delay if args.delay else 0
            span = f"{e.start * 1000:7.1f} -> {e.end * 1000:7.1f}  ({rounds:4.1f})"
            print(f"  {span} {e.kind:5s} {e.label} {e.note}")
    return 0


def parse() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--delay", type=float, default=0.05, help="seconds added to every reply (default 0.05)")
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--timeline", action="store_true", help="print every traced event of the last run")
    p.add_argument("--blocking", type=float, default=0, metavar="MS", help="list loop callbacks over MS ms")
    p.add_argument(
        "--per-address",
        type=int,
        default=0,
        metavar="N",
        help=f"experiment: allow N SMTP sessions per address (mecsa: {PER_ADDRESS_CONNECTIONS})",
    )
    p.add_argument("--no-sweep", action="store_true", help="AssessOptions(tls_versions=False)")
    p.add_argument(
        "--dnssec-mode", choices=["own", "resolver", "both"], help="sign the zones; run in this mode"
    )
    p.add_argument("--validating", action="store_true", help="the DNS server sets AD (a validating resolver)")
    return p.parse_args()


if __name__ == "__main__":
    sys.exit(asyncio.run(main(parse())))
