"""The DNSSEC chain lab: each way a chain of trust breaks, against real servers, our verdict beside Unbound's.

One network namespace of its own (loopback only, nothing leaves it) holds:

- Knot at 127.0.0.2, serving a fake root, `test.` and one child zone per case, all signed offline
  with `ldns-keygen`/`ldns-signzone` (an independent signer: we never judge our own signatures)
  and each broken in exactly one link;
- a validating Unbound at 127.0.0.3 (trust anchor: the fake root's DS);
- a non-validating Unbound at 127.0.0.4 (`module-config: "iterator"`): a plain recursive forwarder
  that passes DNSSEC records but never sets AD.

For every case the probe (run inside the namespace) asks Unbound for its verdict (AD: secure,
SERVFAIL: bogus, neither: insecure), then mecsa's resolver in `own` mode through the plain one and
in `both` mode through the validating one, and prints one JSON object per case. It also times each
case's lookup in `resolver` mode against `own` mode and counts the extra questions.

    sudo python -m mecsa.lab.dnssec_chain [--keep]      # up, probe, print the table, down
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

AUTH = "127.0.0.2"
VALIDATING = "127.0.0.3"
PLAIN = "127.0.0.4"
# With --delay: a second namespace for the client, joined to the servers' by a delaying link.
LINK_SERVER = "10.77.0.1"
LINK_CLIENT = "10.77.0.2"
LINK_PLAIN_PORT = 5353  # both Unbounds on the link address: the plain one on another port
NS_NAME = "ns.lab."
TLSA_DATA = "3 1 1 " + "5c" * 32
DAY = 86400


@dataclass(frozen=True, slots=True)
class ChainCase:
    """One way to break (or keep) the chain: a child zone of `test.`, the question, what must come out."""

    name: str
    zone: str  # without the final dot
    qname: str
    qtype: str
    expect: str  # secure | insecure | bogus
    link: str  # the named link must start with this (after {tag} placeholders are filled)
    description: str


CASES: tuple[ChainCase, ...] = (
    ChainCase(
        "healthy",
        "good.test",
        "_25._tcp.mx1.good.test",
        "TLSA",
        "secure",
        "secure (chain . → test. → good.test.)",
        "ECDSA P-256, NSEC: nothing broken",
    ),
    ChainCase(
        "expired-rrsig",
        "expired.test",
        "_25._tcp.mx1.expired.test",
        "TLSA",
        "bogus",
        "bogus: RRSIG over _25._tcp.mx1.expired.test TLSA expired ",
        "the TLSA RRset's signature expired a month ago; the rest of the zone is fresh",
    ),
    ChainCase(
        "ds-wrong-digest",
        "baddigest.test",
        "mx1.baddigest.test",
        "A",
        "bogus",
        "bogus: DS at test. for baddigest.test. (key tag {tag}, alg 13) has a digest that matches no DNSKEY",
        "the DS at test. has the right key tag and algorithm, but a digest of zeros",
    ),
    ChainCase(
        "ds-other-algorithm",
        "otheralg.test",
        "mx1.otheralg.test",
        "A",
        "bogus",
        "bogus: DS at test. for otheralg.test. (key tag {tag}, alg 15) matches no DNSKEY",
        "the DS is for an Ed25519 key; the zone signs with ECDSA only",
    ),
    ChainCase(
        "rsasha1",
        "sha1.test",
        "mx1.sha1.test",
        "A",
        "secure",
        "secure (chain . → test. → sha1.test.)",
        "signed with RSASHA1, 1024 bits: validates, but dnssec.weak_algorithm warns",
    ),
    ChainCase(
        "nsec3-opt-out",
        "optout.test",
        "mx1.sub.optout.test",
        "A",
        "insecure",
        "insecure (no DS for sub.optout.test at optout.test., proven by NSEC3 opt-out)",
        "NSEC3 with opt-out; sub.optout.test is an unsigned delegation left out of the chain",
    ),
    ChainCase(
        "nsec3-iterations",
        "iter.test",
        "nope.iter.test",
        "A",
        "insecure",
        "insecure (NSEC3 at iter.test. uses 200 iterations, over 150",
        "NSEC3 with 200 extra iterations: its denials count as insecure (RFC 9276 §3.2)",
    ),
    ChainCase(
        "insecure-delegation",
        "weak.test",
        "mx1.weak.test",
        "A",
        "insecure",
        "insecure (no DS for weak.test at test., proven by NSEC)",
        "an unsigned zone under the signed test.",
    ),
    ChainCase(
        "missing-dnskey",
        "nokey.test",
        "mx1.nokey.test",
        "A",
        "bogus",
        "bogus: no DNSKEY at nokey.test., though DS at test. for nokey.test. (key tag {tag}, alg 13)",
        "signed, DS at the parent, but the DNSKEY RRset removed from the zone",
    ),
    ChainCase(
        "wildcard-tlsa",
        "wild.test",
        "_25._tcp.mx1.wild.test",
        "TLSA",
        "secure",
        "secure (chain . → test. → wild.test.; expanded from *._tcp.mx1.wild.test., proven by NSEC)",
        "the TLSA comes from *._tcp.mx1.wild.test",
    ),
    ChainCase(
        "stripped-rrsig",
        "stripped.test",
        "mx1.stripped.test",
        "A",
        "bogus",
        "bogus: no RRSIG over mx1.stripped.test A, though stripped.test. is signed "
        "(chain . → test. → stripped.test.)",
        "a signed zone with one RRset's signature removed (what a stripping middlebox does)",
    ),
    ChainCase(
        "not-yet-valid",
        "future.test",
        "mx1.future.test",
        "A",
        "bogus",
        "bogus: RRSIG over future.test DNSKEY is not valid before ",
        "the whole zone signed with an inception 3 days ahead (beyond the 24 h skew validators allow)",
    ),
    ChainCase(
        "ds-sha1-only",
        "dssha1.test",
        "mx1.dssha1.test",
        "A",
        "secure",
        "secure (chain . → test. → dssha1.test.)",
        "the only DS has a SHA-1 digest: validates, but dnssec.weak_algorithm warns (RFC 8624 §3.3)",
    ),
    ChainCase(
        "ds-unknown-algorithm",
        "privalg.test",
        "mx1.privalg.test",
        "A",
        "insecure",
        "insecure (DS at test. for privalg.test. lists only PRIVATEDNS (253)",
        "the only DS is for algorithm 253 (private): no validator can use it; the child counts as unsigned",
    ),
    ChainCase(
        "cname-into-unsigned",
        "good.test",
        "alias.good.test",
        "A",
        "insecure",
        "insecure (no DS for weak.test at test., proven by NSEC)",
        "a signed CNAME in good.test pointing at a name in the unsigned weak.test",
    ),
)


# ---- zones, signed offline -------------------------------------------------------------------


class ChainLabError(RuntimeError):
    """A tool or server of the DNSSEC lab failed."""


def _run(argv: Sequence[str], cwd: Path | None = None) -> str:
    done = subprocess.run(list(argv), capture_output=True, text=True, cwd=cwd, check=False)
    if done.returncode != 0:
        raise ChainLabError(f"{' '.join(argv)}: {(done.stderr or done.stdout).strip()}")
    return done.stdout


@dataclass
class _Key:
    base: str  # ldns base name, K<zone>+<alg>+<tag>
    tag: int
    ds: str  # the DS line (SHA-256)


def _keygen(workdir: Path, zone: str, algorithm: str = "ECDSAP256SHA256", bits: int = 0) -> _Key:
    argv = ["ldns-keygen", "-a", algorithm, "-k"] + (["-b", str(bits)] if bits else []) + [f"{zone}."]
    base = _run(argv, cwd=workdir).strip()
    ds = _run(["ldns-key2ds", "-n", "-2", f"{base}.key"], cwd=workdir).strip()
    return _Key(base, int(base.rsplit("+", 1)[1]), ds)


def _sign(workdir: Path, zone: str, text: str, key: _Key, extra: Sequence[str] = ()) -> str:
    unsigned = workdir / f"{zone}.unsigned"
    unsigned.write_text(text, encoding="utf-8")
    out = workdir / f"{zone}.signed"
    _run(["ldns-signzone", *extra, "-f", str(out), str(unsigned), key.base], cwd=workdir)
    return out.read_text(encoding="utf-8")


def _head(zone: str) -> str:
    origin = f"{zone}." if zone else "."
    return (
        f"$ORIGIN {origin}\n$TTL 300\n@ SOA {NS_NAME} hostmaster.lab. 1 3600 600 86400 300\n@ NS {NS_NAME}\n"
    )


def _leaf(zone: str, *, wildcard: bool = False, extra: str = "") -> str:
    tlsa_owner = "*._tcp.mx1" if wildcard else "_25._tcp.mx1"
    # 127.0.0.25 is the namespace's own loopback: the assessment's SMTP attempt stays inside it.
    return _head(zone) + f"@ MX 10 mx1\nmx1 A 127.0.0.25\n{tlsa_owner} TLSA {TLSA_DATA}\n" + extra


def _splice_expired(fresh: str, stale: str, owner: str, rdtype: str) -> str:
    """`fresh` with the RRSIG over (owner, rdtype) taken from `stale` (signed a month ago)."""
    import dns.rdatatype
    import dns.zone

    origin = owner.split(".", 3)[-1]  # _25._tcp.mx1.<zone>.
    fz = dns.zone.from_text(fresh, origin=origin, relativize=False, check_origin=False)
    sz = dns.zone.from_text(stale, origin=origin, relativize=False, check_origin=False)
    covers = dns.rdatatype.from_text(rdtype)
    fz.replace_rdataset(owner, sz.find_rdataset(owner, "RRSIG", covers))
    return fz.to_text(relativize=False)


def _without(signed: str, owner: str, rdtype: str) -> str:
    """`signed` with the RRset (and its RRSIG) of (owner, rdtype) removed."""
    import dns.rdatatype
    import dns.zone

    zone = dns.zone.from_text(signed, origin=owner, relativize=False, check_origin=False)
    kind = dns.rdatatype.from_text(rdtype)
    zone.delete_rdataset(owner, kind)
    zone.delete_rdataset(owner, dns.rdatatype.RRSIG, kind)
    if zone.get_rdataset(owner, kind) is not None:
        raise ChainLabError(f"could not remove {owner} {rdtype}")
    return zone.to_text(relativize=False)


def _without_rrsig(signed: str, owner: str, rdtype: str) -> str:
    """`signed` with the RRSIG over (owner, rdtype) removed, the data kept."""
    import dns.rdatatype
    import dns.zone

    zone = dns.zone.from_text(signed, origin=owner.split(".", 1)[1], relativize=False, check_origin=False)
    zone.delete_rdataset(owner, dns.rdatatype.RRSIG, dns.rdatatype.from_text(rdtype))
    return zone.to_text(relativize=False)


@dataclass
class Built:
    zones: dict[str, str] = field(default_factory=dict)  # zone ("" for the root) -> zone file text
    tags: dict[str, int] = field(default_factory=dict)  # case name -> the key tag its link names
    root_ds: str = ""


KNOT_SIGNED = {"optout.test": f"sub NS {NS_NAME}\n"}  # zones Knot signs itself, with their extra records


def build_zones(workdir: Path, knot_ds: dict[str, list[str]], now: float | None = None) -> Built:
    """Every case's child zone, `test.` with their DS records (broken where a case says), the root.

    The zones in `KNOT_SIGNED` are left unsigned here: Knot signs them (NSEC3 opt-out, which
    ldns-signzone only flags without leaving the insecure delegations out); `knot_ds` has their DS.
    """
    workdir.mkdir(parents=True, exist_ok=True)
    stamp = time.time() if now is None else now
    past = [
        "-i",
        time.strftime("%Y%m%d%H%M%S", time.gmtime(stamp - 60 * DAY)),
        "-e",
        time.strftime("%Y%m%d%H%M%S", time.gmtime(stamp - 30 * DAY)),
    ]
    built = Built()
    ds: dict[str, list[str]] = dict(knot_ds)

    def plain(zone: str, text: str, extra: Sequence[str] = (), **keyargs: object) -> _Key:
        key = _keygen(workdir, zone, **keyargs)  # type: ignore[arg-type]
        built.zones[zone] = _sign(workdir, zone, text, key, extra)
        ds[zone] = [key.ds]
        return key

    plain("good.test", _leaf("good.test", extra="alias CNAME mx1.weak.test.\n"))
    key = _keygen(workdir, "expired.test")
    fresh = _sign(workdir, "expired.test", _leaf("expired.test"), key)
    stale = _sign(workdir, "expired.test", _leaf("expired.test"), key, past)
    built.zones["expired.test"] = _splice_expired(fresh, stale, "_25._tcp.mx1.expired.test.", "TLSA")
    ds["expired.test"] = [key.ds]

    key = plain("baddigest.test", _leaf("baddigest.test"))
    fields = key.ds.split()
    ds["baddigest.test"] = [" ".join([*fields[:-1], "0" * len(fields[-1])])]
    built.tags["ds-wrong-digest"] = key.tag

    plain("otheralg.test", _leaf("otheralg.test"))
    other = _keygen(workdir, "otheralg.test", "ED25519")
    ds["otheralg.test"] = [other.ds]
    built.tags["ds-other-algorithm"] = other.tag

    plain("sha1.test", _leaf("sha1.test"), algorithm="RSASHA1", bits=1024)
    for zone, extra in KNOT_SIGNED.items():
        built.zones[zone] = _leaf(zone, extra=extra)
    built.zones["sub.optout.test"] = _leaf("sub.optout.test")  # unsigned, no DS
    plain("iter.test", _leaf("iter.test"), ["-n", "-t", "200"])
    built.zones["weak.test"] = _leaf("weak.test")  # unsigned, no DS at test.
    key = plain("nokey.test", _leaf("nokey.test"))
    built.zones["nokey.test"] = _without(built.zones["nokey.test"], "nokey.test.", "DNSKEY")
    built.tags["missing-dnskey"] = key.tag
    plain("wild.test", _leaf("wild.test", wildcard=True))
    key = plain("stripped.test", _leaf("stripped.test"))
    built.zones["stripped.test"] = _without_rrsig(built.zones["stripped.test"], "mx1.stripped.test.", "A")
    ahead = [
        "-i",
        time.strftime("%Y%m%d%H%M%S", time.gmtime(stamp + 3 * DAY)),
        "-e",
        time.strftime("%Y%m%d%H%M%S", time.gmtime(stamp + 30 * DAY)),
    ]
    plain("future.test", _leaf("future.test"), ahead)
    key = plain("dssha1.test", _leaf("dssha1.test"))
    ds["dssha1.test"] = [_run(["ldns-key2ds", "-n", "-1", f"{key.base}.key"], cwd=workdir).strip()]
    plain("privalg.test", _leaf("privalg.test"))
    ds["privalg.test"] = [f"privalg.test. 300 IN DS 4711 253 2 {'ab' * 32}"]

    children = [z for z in built.zones if z.count(".") == 1]
    tld = _head("test") + "".join(
        f"{c}. NS {NS_NAME}\n" + "".join(f"{d}\n" for d in ds.get(c, ())) for c in children
    )
    test_key = _keygen(workdir, "test")
    built.zones["test"] = _sign(workdir, "test", tld, test_key)
    root = _head("") + f"test. NS {NS_NAME}\n{test_key.ds}\n{NS_NAME} A {AUTH}\n"
    root_key = _keygen(workdir, "")
    built.zones[""] = _sign(workdir, "", root, root_key)
    built.root_ds = root_key.ds
    return built


# ---- servers -----------------------------------------------------------------------------------


def knot_conf(workdir: Path, zones: Sequence[str]) -> str:
    """Knot serves every zone file as it is, except `KNOT_SIGNED`: those it signs, NSEC3 with opt-out."""
    lines = [
        "server:",
        f"  rundir: {workdir / 'knot-run'}",
        f"  listen: {AUTH}@53",
        "log:",
        f"  - target: {workdir / 'knot.log'}",
        "    any: info",
        "database:",
        f"  storage: {workdir / 'knot-db'}",
        "policy:",
        "  - id: optout",
        "    algorithm: ecdsap256sha256",
        "    single-type-signing: on",
        "    manual: on",
        "    nsec3: on",
        "    nsec3-opt-out: on",
        "    nsec3-iterations: 0",
        "    nsec3-salt-length: 0",
        "template:",
        "  - id: default",
        f"    storage: {workdir / 'zones'}",
        "    journal-content: none",
        "    zonefile-sync: -1",
        "zone:",
    ]
    for zone in zones:
        lines += [f"  - domain: {zone}." if zone else "  - domain: .", f"    file: {zone or 'root'}.zone"]
        if zone in KNOT_SIGNED:
            lines += ["    dnssec-signing: on", "    dnssec-policy: optout"]
    return "\n".join(lines) + "\n"


def unbound_conf(workdir: Path, address: str, *, validating: bool, link: bool = False) -> str:
    tag = "validating" if validating else "plain"
    lines = [
        "server:",
        f"  interface: {address}",
        *([f"  interface: {LINK_SERVER}@{53 if validating else LINK_PLAIN_PORT}"] if link else []),
        *(["  access-control: 10.77.0.0/24 allow"] if link else []),
        "  port: 53",
        "  do-ip6: no",
        '  username: ""',
        '  chroot: ""',
        f'  directory: "{workdir}"',
        f'  pidfile: "{workdir / f"unbound-{tag}.pid"}"',
        f'  logfile: "{workdir / f"unbound-{tag}.log"}"',
        "  use-syslog: no",
        "  verbosity: 1",
        "  val-log-level: 2",
        "  do-not-query-localhost: no",
        "  aggressive-nsec: no",
        "  access-control: 127.0.0.0/8 allow",
        f'  root-hints: "{workdir / "root.hints"}"',
        "  trust-anchor-signaling: no",
        '  local-zone: "test." nodefault',  # RFC 6761 names are NXDOMAIN in Unbound by default
        f'  module-config: "{"validator iterator" if validating else "iterator"}"',
    ]
    if validating:
        lines.append(f'  trust-anchor-file: "{workdir / "root.ds"}"')
    return "\n".join(lines) + "\n"


@dataclass
class ChainLab:
    namespace: str
    workdir: Path
    built: Built
    pids: list[int] = field(default_factory=list)
    client_namespace: str | None = None  # with a delay: where the probe runs


def up(workdir: Path, delay: float = 0.0) -> ChainLab:
    """Sign the zones, make the namespace, start Knot and both Unbounds.

    With `delay` (seconds per round trip), the probe runs in a second namespace that reaches the
    Unbounds only through `mecsa.lab.delay`'s relay, which holds every frame delay/2 each way.
    """
    if os.geteuid() != 0:
        raise ChainLabError("the DNSSEC chain lab needs root (a network namespace of its own)")
    for program in ("knotd", "keymgr", "unbound", "ldns-signzone", "ldns-keygen", "ldns-key2ds", "ip"):
        if shutil.which(program) is None:
            raise ChainLabError(f"{program} is not installed (see scripts/bootstrap)")
    if workdir.exists():
        shutil.rmtree(workdir)
    (workdir / "keys").mkdir(parents=True)
    for sub in ("zones", "knot-run", "knot-db"):
        (workdir / sub).mkdir()
    # Knot's own keys first (keymgr reads the same configuration knotd will), for their DS at test.
    conf = workdir / "knot.conf"
    conf.write_text(knot_conf(workdir, list(KNOT_SIGNED)), encoding="utf-8")
    knot_ds: dict[str, list[str]] = {}
    for zone in KNOT_SIGNED:
        _run(
            [
                "keymgr",
                "-c",
                str(conf),
                f"{zone}.",
                "generate",
                "algorithm=ecdsap256sha256",
                "ksk=yes",
                "zsk=yes",
            ]
        )
        lines = _run(["keymgr", "-c", str(conf), f"{zone}.", "ds"]).splitlines()
        knot_ds[zone] = [line for line in lines if " DS " in line and line.split()[-2] == "2"]
    built = build_zones(workdir / "keys", knot_ds)
    for zone, text in built.zones.items():
        (workdir / "zones" / f"{zone or 'root'}.zone").write_text(text, encoding="utf-8")
    (workdir / "knot.conf").write_text(knot_conf(workdir, list(built.zones)), encoding="utf-8")
    (workdir / "root.hints").write_text(f". 3600 NS {NS_NAME}\n{NS_NAME} 3600 A {AUTH}\n", encoding="utf-8")
    (workdir / "root.ds").write_text(built.root_ds + "\n", encoding="utf-8")
    for address, validating in ((VALIDATING, True), (PLAIN, False)):
        tag = "validating" if validating else "plain"
        text = unbound_conf(workdir, address, validating=validating, link=delay > 0)
        (workdir / f"unbound-{tag}.conf").write_text(text, encoding="utf-8")
    # One per lab directory, so that two labs of one process (the tests) do not collide.
    namespace = "mecsa-dnssec-" + hashlib.sha256(str(workdir.resolve()).encode()).hexdigest()[:10]
    _run(["ip", "netns", "add", namespace])
    lab = ChainLab(namespace, workdir, built)
    try:
        _run(["ip", "netns", "exec", namespace, "ip", "link", "set", "lo", "up"])
        if delay > 0:
            _start_link(lab, delay)
        for argv in (
            ["knotd", "-c", str(workdir / "knot.conf")],
            ["unbound", "-d", "-c", str(workdir / "unbound-validating.conf")],
            ["unbound", "-d", "-c", str(workdir / "unbound-plain.conf")],
        ):
            log = (workdir / f"{Path(argv[0]).name}-{len(lab.pids)}.out").open("wb")
            proc = subprocess.Popen(["ip", "netns", "exec", namespace, *argv], stdout=log, stderr=log)
            lab.pids.append(proc.pid)
    except BaseException:
        down(lab)
        raise
    (workdir / "lab.json").write_text(
        json.dumps(
            {
                "namespace": namespace,
                "pids": lab.pids,
                "tags": built.tags,
                "root_ds": built.root_ds,
                "zones": list(built.zones),
                "link": delay > 0,
            }
        ),
        encoding="utf-8",
    )
    return lab


def _start_link(lab: ChainLab, delay: float) -> None:
    """The client namespace and the two halves of the delaying link (python -m mecsa.lab.delay)."""
    import socket

    client = f"{lab.namespace}-cli"
    _run(["ip", "netns", "add", client])
    lab.client_namespace = client
    _run(["ip", "netns", "exec", client, "ip", "link", "set", "lo", "up"])
    server_end, client_end = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    halves = ((lab.namespace, server_end, "dly0", LINK_SERVER), (client, client_end, "dly1", LINK_CLIENT))
    started = []
    for namespace, end, name, address in halves:
        argv = [sys.executable, "-m", "mecsa.lab.delay", "--fd", str(end.fileno()), "--name", name]
        argv += ["--address", f"{address}/24", "--delay", str(delay / 2)]
        proc = subprocess.Popen(
            ["ip", "netns", "exec", namespace, *argv], pass_fds=(end.fileno(),), stdout=subprocess.PIPE
        )
        lab.pids.append(proc.pid)
        started.append(proc)
    server_end.close()
    client_end.close()
    for proc in started:
        assert proc.stdout is not None
        if proc.stdout.readline().strip() != b"ready":
            raise ChainLabError("the delaying link did not come up")


def down(lab: ChainLab, *, keep_files: bool = False) -> None:
    """Stop the servers this lab started (by pid), delete its namespace and, unless kept, its files."""
    import signal

    for pid in lab.pids:
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            continue
    deadline = time.monotonic() + 5
    for pid in lab.pids:
        while time.monotonic() < deadline:
            try:
                done, _ = os.waitpid(pid, os.WNOHANG)
            except ChildProcessError:
                break
            if done:
                break
            time.sleep(0.05)
        else:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
            # Reap it before the files go: a dying knotd still writes its key database.
            with contextlib.suppress(ChildProcessError):
                os.waitpid(pid, 0)
    for namespace in (lab.namespace, lab.client_namespace):
        if namespace:
            subprocess.run(["ip", "netns", "del", namespace], capture_output=True, check=False)
    if not keep_files:
        shutil.rmtree(lab.workdir, ignore_errors=True)


# ---- the probe (inside the namespace) ----------------------------------------------------------


def probe(workdir: Path) -> list[dict[str, object]]:
    """Run inside the namespace: every case through Unbound and through mecsa, one dict each."""
    return asyncio.run(_probe(workdir))


def _servers(link: bool) -> tuple[tuple[str, int], tuple[str, int]]:
    """(validating, plain) Unbound addresses as the probe reaches them."""
    if link:
        return (LINK_SERVER, 53), (LINK_SERVER, LINK_PLAIN_PORT)
    return (VALIDATING, 53), (PLAIN, 53)


async def _probe(workdir: Path) -> list[dict[str, object]]:
    from mecsa.assess import assess
    from mecsa.dns.answer import DnsAnswer
    from mecsa.dns.resolver import DnsClient, Nameserver, Resolver
    from mecsa.dns.validation.anchors import load_anchor_file
    from mecsa.dns.validation.verdict import DnssecMode
    from mecsa.observe import AssessOptions

    meta = json.loads((workdir / "lab.json").read_text(encoding="utf-8"))
    anchors = load_anchor_file(workdir / "root.ds")
    validating, plain = _servers(bool(meta.get("link")))
    await _wait_ready(meta["zones"], validating, plain, bool(meta.get("link")))

    class CountingClient(DnsClient):
        """Counts the questions that really go out (cache hits never reach `ask`)."""

        sent = 0

        async def ask(self, name: Any, rdtype: Any, *, cd: bool = False) -> Any:
            self.sent += 1
            return await super().ask(name, rdtype, cd=cd)

    def client(server: tuple[str, int], mode: DnssecMode) -> CountingClient:
        return CountingClient(
            [Nameserver(*server)], timeout=2.0, attempts=2, dnssec_mode=mode, trust_anchors=anchors
        )

    modes = (
        ("resolver", validating, DnssecMode.RESOLVER),
        ("both", validating, DnssecMode.BOTH),
        ("own", plain, DnssecMode.OWN),
    )
    rows: list[dict[str, object]] = []
    for case in CASES:
        unbound = await _unbound_verdict(case.qname, case.qtype, validating)
        timings: dict[str, float] = {}
        answers: dict[str, DnsAnswer] = {}
        counts: dict[str, int] = {}
        for _warm_up in range(2):  # the second round is timed: the Unbounds' caches are warm by then
            for label, address, mode in modes:
                asker = client(address, mode)
                resolver = Resolver(asker)
                started = time.perf_counter()
                answers[label] = await resolver.resolve(case.qname, case.qtype)
                timings[label] = round((time.perf_counter() - started) * 1000, 1)
                counts[label] = asker.sent
        # Whole assessments (mx, dnssec, dane), timed per mode; the own-mode one, through the plain
        # forwarder, is checked answer by answer against Unbound below.
        only = AssessOptions(only=frozenset({"mx", "dnssec", "dane"}), smtp_timeout=1.0, tls_versions=False)
        assess_ms: dict[str, float] = {}
        assess_questions: dict[str, int] = {}
        for _warm_up in range(2):  # timed the second time, the Unbounds' caches warm, as above
            for label, server, mode in modes:
                asker = client(server, mode)
                started = time.perf_counter()
                assessed = await assess(case.zone, asker, only)
                assess_ms[label] = round((time.perf_counter() - started) * 1000, 1)
                assess_questions[label] = asker.sent
        details = next(r.details for r in assessed.results if r.check == "dnssec")
        subjects = details.get("subjects", [])
        assert isinstance(subjects, list)
        differ = []
        for subject in subjects:
            theirs = await _unbound_verdict(str(subject["name"]), str(subject["type"]), validating)
            if theirs != subject["dnssec"]:
                differ.append(
                    f"{subject['name']} {subject['type']}: ours {subject['link']}; Unbound {theirs}"
                )
        link = case.link.replace("{tag}", str(meta["tags"].get(case.name, "")))
        own, both = answers["own"], answers["both"]
        rows.append(
            {
                "case": case.name,
                "description": case.description,
                "question": f"{case.qname} {case.qtype}",
                "unbound": unbound,
                "expect": case.expect,
                "expected_link": link,
                "own": own.dnssec.value,
                "own_link": own.validation.link if own.validation else "",
                "own_notes": [n.text for n in own.validation.notes] if own.validation else [],
                "both": both.dnssec.value,
                "both_link": both.validation.link if both.validation else "",
                "both_disagreement": both.disagreement,
                "ms": timings,
                "questions": counts,
                "assess_dnssec": assessed.verdicts["dnssec"].status.value,
                "assess_dane_findings": sorted({f.id for f in assessed.findings if f.protocol == "dane"}),
                "assess_subjects": len(subjects),
                "assess_disagreements": differ,
                "assess_ms": assess_ms,
                "assess_questions": assess_questions,
            }
        )
    return rows


async def _wait_ready(
    zones: Sequence[str], validating: tuple[str, int], plain: tuple[str, int], link: bool
) -> None:
    """Until Knot serves every zone (signed ones once signed) and both Unbounds answer.

    Across the link Knot is out of reach: each zone's SOA is then asked through the plain Unbound,
    which answers NOERROR once Knot serves the zone.
    """
    import dns.asyncquery
    import dns.exception
    import dns.message
    import dns.rcode

    deadline = time.monotonic() + 15
    auth = plain if link else (AUTH, 53)  # the plain one: bogus zones SERVFAIL at the validating one
    checks = [(auth, f"{z}." if z else ".") for z in zones] + [(validating, "."), (plain, ".")]
    for (address, port), zone in checks:
        while True:
            try:
                query = dns.message.make_query(zone, "SOA", want_dnssec=True)
                reply = await dns.asyncquery.udp(query, address, timeout=0.5, port=port)
                if reply.rcode() == dns.rcode.NOERROR:
                    break
                raise OSError("not yet")
            except (dns.exception.Timeout, OSError):
                if time.monotonic() > deadline:
                    raise ChainLabError(f"no DNS server answered {zone} SOA at {address}:{port}") from None
                await asyncio.sleep(0.1)


async def _unbound_verdict(qname: str, qtype: str, server: tuple[str, int]) -> str:
    """The validating Unbound's word: AD is secure, SERVFAIL is bogus, an answer without AD insecure."""
    import dns.asyncquery
    import dns.flags
    import dns.message
    import dns.rcode

    query = dns.message.make_query(qname, qtype, want_dnssec=True)
    response = await dns.asyncquery.udp(query, server[0], timeout=3.0, port=server[1])
    if response.rcode() == dns.rcode.SERVFAIL:
        return "bogus"
    if response.flags & dns.flags.AD:
        return "secure"
    return "insecure"


