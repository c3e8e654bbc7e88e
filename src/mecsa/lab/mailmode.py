"""Mail mode in the lab: the receiver of `mecsa mailmode serve`, its signed trap zone, and more senders.

Only with `mecsa lab up --mailmode` (or `up(..., mailmode=True)`): the default lab stays as small
and fast as before. It adds, on the lab's bridge:

    .7 rcv   `python -m mecsa mailmode serve` for mailmode.test, with STARTTLS and the lab resolver
    .8 snm   a sender Postfix for may.test with `smtp_tls_security_level = may` (no DANE)
    .9 sns   a DANE sender Postfix for nospf.test, whose SPF does not list its address

and the zones: mailmode.test (the records `mailmode.enforcement.receiver_zone_records` generates:
MX with a matching TLSA, the DANE trap host whose TLSA never matches, the MTA-STS trap whose
enforce policy excludes its MX, served by the lab's HTTPS server) and the two senders' domains
(SPF, DKIM, DMARC p=reject, as sender.test). All are signed by the lab's Knot.

The hardened sender is the lab's own DANE sender (sender.test, node "snd"); `SENDERS` names all
three by role, and `send` mails from any of them and follows each recipient in its Postfix log.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import re
import sys
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import rsa

from mecsa.lab.build import Daemon
from mecsa.lab.build import sender_daemons as build_sender
from mecsa.lab.ca import LabCa
from mecsa.lab.plan import (
    NET,
    NS_HOST,
    RESOLVER_IP,
    SENDER_DOMAIN,
    SENDER_IP,
    SENDER_SELECTOR,
    WEB_IP,
    LabPlan,
)
from mecsa.lab.state import LabError, LabState

RECEIVER_DOMAIN = "mailmode.test"
RECEIVER_IP = f"{NET}.7"
RECEIVER_NODE = "rcv"
# An address no lab node has: the SPF of nospf.test names it instead of its real sender.
SPF_ELSEWHERE = f"{NET}.250"
_TTL = 300


@dataclass(frozen=True, slots=True)
class Sender:
    """One sender Postfix of the lab: its role, namespace node, domain, address and TLS level."""

    role: str
    node: str
    domain: str
    address: str
    tls_level: str = "dane"
    in_spf: bool = True

    @property
    def host(self) -> str:
        return f"mail.{self.domain}"

    @property
    def from_address(self) -> str:
        return f"alice@{self.domain}"

    def to_json(self) -> dict[str, Any]:
        return {
            "role": self.role,
            "node": self.node,
            "domain": self.domain,
            "host": self.host,
            "address": self.address,
            "tls_level": self.tls_level,
            "in_spf": self.in_spf,
        }


HARDENED = Sender("hardened", "snd", SENDER_DOMAIN, SENDER_IP)  # built by `build` itself
EXTRA_SENDERS = (
    Sender("may", "snm", "may.test", f"{NET}.8", tls_level="may"),
    Sender("not-in-spf", "sns", "nospf.test", f"{NET}.9", in_spf=False),
)
SENDERS = {s.role: s for s in (HARDENED, *EXTRA_SENDERS)}
NODES: tuple[tuple[str, str | None], ...] = (
    (RECEIVER_NODE, RECEIVER_IP),
    *((s.node, s.address) for s in EXTRA_SENDERS),
)
RESERVED_DOMAINS = (RECEIVER_DOMAIN, *(s.domain for s in EXTRA_SENDERS))


@dataclass(frozen=True, slots=True)
class MailmodeBuild:
    """What mail mode adds to the lab: signed zones, daemons, syslog sockets, MTA-STS policies, state."""

    zones: tuple[tuple[str, str], ...]  # (zone name, zone text), each signed by Knot
    daemons: tuple[Daemon, ...]
    syslog_sockets: tuple[Path, ...]
    web_sites: tuple[tuple[str, str], ...]  # (host name, MTA-STS policy file) for the HTTPS server
    state: dict[str, Any]


def store_file(directory: Path) -> Path:
    """The receiver's SQLite store inside the lab directory."""
    return directory / "mailmode" / "mailmode.sqlite3"


