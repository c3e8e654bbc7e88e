"""Everything `lab up` writes before it starts a daemon: keys, certificates, zones, configurations.

The result lists the daemons to start, with the sockets each must open before the lab is ready.
"""

from __future__ import annotations

import base64
import os
import sys
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from mecsa.lab import knot, milters, mxconfig, postfix, unbound, zones
from mecsa.lab.ca import IssuedCert, LabCa
from mecsa.lab.plan import (
    AUTH_IP,
    RESOLVER_IP,
    SENDER_DOMAIN,
    SENDER_HOST,
    SENDER_IP,
    SENDER_SELECTOR,
    WEB_IP,
    LabPlan,
    MailDomain,
    MxHost,
)

if TYPE_CHECKING:
    from mecsa.lab.mailmode import MailmodeBuild

Listen = tuple[str, str, int]  # ("tcp" | "udp", address, port)


@dataclass(frozen=True, slots=True)
class Daemon:
    """One daemon to start in a node's namespace.

    `forks`: the command starts the daemon and exits (postfix start), so readiness is judged
    by the sockets alone. `devlog`: the syslog sink socket its /dev/log leads to.
    """

    name: str
    node: str
    argv: tuple[str, ...]
    listens: tuple[Listen, ...] = ()
    devlog: Path | None = None
    forks: bool = False


@dataclass(frozen=True, slots=True)
class Built:
    knot_conf: Path
    logsink: Daemon
    knotd: Daemon
    daemons: tuple[Daemon, ...]  # started once Knot serves every zone
    zones: tuple[str, ...]
    domains: dict[str, Any]  # for the state file: per domain, its scenario, selector and hosts
    mailmode: dict[str, Any] | None = None  # for the state file: receiver and senders (--mailmode)


def build(plan: LabPlan) -> Built:
    """Write every file the lab's daemons need; return what to start."""
    for sub in ("logs", "sockets", "hosts", "ca", "web"):
        plan.path(sub).mkdir(parents=True, exist_ok=True)
    plan.resolv_conf.write_text(f"nameserver {RESOLVER_IP}\noptions edns0 trust-ad\n")
    ca = LabCa()
    plan.path("ca", "ca.pem").write_bytes(ca.pem())

    dkim_keys = {d.name: _dkim_key(d.scenario.dkim.bits) for d in plan.domains}
    sender_key = _dkim_key(2048)
    stub = plan.path("unbound", "stub.conf")
    stub.parent.mkdir(parents=True, exist_ok=True)
    stub.write_text(unbound.stub_conf(plan.tlds))
    tlsa: dict[str, str] = {}
    jobs = []
    for domain in plan.domains:
        for host in domain.hosts:
            valid = ca.issue([host.hostname])
            kind = host.spec.certificate
            served = valid if kind == "valid" else ca.issue([host.hostname], kind)
            jobs.append((domain, host, _pem(dkim_keys[domain.name]), valid, served))
            tlsa[host.hostname] = _tlsa_digest(host, served)
    extra = _mailmode(plan, ca, stub)
    # harden's configuration checks are subprocesses: configure the hosts side by side
    with ThreadPoolExecutor(max_workers=4) as pool:
        done = [pool.submit(mxconfig.configure_mx, plan, *job, stub) for job in jobs]
        for future in done:
            future.result()
    material = {d.name: _material(d, dkim_keys[d.name], tlsa) for d in plan.domains}

    knot_base = plan.path("knot")
    knot.prepare_dirs(knot_base)
    zone_files = _zone_files(plan) + [knot.ZoneFile(name, True) for name, _ in extra.zones]
    knot_conf = knot_base / "knot.conf"
    knot_conf.write_text(knot.knot_conf(knot_base, plan.logs / "knot.log", zone_files))
    ds: dict[str, list[str]] = {z.name: knot.generate_key(knot_conf, z.name) for z in zone_files if z.signed}
    zone_dir = knot_base / "zones"
    for domain in plan.domains:
        text = zones.mail_zone(domain, material[domain.name])
        if domain.scenario.dnssec == "bogus":
            targets = [_tamper_target(domain, t) for t in domain.scenario.tamper]
            text, ds[domain.name] = knot.sign_bogus(domain.name, text, knot_base / "bogus", targets)
        (zone_dir / f"{domain.name}.zone").write_text(text)
    (zone_dir / f"{SENDER_DOMAIN}.zone").write_text(zones.sender_zone(_public_b64(sender_key)))
    for name, text in extra.zones:
        (zone_dir / f"{name}.zone").write_text(text)
    children = [d.name for d in plan.domains] + [SENDER_DOMAIN] + [name for name, _ in extra.zones]
    for tld in plan.tlds:
        mine = [c for c in children if c.endswith(f".{tld}")]
        (zone_dir / f"{tld}.zone").write_text(zones.tld_zone(tld, mine, ds))
    (zone_dir / "root.zone").write_text(zones.root_zone(plan.tlds, ds))

    unbound_conf = unbound.write_unbound(plan.path("unbound"), plan.logs / "unbound.log", plan.tlds, ds[""])
    web = _write_web(plan, ca, extra.web_sites)
    daemons = [
        Daemon("unbound", "res", tuple(unbound.unbound_argv(unbound_conf)), (("udp", RESOLVER_IP, 53),)),
        web,
    ]
    state_domains: dict[str, Any] = {}
    for domain in plan.domains:
        for host in domain.hosts:
            daemons += _mx_daemons(plan, host)
        state_domains[domain.name] = {
            "scenario": domain.scenario.source or domain.scenario.name,
            "name": domain.scenario.name,
            "selector": domain.scenario.dkim.selector,
            "hosts": [{"hostname": h.hostname, "address": h.address, "node": h.node} for h in domain.hosts],
        }
    daemons += sender_daemons(plan, sender_key, stub)
    daemons += extra.daemons
    sockets = [plan.syslog_socket(h.hostname) for h in plan.hosts] + [plan.syslog_socket(SENDER_HOST)]
    sockets += extra.syslog_sockets
    sink_args = [f"{s}={plan.logs / (s.stem + '.syslog')}" for s in sockets]
    logsink = Daemon("logsink", "br", (sys.executable, "-m", "mecsa.lab.logsink", *sink_args))
    knotd = Daemon(
        "knotd", "dns", tuple(knot.knotd_argv(knot_conf)), (("udp", AUTH_IP, 53), ("tcp", AUTH_IP, 53))
    )
    return Built(
        knot_conf,
        logsink,
        knotd,
        tuple(daemons),
        tuple(z.fqdn for z in zone_files),
        state_domains,
        extra.state if plan.mailmode else None,
    )


