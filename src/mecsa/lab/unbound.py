"""Unbound: the lab's validating resolver, iterating from the fake root with its DS as trust anchor."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from mecsa.lab.plan import AUTH_IP, NET, NS_HOST, RESOLVER_IP


def resolver_conf(base: Path, log_file: Path, tlds: Sequence[str]) -> str:
    """unbound.conf. `local-zone: ... nodefault` because Unbound answers NXDOMAIN for `.test`
    names by default (RFC 6761); `ede: yes` so bogus answers say why (RFC 8914)."""
    lines = [
        "server:",
        f"  interface: {RESOLVER_IP}",
        "  port: 53",
        f"  access-control: {NET}.0/24 allow",
        "  access-control: 127.0.0.0/8 allow",
        "  do-ip6: no",
        "  do-daemonize: no",
        '  username: ""',
        '  chroot: ""',
        f'  directory: "{base}"',
        '  pidfile: ""',
        f'  logfile: "{log_file}"',
        "  use-syslog: no",
        "  log-servfail: yes",
        "  verbosity: 1",
        "  val-log-level: 2",
        "  num-threads: 1",
        f'  root-hints: "{base / "root.hints"}"',
        f'  trust-anchor-file: "{base / "root.ds"}"',
        "  trust-anchor-signaling: no",
        "  root-key-sentinel: no",
        "  ede: yes",
        "  harden-dnssec-stripped: yes",
        "  qname-minimisation: no",
        '  module-config: "validator iterator"',
    ]
    lines += [f'  local-zone: "{tld}." nodefault' for tld in tlds]
    lines += ["remote-control:", "  control-enable: no"]
    return "\n".join(lines) + "\n"


def root_hints() -> str:
    return f". 3600000 NS {NS_HOST}.\n{NS_HOST}. 3600000 A {AUTH_IP}\n"


def write_unbound(base: Path, log_file: Path, tlds: Sequence[str], root_ds: Sequence[str]) -> Path:
    """Write the configuration, root hints and trust anchor; return the configuration's path."""
    base.mkdir(parents=True, exist_ok=True)
    (base / "root.hints").write_text(root_hints())
    (base / "root.ds").write_text("\n".join(root_ds) + "\n")
    conf = base / "unbound.conf"
    conf.write_text(resolver_conf(base, log_file, tlds))
    return conf


def unbound_argv(conf: Path) -> list[str]:
    return ["unbound", "-d", "-c", str(conf)]


def stub_conf(tlds: Sequence[str]) -> str:
    """A libunbound configuration for the milters (OpenDKIM's `ResolverConfiguration`)."""
    return "server:\n" + "".join(f'  local-zone: "{tld}." nodefault\n' for tld in tlds)