def build_mailmode(plan: LabPlan, ca: LabCa, stub: Path) -> MailmodeBuild:
    """Write the receiver's certificate and the extra senders' configurations; return what to add."""
    from mecsa.mailmode.enforcement import ReceiverZone, receiver_zone_records

    d = RECEIVER_DOMAIN
    names = [f"mx.{d}", f"mx.dane-trap.{d}", f"mx.sts-trap.{d}"]
    key_file, chain_file = ca.issue(names).write(plan.path("mailmode", "tls"))
    certificate = x509.load_pem_x509_certificate(chain_file.read_bytes())  # the leaf comes first
    records = receiver_zone_records(ReceiverZone(d, (RECEIVER_IP,), policy_ipv4=(WEB_IP,)), certificate)
    zones = [(d, zone_text(d, [r.zone_line() for r in records.records]))]
    daemons = [_receiver_daemon(plan, key_file, chain_file)]
    for sender in EXTRA_SENDERS:
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        zones.append((sender.domain, sender_zone(sender, key)))
        daemons += sender_daemons(plan, sender, key, stub)
    policy_host = records.sts_trap.url.split("/")[2]
    state = {
        "receiver": {"domain": d, "address": RECEIVER_IP, "store": str(store_file(plan.directory))},
        "senders": {role: s.to_json() for role, s in SENDERS.items()},
    }
    return MailmodeBuild(
        tuple(zones),
        tuple(daemons),
        tuple(plan.syslog_socket(s.host) for s in EXTRA_SENDERS),
        ((policy_host, records.sts_trap.policy),),
        state,
    )


def zone_text(origin: str, lines: Sequence[str]) -> str:
    """A zone served by the lab's name server: SOA and NS, then `lines` (absolute owner names)."""
    head = [
        f"$ORIGIN {origin}.",
        f"$TTL {_TTL}",
        f"@ SOA {NS_HOST}. hostmaster.{NS_HOST}. 1 3600 600 86400 {_TTL}",
        f"@ NS {NS_HOST}.",
    ]
    return "\n".join([*head, *lines]) + "\n"


def sender_zone(sender: Sender, key: rsa.RSAPrivateKey) -> str:
    """A sender's domain with the records `mecsa harden records` makes: MX, A, SPF, DKIM, DMARC."""
    from mecsa.harden.records import address_records, dkim_txt, dmarc_record, mx_record, spf_record

    spf_ip = sender.address if sender.in_spf else SPF_ELSEWHERE
    records = [
        mx_record(sender.domain, sender.host),
        *address_records(sender.host, (sender.address,)),
        spf_record(sender.domain, (f"ip4:{spf_ip}",)),
        dkim_txt(SENDER_SELECTOR, sender.domain, key.public_key()),
        dmarc_record(sender.domain, f"postmaster@{sender.domain}", "reject"),
    ]
    return zone_text(sender.domain, [r.zone_line() for r in records])


def _receiver_daemon(plan: LabPlan, key_file: Path, chain_file: Path) -> Daemon:
    """`mecsa mailmode serve` as users run it, inside its namespace, resolving through the lab.

    `--no-assess`: the domain-mode assessment of each sender's domain is not what the lab tests
    here, and would add TLS probes of the senders to every message.
    """
    argv = (
        sys.executable,
        "-m",
        "mecsa",
        "mailmode",
        "serve",
        "--domain",
        RECEIVER_DOMAIN,
        "--listen",
        f"{RECEIVER_IP}:25",
        "--tls-cert",
        str(chain_file),
        "--tls-key",
        str(key_file),
        "--store",
        str(store_file(plan.directory)),
        "--resolver",
        RESOLVER_IP,
        "--no-assess",
    )
    return Daemon("mailmode-receiver", RECEIVER_NODE, argv, (("tcp", RECEIVER_IP, 25),))