def _mailmode(plan: LabPlan, ca: LabCa, stub: Path) -> MailmodeBuild:
    """The mail-mode receiver, its zone and extra senders when asked for; nothing otherwise."""
    from mecsa.lab.mailmode import MailmodeBuild, build_mailmode

    return build_mailmode(plan, ca, stub) if plan.mailmode else MailmodeBuild((), (), (), (), {})


def _zone_files(plan: LabPlan) -> list[knot.ZoneFile]:
    files = [knot.ZoneFile("", True), *(knot.ZoneFile(t, True) for t in plan.tlds)]
    files.append(knot.ZoneFile(SENDER_DOMAIN, True))
    files += [knot.ZoneFile(d.name, d.scenario.dnssec == "signed") for d in plan.domains]
    return files


def _tamper_target(domain: MailDomain, spec: str) -> tuple[str, str]:
    owner, _, rtype = spec.strip().partition(" ")
    owner = domain.name if owner == "@" else (owner if owner.endswith(".") else f"{owner}.{domain.name}")
    return owner, rtype.strip()


def _tlsa_digest(host: MxHost, cert: IssuedCert) -> str:
    if host.spec.tlsa == "none":
        return ""
    if host.spec.tlsa == "mismatch":
        return os.urandom(32).hex()  # a key nobody holds
    return cert.spki_sha256


def _dkim_key(bits: int) -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=bits)


