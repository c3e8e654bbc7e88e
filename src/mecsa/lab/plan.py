"""The lab's layout, computed from the scenarios before anything starts: names, addresses, paths.

Addresses (10.53.0.0/24) exist only inside the lab's namespaces:

    .2 Knot (authoritative: root, TLDs, scenario zones)   .3 Unbound (validating resolver)
    .4 client (`lab assess`, `lab exec`)                  .5 sender Postfix (sender.test, DANE)
    .6 HTTPS server for MTA-STS policies                  .10 and up: one per MX host
    .7-.9 only with mail mode: its receiver and two more senders (see `mecsa.lab.mailmode`)
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

from mecsa.lab.scenario import MxSpec, Scenario

NET = "10.53.0"
AUTH_IP = f"{NET}.2"
RESOLVER_IP = f"{NET}.3"
CLIENT_IP = f"{NET}.4"
SENDER_IP = f"{NET}.5"
WEB_IP = f"{NET}.6"
FIRST_MX = 10
NS_HOST = "ns.test"
SENDER_DOMAIN = "sender.test"
SENDER_HOST = f"mail.{SENDER_DOMAIN}"
SENDER_SELECTOR = "lab"
DEFAULT_DIR = Path("/run/mecsa-lab")

# Namespace roles that are not MX hosts: (node, address or None).
BRIDGE_NODE = "br"
FIXED_NODES: tuple[tuple[str, str | None], ...] = (
    (BRIDGE_NODE, None),
    ("dns", AUTH_IP),
    ("res", RESOLVER_IP),
    ("cli", CLIENT_IP),
    ("snd", SENDER_IP),
    ("web", WEB_IP),
)


class PlanError(ValueError):
    """The scenarios cannot share one lab (same domain twice, too many hosts, a reserved name)."""


@dataclass(frozen=True, slots=True)
class MxHost:
    """One MX host: its name, address, namespace node and scenario settings."""

    hostname: str
    address: str
    node: str
    domain: str
    spec: MxSpec


@dataclass(frozen=True, slots=True)
class MailDomain:
    scenario: Scenario
    hosts: tuple[MxHost, ...]

    @property
    def name(self) -> str:
        return self.scenario.domain


@dataclass(frozen=True, slots=True)
class LabPlan:
    """Everything `up` needs to know before it writes a file or creates a namespace."""

    directory: Path
    prefix: str
    domains: tuple[MailDomain, ...]
    mailmode: bool = False  # add the mail-mode receiver and its extra senders (lab/mailmode.py)

    def ns(self, node: str) -> str:
        """The namespace name of a node ("dns", "mx1", ...)."""
        return f"{self.prefix}-{node}"

    @property
    def hosts(self) -> tuple[MxHost, ...]:
        return tuple(h for d in self.domains for h in d.hosts)

    @property
    def nodes(self) -> tuple[tuple[str, str | None], ...]:
        return (*FIXED_NODES, *_mailmode_nodes(self.mailmode), *((h.node, h.address) for h in self.hosts))

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


def _mailmode_nodes(wanted: bool) -> tuple[tuple[str, str | None], ...]:
    if not wanted:
        return ()
    from mecsa.lab.mailmode import NODES  # imported late: it builds on this module

    return NODES


def make_plan(scenarios: list[Scenario], directory: Path, *, mailmode: bool = False) -> LabPlan:
    """Assign addresses and namespace nodes to every MX host of every scenario."""
    from mecsa.lab.mailmode import RESERVED_DOMAINS

    reserved = (SENDER_DOMAIN, NS_HOST, *RESERVED_DOMAINS)
    seen: dict[str, str] = {}
    domains = []
    next_ip = FIRST_MX
    for scenario in scenarios:
        if scenario.domain in reserved:
            raise PlanError(f"{scenario.source}: domain {scenario.domain} is reserved by the lab")
        if scenario.domain in seen:
            raise PlanError(f"{scenario.source}: domain {scenario.domain} is also in {seen[scenario.domain]}")
        seen[scenario.domain] = scenario.source or scenario.name
        hosts = []
        for mx in scenario.mx:
            if next_ip > 254:
                raise PlanError("more than 245 MX hosts: split the scenarios over several labs")
            hosts.append(
                MxHost(scenario.mx_host(mx), f"{NET}.{next_ip}", f"mx{next_ip}", scenario.domain, mx)
            )
            next_ip += 1
        domains.append(MailDomain(scenario, tuple(hosts)))
    return LabPlan(directory, namespace_prefix(directory), tuple(domains), mailmode)
