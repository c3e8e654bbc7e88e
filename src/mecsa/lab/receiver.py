"""Mail mode in the lab: the receiver of `mecsa mailmode serve` and its signed trap zone (a builder).

Only with `mecsa lab up --mailmode` (or `up(..., mailmode=True)`): the default lab stays as small
and fast as before. The receiver runs on node "rcv" (see `plan.py`) for mailmode.test, with
STARTTLS and the lab resolver. Its zone holds the records `mailmode.enforcement.receiver_zone_records`
generates: MX with a matching TLSA, the DANE trap host whose TLSA never matches, and the MTA-STS
trap whose enforce policy excludes its MX, served by the lab's HTTPS server; `build` has Knot
sign it. Mail mode's two extra senders (`plan.EXTRA_SENDERS`) come from the same builder as the
DANE sender (`senders.py`).
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography import x509

from mecsa.lab.ca import LabCa
from mecsa.lab.daemon import Daemon
from mecsa.lab.plan import (
    RECEIVER_DOMAIN,
    RECEIVER_IP,
    RECEIVER_NODE,
    RESOLVER_IP,
    SENDERS,
    WEB_IP,
    LabPlan,
    store_file,
)
from mecsa.lab.zones import zone_text


@dataclass(frozen=True, slots=True)
class ReceiverBuild:
    """What the receiver adds to the lab: its signed zone, its daemon, an MTA-STS policy, its state."""

    zone: tuple[str, str]  # (zone name, zone text), signed by Knot
    daemon: Daemon
    web_site: tuple[str, str]  # (host name, MTA-STS policy file) for the HTTPS server
    state: dict[str, Any]


def build_receiver(plan: LabPlan, ca: LabCa) -> ReceiverBuild:
    """Write the receiver's certificate; return its zone, daemon, trap policy and state entry."""
    from mecsa.mailmode.enforcement import ReceiverZone, receiver_zone_records

    d = RECEIVER_DOMAIN
    names = [f"mx.{d}", f"mx.dane-trap.{d}", f"mx.sts-trap.{d}"]
    key_file, chain_file = ca.issue(names).write(plan.path("mailmode", "tls"))
    certificate = x509.load_pem_x509_certificate(chain_file.read_bytes())  # the leaf comes first
    records = receiver_zone_records(ReceiverZone(d, (RECEIVER_IP,), policy_ipv4=(WEB_IP,)), certificate)
    policy_host = records.sts_trap.url.split("/")[2]
    state = {
        "receiver": {"domain": d, "address": RECEIVER_IP, "store": str(store_file(plan.directory))},
        "senders": {role: s.to_json() for role, s in SENDERS.items()},
    }
    return ReceiverBuild(
        (d, zone_text(d, [r.zone_line() for r in records.records])),
        _receiver_daemon(plan, key_file, chain_file),
        (policy_host, records.sts_trap.policy),
        state,
    )


def _receiver_daemon(plan: LabPlan, key_file: Path, chain_file: Path) -> Daemon:
    """`mecsa mailmode serve` as users run it, inside its namespace, resolving through the lab.

    It assesses each sender's domain in domain mode (the inbound side of the provider grade),
    trusting the lab CA for the senders' MX certificates and their MTA-STS hosts.
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
        "--ca-file",
        str(plan.path("ca", "ca.pem")),
    )
    return Daemon("mailmode-receiver", RECEIVER_NODE, argv, (("tcp", RECEIVER_IP, 25),))
