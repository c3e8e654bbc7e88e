"""Mail mode in the lab: the web service with its mail-mode receiver, and the signed trap zone (a builder).

Only with `mecsa lab up --mailmode` (or `up(..., mailmode=True)`): the default lab stays as small
and fast as before. On node "rcv" (see `plan.py`) runs `mecsa serve --mailmode` as an operator
runs it: the web site on port 8080 (`web_url`) and, inside the same process, the SMTP receiver
for mailmode.test on port 25, with STARTTLS, the lab resolver, and the test domain's DKIM key
(selector `mecsa`), so the probe and the auto-replies are signed and verifiable. Its zone holds the
records `mailmode.enforcement.receiver_zone_records` generates: MX with a matching TLSA, SPF,
DMARC and the DKIM key, the DANE trap host whose TLSA never matches, and the MTA-STS trap whose
enforce policy excludes its MX, served by the lab's HTTPS server; `build` has Knot sign it.
Mail mode's two extra senders (`plan.EXTRA_SENDERS`) come from the same builder as the
DANE sender (`senders.py`).
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import rsa

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
from mecsa.lab.senders import private_key_pem
from mecsa.lab.zones import zone_text

# The receiver also takes DMARC aggregate and TLS reports (issue 22): a scenario that publishes
# `rua=mailto:` this address gets its reports ingested into `reports_store_file`.
REPORT_ADDRESS = f"dmarc_reports@{RECEIVER_DOMAIN}"
WEB_PORT = 8080
DKIM_SELECTOR = "mecsa"


def web_url() -> str:
    """Where the lab's web service answers (from inside the lab's namespaces)."""
    return f"http://{RECEIVER_IP}:{WEB_PORT}"


def web_store_file(directory: Path) -> Path:
    """The web service's own store (assessments, tokens), beside the mail store."""
    return directory / "mailmode" / "web.sqlite"


def reports_store_file(directory: Path) -> Path:
    """The store the receiver ingests report mail into (`mecsa reports show --store` reads it)."""
    return directory / "mailmode" / "reports.sqlite"


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
    dkim_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    dkim_file = plan.path("mailmode", "dkim.pem")
    dkim_file.write_bytes(private_key_pem(dkim_key))
    dkim_file.chmod(0o600)
    records = receiver_zone_records(
        ReceiverZone(d, (RECEIVER_IP,), policy_ipv4=(WEB_IP,)),
        certificate,
        (DKIM_SELECTOR, dkim_key.public_key()),
    )
    policy_host = records.sts_trap.url.split("/")[2]
    config = _write_config(plan, key_file, chain_file, dkim_file)
    state = {
        "receiver": {
            "domain": d,
            "address": RECEIVER_IP,
            "store": str(store_file(plan.directory)),
            "web": web_url(),
            "config": str(config),
        },
        "senders": {role: s.to_json() for role, s in SENDERS.items()},
    }
    return ReceiverBuild(
        (d, zone_text(d, [r.zone_line() for r in records.records])),
        _receiver_daemon(plan, config),
        (policy_host, records.sts_trap.policy),
        state,
    )


def _write_config(plan: LabPlan, key_file: Path, chain_file: Path, dkim_file: Path) -> Path:
    """The mail-mode configuration of `mecsa serve --mailmode` (docs/mailmode.md) for the lab."""
    values = {
        "domain": RECEIVER_DOMAIN,
        "store": str(store_file(plan.directory)),
        "listen": f"{RECEIVER_IP}:25",
        "tls_cert": str(chain_file),
        "tls_key": str(key_file),
        "dkim_key": str(dkim_file),
        "dkim_selector": DKIM_SELECTOR,
        "public_url": web_url(),
        "ca_file": str(plan.path("ca", "ca.pem")),
        "report_addresses": [REPORT_ADDRESS],
        "reports_store": str(reports_store_file(plan.directory)),
        # every new token is answered: lab tests reuse the same senders and must not depend on order
        "autoreply_interval_minutes": 0,
    }
    lines = [f"{key} = {json.dumps(value)}" for key, value in values.items()]  # JSON strings are TOML's
    path = plan.path("mailmode", "mailmode.toml")
    path.write_text("\n".join(lines) + "\n")
    return path


def _receiver_daemon(plan: LabPlan, config: Path) -> Daemon:
    """`mecsa serve --mailmode` as operators run it, inside its namespace, resolving through the lab.

    The receiver assesses each sender's domain in domain mode (the inbound side of the provider
    grade), trusting the lab CA for the senders' MX certificates and their MTA-STS hosts; the
    web service allows private addresses, since the whole lab is on them.
    """
    argv = (
        sys.executable,
        "-m",
        "mecsa",
        "serve",
        "--listen",
        f"{RECEIVER_IP}:{WEB_PORT}",
        "--store",
        str(web_store_file(plan.directory)),
        "--resolver",
        RESOLVER_IP,
        "--allow-private",
        "--mailmode",
        str(config),
    )
    listens = (("tcp", RECEIVER_IP, 25), ("tcp", RECEIVER_IP, WEB_PORT))
    return Daemon("mailmode-receiver", RECEIVER_NODE, argv, listens)