def _pem(key: rsa.RSAPrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def _public_b64(key: rsa.RSAPrivateKey) -> str:
    der = key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return base64.b64encode(der).decode()


def _material(domain: MailDomain, key: rsa.RSAPrivateKey, tlsa: dict[str, str]) -> zones.DomainMaterial:
    """The records `mecsa harden records` generates for the domain (with the scenario's settings)."""
    from mecsa.harden.records import dkim_public_value, dmarc_record, spf_record, tls_rpt_record

    hardening = domain.scenario.hardening
    rua = str(hardening.get("dmarc_rua") or f"dmarc_reports@{domain.name}")
    return zones.DomainMaterial(
        spf=spf_record(domain.name, tuple(hardening.get("spf_mechanisms", ("mx",)))).value,
        dmarc=dmarc_record(domain.name, rua, str(hardening.get("dmarc_policy", "reject"))).value,
        tls_rpt=tls_rpt_record(domain.name, str(hardening.get("tls_rpt_rua") or rua)).value,
        dkim_key=dkim_public_value(key.public_key()),
        tlsa={h.hostname: tlsa[h.hostname] for h in domain.hosts},
    )


def _write_key(key: rsa.RSAPrivateKey, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(_pem(key))
    path.chmod(0o600)
    return path


def _write_web(plan: LabPlan, ca: LabCa, sites: Sequence[tuple[str, str]] = ()) -> Daemon:
    """The MTA-STS policies of the scenario domains, and `sites`: more (host name, policy) pairs."""
    root = plan.path("web", "root")
    names = []
    for name, policy in sites:
        target = root / name / ".well-known" / "mta-sts.txt"
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(policy, newline="")
        names.append(name)
    for domain in plan.domains:
        sts = zones.mta_sts(domain)
        if sts is not None:
            policy = sts[1]
            target = root / f"mta-sts.{domain.name}" / ".well-known" / "mta-sts.txt"
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(policy, newline="")
            names.append(f"mta-sts.{domain.name}")
    root.mkdir(parents=True, exist_ok=True)
    key, chain = ca.issue(names or ["mta-sts.lab.test"]).write(plan.path("web", "tls"))
    argv = (sys.executable, "-m", "mecsa.lab.web", WEB_IP, str(chain), str(key), str(root))
    return Daemon("mta-sts-web", "web", argv, (("tcp", WEB_IP, 443),))


def _mx_daemons(plan: LabPlan, host: MxHost) -> list[Daemon]:
    """OpenDKIM, OpenDMARC and Postfix on the configuration `mecsa harden apply` wrote for the host."""
    from mecsa.harden.layout import Layout

    layout = Layout.under(plan.host_dir(host.hostname))
    devlog = plan.syslog_socket(host.hostname)
    return [
        Daemon(
            f"opendkim@{host.hostname}",
            host.node,
            tuple(milters.opendkim_argv(Path(layout.opendkim_conf))),
            (("tcp", "127.0.0.1", milters.DKIM_PORT),),
            devlog,
        ),
        Daemon(
            f"opendmarc@{host.hostname}",
            host.node,
            tuple(milters.opendmarc_argv(Path(layout.opendmarc_conf))),
            (("tcp", "127.0.0.1", milters.DMARC_PORT),),
            devlog,
        ),
        Daemon(
            f"postfix@{host.hostname}",
            host.node,
            tuple(postfix.postfix_start_argv(Path(layout.postfix_dir))),
            (("tcp", host.address, 25),),
            devlog,
            forks=True,
        ),
    ]


def sender_daemons(
    plan: LabPlan,
    key: rsa.RSAPrivateKey,
    stub: Path,
    *,
    node: str = "snd",
    domain: str = SENDER_DOMAIN,
    address: str = SENDER_IP,
    tls_level: str | None = None,
) -> list[Daemon]:
    """A sender (OpenDKIM signing + Postfix): the lab's own small configuration, not the system under test.

    The defaults make the lab's DANE sender; mail mode's extra senders differ only in their node,
    domain, address and `smtp_tls_security_level`.
    """
    host = f"mail.{domain}"
    hdir = plan.host_dir(host)
    key_file = _write_key(key, hdir / "dkim" / f"{SENDER_SELECTOR}.private")
    (hdir / "run").mkdir(parents=True, exist_ok=True)
    dkim_conf = hdir / "opendkim.conf"
    dkim_conf.write_text(
        milters.opendkim_conf(
            hostname=host,
            domain=domain,
            selector=SENDER_SELECTOR,
            key_file=key_file,
            resolver=RESOLVER_IP,
            trust_anchor=plan.path("unbound", "root.ds"),
            stub_conf=stub,
            pid_file=hdir / "run" / "opendkim.pid",
            mode="s",
        )
    )
    settings = postfix.lab_settings(
        hostname=host, domain=domain, address=address, root=hdir, log_file=plan.logs / f"{host}.postfix.log"
    )
    settings.update(postfix.sender_settings())
    if tls_level is not None:
        settings["smtp_tls_security_level"] = tls_level
    config_dir = hdir / "etc" / "postfix"
    postfix.write_instance(config_dir, settings)
    devlog = plan.syslog_socket(host)
    return [
        Daemon(
            f"opendkim@{host}",
            node,
            tuple(milters.opendkim_argv(dkim_conf)),
            (("tcp", "127.0.0.1", milters.DKIM_PORT),),
            devlog,
        ),
        Daemon(
            f"postfix@{host}",
            node,
            tuple(postfix.postfix_start_argv(config_dir)),
            (("tcp", address, 25),),
            devlog,
            forks=True,
        ),
    ]