def sender_daemons(plan: LabPlan, sender: Sender, key: rsa.RSAPrivateKey, stub: Path) -> list[Daemon]:
    """OpenDKIM (signing) and Postfix for one extra sender: the lab's DANE sender but for its TLS level."""
    return build_sender(
        plan,
        key,
        stub,
        node=sender.node,
        domain=sender.domain,
        address=sender.address,
        tls_level=sender.tls_level,
    )


# --- sending, and reading the receiver's report --------------------------------------------------


@dataclass(frozen=True, slots=True)
class Outcome:
    """What the sender's Postfix did with one recipient: sent, deferred, bounced, or "timeout"."""

    recipient: str
    status: str
    detail: str
    verified_tls: bool  # delivered over a DANE-verified TLS connection


def send(
    state: LabState,
    sender: Sender,
    to: str,
    cc: Sequence[str] = (),
    *,
    subject: str = "mecsa lab: mail mode",
    timeout: float = 20.0,
) -> dict[str, Outcome]:
    """Submit one message (To `to`, Cc `cc`, envelope to all) on `sender`, DKIM-signed there;
    wait until its Postfix logged a verdict for every recipient."""
    from mecsa.lab.mailflow import queue_lines, verified_tls_for
    from mecsa.lab.runner import run_in

    message_id = f"<{uuid.uuid4().hex}@{sender.domain}>"
    recipients = [to, *cc]
    headers = [f"From: Alice <{sender.from_address}>", f"To: <{to}>"]
    if cc:
        headers.append("Cc: " + ", ".join(f"<{a}>" for a in cc))
    message = "\n".join([*headers, f"Subject: {subject}", f"Message-ID: {message_id}", "", "Hello.", ""])
    config = state.directory / "hosts" / sender.host / "etc" / "postfix"
    done = run_in(
        state,
        sender.node,
        ["/usr/sbin/sendmail", "-C", str(config), "-f", sender.from_address, *recipients],
        capture=True,
        input_text=message,
        timeout=timeout,
    )
    if done.returncode != 0:
        raise LabError(f"sendmail on {sender.host} failed: {done.stderr.strip()}")
    log = state.directory / "logs" / f"{sender.host}.postfix.log"
    deadline = time.monotonic() + timeout
    found: dict[str, Outcome] = {}
    while len(found) < len(recipients) and time.monotonic() < deadline:
        for line in queue_lines(log, message_id):
            match = re.search(r" to=<([^>]+)>,.* status=(\w+) ?\(?(.*?)\)?$", line)
            if match and match.group(1) in recipients and match.group(1) not in found:
                verified = verified_tls_for(log, line)
                found[match.group(1)] = Outcome(match.group(1), match.group(2), match.group(3), verified)
        time.sleep(0.05)
    for rcpt in recipients:
        found.setdefault(rcpt, Outcome(rcpt, "timeout", "no delivery attempt logged", False))
    return found


def wait_report(
    store: Path,
    token: str,
    ready: Callable[[dict[str, Any]], bool],
    *,
    window: dt.timedelta,
    timeout: float = 20.0,
) -> dict[str, Any]:
    """The receiver's report of `token` once `ready(report)` holds (analysis runs after the 250).

    Raises `LabError` with the last report seen when it does not become ready in time.
    """
    from mecsa.mailmode.report import load_report
    from mecsa.mailmode.store import MailStore

    async def read() -> dict[str, Any] | None:
        opened = await MailStore.open(store)
        try:
            return await load_report(opened, token, window=window)
        finally:
            await opened.close()

    deadline = time.monotonic() + timeout
    while True:
        report = asyncio.run(read()) if store.exists() else None
        if report is not None and ready(report):
            return report
        if time.monotonic() > deadline:
            raise LabError(f"report {token} not ready after {timeout:g} s: {report}")
        time.sleep(0.1)
