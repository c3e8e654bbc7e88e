"""The lab's layout, computed from the scenarios before anything starts: nodes, names, addresses, paths.

This is the bottom of the lab (plan -> builders -> runner): pure data. It imports no builder or
runner module; every node name and address of the lab is spelled here once.

Addresses (10.53.0.0/24) exist only inside the lab's namespaces:

    .2 dns  Knot (authoritative: root, TLDs, scenario zones)   .3 res  Unbound (validating resolver)
    .4 cli  client (`lab assess`, `lab exec`)                  .5 snd  sender Postfix (sender.test, DANE)
    .6 web  HTTPS server for MTA-STS policies                  .10 and up: mxN, one per MX host

and only with mail mode (`up(..., mailmode=True)`):

    .7 rcv  `mecsa mailmode serve` for mailmode.test
    .8 snm  a sender Postfix for may.test with `smtp_tls_security_level = may` (no DANE)
    .9 sns  a DANE sender Postfix for nospf.test, whose SPF does not list its address
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mecsa.lab.scenario import MxSpec, Scenario

NET = "10.53.0"
AUTH_IP = f"{NET}.2"
RESOLVER_IP = f"{NET}.3"
CLIENT_IP = f"{NET}.4"
SENDER_IP = f"{NET}.5"
WEB_IP = f"{NET}.6"
RECEIVER_IP = f"{NET}.7"
FIRST_MX = 10
# An address no lab node has: the SPF of nospf.test names it instead of its real sender.
SPF_ELSEWHERE = f"{NET}.250"

# Namespace nodes that are not MX hosts (MX hosts are "mx10", "mx11", ...).
BRIDGE_NODE = "br"
AUTH_NODE = "dns"
RESOLVER_NODE = "res"
CLIENT_NODE = "cli"
SENDER_NODE = "snd"
WEB_NODE = "web"
RECEIVER_NODE = "rcv"

NS_HOST = "ns.test"
SENDER_DOMAIN = "sender.test"
SENDER_HOST = f"mail.{SENDER_DOMAIN}"
SENDER_SELECTOR = "lab"  # the DKIM selector of every lab sender
RECEIVER_DOMAIN = "mailmode.test"
DEFAULT_DIR = Path("/run/mecsa-lab")


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


# The lab's own DANE sender, always there; mail mode adds the other two.
HARDENED = Sender("hardened", SENDER_NODE, SENDER_DOMAIN, SENDER_IP)
EXTRA_SENDERS = (
    Sender("may", "snm", "may.test", f"{NET}.8", tls_level="may"),
    Sender("not-in-spf", "sns", "nospf.test", f"{NET}.9", in_spf=False),
)
SENDERS = {s.role: s for s in (HARDENED, *EXTRA_SENDERS)}

# (node, address or None), in the order the namespaces are made and attached to the bridge.
FIXED_NODES: tuple[tuple[str, str | None], ...] = (
    (BRIDGE_NODE, None),
    (AUTH_NODE, AUTH_IP),
    (RESOLVER_NODE, RESOLVER_IP),
    (CLIENT_NODE, CLIENT_IP),
    (HARDENED.node, HARDENED.address),
    (WEB_NODE, WEB_IP),
)
MAILMODE_NODES: tuple[tuple[str, str | None], ...] = (
    (RECEIVER_NODE, RECEIVER_IP),
    *((s.node, s.address) for s in EXTRA_SENDERS),
)
RESERVED_DOMAINS = (NS_HOST, *(s.domain for s in SENDERS.values()), RECEIVER_DOMAIN)


class PlanError(ValueError):
    """The scenarios cannot share one lab (same domain twice, too many hosts, a reserved name)."""


@dataclass(frozen=True, slots=True)
class LabMxHost:
    """One MX host of the lab: its name, address, namespace node and scenario settings."""

    hostname: str
    address: str
    node: str
    domain: str
    spec: MxSpec


@dataclass(frozen=True, slots=True)
class MailDomain:
    scenario: Scenario
    hosts: tuple[LabMxHost, ...]

    @property
    def name(self) -> str:
        return self.scenario.domain


@dataclass(frozen=True, slots=True)
class LabPlan:
    """Everything `up` needs to know before it writes a file or creates a namespace."""

    directory: Path
    prefix: str
    domains: tuple[MailDomain, ...]
    mailmode: bool = False  # add the mail-mode receiver and its extra senders (lab/receiver.py)

    def ns(self, node: str) -> str:
        """The namespace name of a node ("dns", "mx10", ...)."""
        return f"{self.prefix}-{node}"

    @property
    def hosts(self) -> tuple[LabMxHost, ...]:
        return tuple(h for d in self.domains for h in d.hosts)

    @property
    def senders(self) -> tuple[Sender, ...]:
        """The sender Postfix instances this lab runs: the DANE sender, and mail mode's two more."""
        return (HARDENED, *EXTRA_SENDERS) if self.mailmode else (HARDENED,)

    @property
    def nodes(self) -> tuple[tuple[str, str | None], ...]:
        extra = MAILMODE_NODES if self.mailmode else ()
        return (*FIXED_NODES, *extra, *((h.node, h.address) for h in self.hosts))

    @property
    def tlds(self) -> tuple[str, ...]:
        return tuple(sorted({"test", *(d.name.split(".")[-1] for d in self.domains)}))

    def path(self, *parts: str) -> Path:
        return self.directory.joinpath(*parts)

    @property
    def resolv_conf(self) -> Path:
        return self.path("resolv.conf")

    @property
    def logs(self) -> Path:
        return self.path("logs")

    def host_dir(self, hostname: str) -> Path:
        return self.path("hosts", hostname)

    def syslog_socket(self, hostname: str) -> Path:
        return self.path("sockets", f"{hostname}.sock")


def namespace_prefix(directory: Path) -> str:
    """A short prefix unique to the lab directory, so that two labs never share a namespace."""
    return "mlab" + hashlib.sha256(str(directory.resolve()).encode()).hexdigest()[:6]


def store_file(directory: Path) -> Path:
    """The mail-mode receiver's SQLite store inside the lab directory."""
    return directory / "mailmode" / "mailmode.sqlite3"


def plan_lab(scenarios: list[Scenario], directory: Path, *, mailmode: bool = False) -> LabPlan:
    """Assign addresses and namespace nodes to every MX host of every scenario."""
    seen: dict[str, str] = {}
    domains = []
    next_ip = FIRST_MX
    for scenario in scenarios:
        if scenario.domain in RESERVED_DOMAINS:
            raise PlanError(f"{scenario.source}: domain {scenario.domain} is reserved by the lab")
        if scenario.domain in seen:
            raise PlanError(f"{scenario.source}: domain {scenario.domain} is also in {seen[scenario.domain]}")
        seen[scenario.domain] = scenario.source or scenario.name
        hosts = []
        for mx in scenario.mx:
            if next_ip > 254:
                raise PlanError("more than 245 MX hosts: split the scenarios over several labs")
            hosts.append(
                LabMxHost(scenario.mx_host(mx), f"{NET}.{next_ip}", f"mx{next_ip}", scenario.domain, mx)
            )
            next_ip += 1
        domains.append(MailDomain(scenario, tuple(hosts)))
    return LabPlan(directory, namespace_prefix(directory), tuple(domains), mailmode)
