"""The report samples: real `assess()` runs against real servers on 127.0.0.x, built once per session.

Each sample serves its zone from the in-process DNS server (signed, or on a resolver that does not
validate), runs SMTP servers on loopback (aiosmtpd with STARTTLS and a certificate from the test CA,
aiosmtpd without STARTTLS, or a raw server that says hostile things) and, for MTA-STS, the loopback
HTTPS policy host; then it runs `mecsa.assess.assess` on it, as `mecsa assess` would.

What cannot be fixed in advance (ephemeral ports, the temporary directory of the CA file, dates of
certificates made today, their serial numbers, session times) stays real in the `Assessment`;
`normalise` below replaces it in the rendered text, so that the golden files are stable. What can be
pinned is pinned, so the goldens show real values there: the duration and the resolver's description
(`dataclasses.replace`); the server keys, derived from fixed numbers, so their TLSA digests are the
same in every run; the DKIM key (the demo's fixed public key) and its dated selector (s202611); the
days left (a leaf is made one day before the run, valid 90 days); and the date the fixes are written
for (`TODAY`).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import datetime as dt
import functools
import re
import tempfile
from collections.abc import AsyncIterator, Callable, Coroutine, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric import ec

from mecsa.assess import assess
from mecsa.demo.zone import DKIM_PUBLIC_KEY
from mecsa.dns.resolver import DnsClient, Nameserver
from mecsa.dns.zoneserver import Fault, ZoneData, ZoneServer
from mecsa.model import Assessment
from mecsa.observe import AssessOptions
from tests.unit.dkim_keys import zone_txt
from tests.unit.mta_sts.policy_server import PolicyServer, Reply
from tests.unit.transport.pki import Issued, Pki
from tests.unit.transport.servers import LoopbackServers, server_context

TODAY = dt.date(2026, 11, 5)
HOSTILE_SCRIPT = "<script>document.title='pwned'</script>"
HOSTILE_IMG = "<img src=x onerror=\"document.title='pwned-img'\">"
ESC_CLEAR = "\x1b[2J"  # erase the terminal
OSC_TITLE = "\x1b]0;pwned\x07"  # set the terminal's title
BIDI = "\u202e"  # RIGHT-TO-LEFT OVERRIDE: text after it reads backwards

# What the goldens show for the resolver: the real server listens on an ephemeral port.
RESOLVER_SHOWN = "127.0.0.1:53"
HEAD = "$TTL 300\n@ IN SOA ns hostmaster 2026110501 3600 600 86400 300\n@ IN NS ns\nns IN A 127.0.0.53\n"
DKIM_SELECTOR = "s202611"


def _key(seed: int) -> ec.EllipticCurvePrivateKey:
    """A P-256 key derived from a fixed number: the same key (and TLSA digest) in every run."""
    return ec.derive_private_key(seed, ec.SECP256R1())


# One TLSA record only: the order of an RRset's records is not defined (RFC 2181 §5) and varies
# between runs, which the reports show as they come.
MX_KEY_SEED, STS_KEY_SEED = 0x6D656373610001, 0x6D656373610003


def _quoted(text: str) -> str:
    """Zone-file character-strings of `text`, with every byte outside printable ASCII as \\DDD."""
    out = []
    for byte in text.encode("utf-8"):
        char = chr(byte)
        if char in '"\\':
            out.append("\\" + char)
        elif 0x20 <= byte < 0x7F:
            out.append(char)
        else:
            out.append(f"\\{byte:03d}")
    return f'"{"".join(out)}"'


@dataclass
class SampleLab:
    """What one sample runs: the test CA, its SMTP servers and its policy hosts."""

    directory: Path
    pki: Pki = field(default_factory=Pki.create)
    smtp: LoopbackServers = field(default_factory=LoopbackServers)
    https_port: int = 0
    stack: contextlib.AsyncExitStack = field(default_factory=contextlib.AsyncExitStack)

    @property
    def ca_file(self) -> str:
        return str(self.directory / "root.pem")

    def leaf(self, name: str, seed: int) -> Issued:
        return self.pki.leaf(name, key=_key(seed))

    async def smtpd(self, address: str, leaf: Issued | None) -> None:
        context = server_context(leaf, self.pki.intermediate.pem, self.directory) if leaf else None
        await self.smtp.add_smtpd(address, context)

    async def policy_host(self, address: str, name: str, body: bytes) -> None:
        leaf = self.leaf(name, STS_KEY_SEED)
        cert, key = self.directory / f"sts-{address}.pem", self.directory / f"sts-{address}.key"
        cert.write_bytes(self.pki.chain_pem(leaf))
        key.write_bytes(leaf.key_pem())
        server = await PolicyServer(cert, key, Reply(body=body), address, self.https_port).start()
        self.https_port = server.port
        self.stack.push_async_callback(server.stop)

    async def assess(
        self,
        domain: str,
        zone: str,
        *,
        secure: bool,
        selectors: tuple[str, ...] = (),
        faults: Mapping[str, Fault] | None = None,
    ) -> Assessment:
        """Serve `zone` (signed, on a validating resolver, when `secure`) and assess `domain` through it."""
        # The TLD zone answers as a real one would (NXDOMAIN for _dmarc.test: the DMARC tree walk
        # asks it), rather than the server's REFUSED for names outside its zones.
        zones = {f"{domain}.": zone, "test.": HEAD}
        signed = list(zones) if secure else []
        data = ZoneData.from_texts(zones, secure=signed, validating=secure, faults=faults)
        server = await ZoneServer(data).start()
        self.stack.push_async_callback(server.stop)
        client = DnsClient([Nameserver("127.0.0.1", server.port)], timeout=1.0, attempts=2)
        options = AssessOptions(
            dkim_selectors=selectors,
            ca_file=self.ca_file,
            smtp_timeout=3.0,
            smtp_port=self.smtp.port,
            https_port=self.https_port,
        )
        found = await assess(domain, client, options)
        ports = {server.port: "<dns-port>", self.smtp.port: "<smtp-port>", self.https_port: "<https-port>"}
        VOLATILE[domain] = {str(self.directory): "<tmp>"} | {str(p): shown for p, shown in ports.items() if p}
        resolver = {**found.resolver, "nameservers": [RESOLVER_SHOWN], "queries": 0}
        return replace(found, resolver=resolver, duration_s=1.25)


@contextlib.asynccontextmanager
async def sample_lab() -> AsyncIterator[SampleLab]:
    with tempfile.TemporaryDirectory(prefix="mecsa-report-") as tmp:
        lab = SampleLab(Path(tmp))
        lab.pki.write_root(lab.directory)
        async with lab.stack:
            try:
                yield lab
            finally:
                await lab.smtp.close()


async def _hardened() -> Assessment:
    """Everything MECSA asks for: 10/10/10 under the mecsa profile."""
    async with sample_lab() as lab:
        leaf = lab.leaf("mx1.good.test", MX_KEY_SEED)
        await lab.smtpd("127.0.0.10", leaf)
        policy = b"version: STSv1\r\nmode: enforce\r\nmx: mx1.good.test\r\nmax_age: 1209600\r\n"
        await lab.policy_host("127.0.0.11", "mta-sts.good.test", policy)
        tlsa = f"_{lab.smtp.port}._tcp.mx1"
        zone = HEAD + "\n".join(
            (
                "@ IN MX 10 mx1",
                "mx1 IN A 127.0.0.10",
                "mta-sts IN A 127.0.0.11",
                f"{tlsa} IN TLSA 3 1 1 {leaf.spki_sha256()}",
                '@ IN TXT "v=spf1 mx -all"',
                '_dmarc IN TXT "v=DMARC1; p=reject; rua=mailto:dmarc_reports@good.test"',
                f"{DKIM_SELECTOR}._domainkey IN TXT {zone_txt(f'v=DKIM1; k=rsa; p={DKIM_PUBLIC_KEY}')}",
                '_smtp._tls IN TXT "v=TLSRPTv1; rua=mailto:tls_reports@good.test"',
                '_mta-sts IN TXT "v=STSv1; id=20261105T000000Z;"',
                "",
            )
        )
        return await lab.assess("good.test", zone, secure=True, selectors=(DKIM_SELECTOR,))


async def _neglected() -> Assessment:
    """Little works: SPF ?all, no DMARC, no TLS-RPT, no DKIM selector, a resolver that does not
    validate, one of two MX hosts without STARTTLS, MTA-STS only in testing mode."""
    async with sample_lab() as lab:
        await lab.smtpd("127.0.0.20", lab.leaf("mx1.weak.test", MX_KEY_SEED))
        await lab.smtpd("127.0.0.21", None)
        policy = b"version: STSv1\r\nmode: testing\r\nmx: *.weak.test\r\nmax_age: 86400\r\n"
        await lab.policy_host("127.0.0.22", "mta-sts.weak.test", policy)
        zone = HEAD + "\n".join(
            (
                "@ IN MX 10 mx1",
                "@ IN MX 20 mx2",
                "mx1 IN A 127.0.0.20",
                "mx2 IN A 127.0.0.21",
                "mta-sts IN A 127.0.0.22",
                "out IN A 127.0.0.23",
                '@ IN TXT "v=spf1 mx a:out.weak.test ?all"',
                '_mta-sts IN TXT "v=STSv1; id=1;"',
                "",
            )
        )
        return await lab.assess("weak.test", zone, secure=False)


async def _hostile_smtp(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """An MX host that puts markup and terminal controls in its banner and EHLO lines."""
    banner = f"220 {HOSTILE_SCRIPT}{ESC_CLEAR} ESMTP {BIDI}gnitset\r\n"
    # the first EHLO line is only a greeting (RFC 5321 §4.1.1.1); the extension lines are kept
    ehlo = f"250-evil.test\r\n250-X-{HOSTILE_IMG}\r\n250-X-{OSC_TITLE}{ESC_CLEAR}\r\n250 SIZE 1000\r\n"
    with contextlib.suppress(ConnectionError, OSError):
        writer.write(banner.encode())
        while line := await reader.readline():
            verb = line.strip().upper()
            if verb.startswith((b"EHLO", b"HELO")):
                writer.write(ehlo.encode())
            elif verb == b"QUIT":
                writer.write(b"221 bye\r\n")
                await writer.drain()
                break
            else:
                writer.write(b"502 no\r\n")
            await writer.drain()
    writer.close()


async def _hostile() -> Assessment:
    """Attacker-controlled strings in every DNS and SMTP answer that can reach a report."""
    async with sample_lab() as lab:
        await lab.smtp.add_raw("127.0.0.66", _hostile_smtp)
        policy = f"version: STSv1\r\nmode: {HOSTILE_SCRIPT}\r\nmx: {HOSTILE_IMG}{ESC_CLEAR}\r\nmax_age: 1\r\n"
        await lab.policy_host("127.0.0.67", "mta-sts.evil.test", policy.encode())
        spf = f"v=spf1 {HOSTILE_SCRIPT}{ESC_CLEAR}{OSC_TITLE}{BIDI} {HOSTILE_IMG} -all"
        dmarc = f"v=DMARC1; p=none; rua=mailto:{ESC_CLEAR}{OSC_TITLE}@evil.test,mailto:{HOSTILE_IMG}"
        tls_rpt = f"v=TLSRPTv1; rua=mailto:{BIDI}tset.live@evil.test"
        zone = HEAD + "\n".join(
            (
                "@ IN MX 10 mx",
                "mx IN A 127.0.0.66",
                "mta-sts IN A 127.0.0.67",
                f"@ IN TXT {_quoted(spf)}",
                f"_dmarc IN TXT {_quoted(dmarc)}",
                f"_smtp._tls IN TXT {_quoted(tls_rpt)}",
                f"_mta-sts IN TXT {_quoted(f'v=STSv1; id={HOSTILE_SCRIPT};')}",
                f"{DKIM_SELECTOR}._domainkey IN TXT {_quoted(f'v=DKIM1; k=rsa; p={HOSTILE_IMG}')}",
                "",
            )
        )
        return await lab.assess("evil.test", zone, secure=True, selectors=(DKIM_SELECTOR,))


# Per sample (by domain): real value -> placeholder, filled in as it is built (ports, the CA file's
# directory).
VOLATILE: dict[str, dict[str, str]] = {}

# What changes from run to run although the sample does not, in the order they are replaced.
_PATTERNS = (
    (re.compile(r"\d{4}-\d\d-\d\d[T ]\d\d:\d\d:\d\d(?:\.\d+)?(?:\+00:00|Z)?"), "<timestamp>"),
    # a JSON member ("serial": "1f...") or a folded HTML detail row (serial</th><td>1f...)
    (re.compile(r'(serial(?:": "|</th><td>))[0-9a-f]+'), r"\1<serial>"),
    # the key's digest (a fresh key per run), in the same two shapes
    (re.compile(r'(spki_sha256(?:": "|</th><td>))[0-9a-f]{64}'), r"\1<spki_sha256>"),
    (re.compile(r'(elapsed_s(?:": |</th><td>))[0-9.]+'), r"\1<elapsed>"),
)


def normalise(text: str, sample: Assessment) -> str:
    """The rendered `text` of `sample` with the values that change between runs as <placeholders>.

    Known values (ephemeral ports, the temporary directory) are replaced where they stand as whole
    words; then timestamps (certificate dates, check times), certificate serials and session times.
    Everything else in the goldens is what the real run produced.
    """
    for real, shown in sorted(VOLATILE[sample.domain].items(), key=lambda kv: -len(kv[0])):
        text = re.sub(rf"(?<![0-9A-Za-z.]){re.escape(real)}(?![0-9A-Za-z])", shown, text)
    for pattern, shown in _PATTERNS:
        text = pattern.sub(shown, text)
    return text


def run_sample(build: Callable[[], Coroutine[Any, Any, Assessment]]) -> Assessment:
    """Build a sample on an event loop of its own (in a thread, so a running loop does not matter)."""
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(lambda: asyncio.run(build())).result()


@functools.cache
def hardened() -> Assessment:
    return run_sample(_hardened)


@functools.cache
def neglected() -> Assessment:
    return run_sample(_neglected)


@functools.cache
def hostile() -> Assessment:
    return run_sample(_hostile)


SAMPLES: dict[str, Callable[[], Assessment]] = {
    "hardened": hardened,
    "neglected": neglected,
    "hostile": hostile,
}