# ---- the table ---------------------------------------------------------------------------------


def agrees(row: dict[str, object]) -> bool:
    """Unbound and we agree on secure versus bogus (insecure is neither: Unbound may not say why)."""
    ours = {row["own"], row["both"]}
    return len(ours) == 1 and row["own"] == row["unbound"]


def table(rows: Sequence[dict[str, object]]) -> str:
    """Markdown: one row per case, Unbound's verdict, ours (own and both) and our named link."""
    out = [
        "| case | Unbound | ours (own / both) | our named link | one answer: own / both / resolver | "
        "assessment (mx, dnssec, dane): own / both / resolver |",
        "|---|---|---|---|---|---|",
    ]
    for row in rows:
        ms = row["ms"]
        questions = row["questions"]
        assert isinstance(ms, dict) and isinstance(questions, dict)
        whole_ms, whole_q = row["assess_ms"], row["assess_questions"]
        assert isinstance(whole_ms, dict) and isinstance(whole_q, dict)
        cost = " / ".join(f"{ms[m]:.0f} ms, {questions[m]} q" for m in ("own", "both", "resolver"))
        whole = " / ".join(f"{whole_ms[m]:.0f} ms, {whole_q[m]} q" for m in ("own", "both", "resolver"))
        verdicts = f"{row['own']} / {row['both']}"
        out.append(
            f"| {row['case']} | {row['unbound']} | {verdicts} | {row['own_link']} | {cost} | {whole} |"
        )
    return "\n".join(out)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("command", nargs="?", default="run", choices=["run", "probe"])
    parser.add_argument("--dir", type=Path, default=Path(f"/run/mecsa-dnssec-lab-{os.getpid()}"))
    parser.add_argument("--keep", action="store_true", help="keep the zones, configs and logs")
    parser.add_argument("--json", action="store_true", help="print the rows as JSON")
    parser.add_argument(
        "--delay", type=float, default=0.0, help="seconds per round trip between the probe and the Unbounds"
    )
    args = parser.parse_args(argv)
    if args.command == "probe":
        print(json.dumps(probe(args.dir)))
        return 0
    lab = up(args.dir, args.delay)
    try:
        rows = run_probe(lab)
    finally:
        down(lab, keep_files=args.keep)
    print(json.dumps(rows, indent=2, ensure_ascii=False) if args.json else table(rows))
    return 0 if all(agrees(r) for r in rows) else 1


def run_probe(lab: ChainLab) -> list[dict[str, object]]:
    """The probe in a Python inside the lab's namespace (the only place its servers are reachable)."""
    where = lab.client_namespace or lab.namespace
    argv = ["ip", "netns", "exec", where, sys.executable, "-m", "mecsa.lab.dnssec_chain"]
    out = _run([*argv, "probe", "--dir", str(lab.workdir)])
    rows: list[dict[str, object]] = json.loads(out)
    return rows


if __name__ == "__main__":
    sys.exit(main())
