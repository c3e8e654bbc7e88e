"""Everything `lab up` writes before it starts a daemon: keys, certificates, zones, configurations.

The result lists the daemons to start, with the sockets each must open before the lab is ready.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import rsa

from mecsa.harden.records import (
    MtaSts,
    dkim_public_value,
    dmarc_record,
    mta_sts_records,
    spf_record,
    tls_rpt_record,
)
from mecsa.lab import knot, milters, mxconfig, postfix, unbound, zones
from mecsa.lab.ca import IssuedCert, LabCa
from mecsa.lab.daemon import Daemon
from mecsa.lab.plan import (
    AUTH_IP,
    AUTH_NODE,
    BRIDGE_NODE,
    RESOLVER_IP,
    RESOLVER_NODE,
    WEB_IP,
    WEB_NODE,
    LabMxHost,
    LabPlan,
    MailDomain,
)
from mecsa.lab.receiver import build_receiver
from mecsa.lab.revocation import (
    OCSP_PORT,
    RevocationEntry,
    RevocationFiles,
    responder_argv,
    revocation_urls,
    write_revocation,
)
from mecsa.lab.senders import private_key_pem, sender_daemons


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
    sender_keys = {s.domain: _dkim_key(2048) for s in plan.senders}
    stub = plan.path("unbound", "stub.conf")
    stub.parent.mkdir(parents=True, exist_ok=True)
    stub.write_text(unbound.stub_conf(plan.tlds))
    tlsa: dict[str, str] = {}
    jobs = []
    revoking: list[RevocationEntry] = []
    for domain in plan.domains:
        for host in domain.hosts:
            valid = ca.issue([host.hostname])
            kind, revocation = host.spec.certificate, host.spec.revocation
            urls = revocation_urls(domain.name, revocation)
            served = (
                valid if (kind, revocation) == ("valid", "none") else ca.issue([host.hostname], kind, urls)
            )
            if revocation != "none":
                revoking.append(RevocationEntry(domain.name, revocation, served))
            jobs.append((domain, host, private_key_pem(dkim_keys[domain.name]), valid, served))
            tlsa[host.hostname] = _tlsa_rdata(host, served)
    revocation_files = write_revocation(plan.path("revocation"), ca, revoking) if revoking else None
    receiver = build_receiver(plan, ca) if plan.mailmode else None
    # harden's configuration checks are subprocesses: configure the hosts side by side
    with ThreadPoolExecutor(max_workers=4) as pool:
        done = [pool.submit(mxconfig.configure_mx, plan, *job, stub) for job in jobs]
        for future in done:
            future.result()
    material = {d.name: _material(d, dkim_keys[d.name], tlsa, revoking) for d in plan.domains}

    # every zone but the scenario domains' own, which a scenario may leave unsigned or make bogus
    inbound = _sender_inbound(plan, ca) if plan.mailmode else {}
    lab_zones = [
        (s.domain, zones.sender_zone(s, sender_keys[s.domain], inbound[s.domain][1:] if inbound else None))
        for s in plan.senders
    ]
    if receiver is not None:
        lab_zones.append(receiver.zone)
    knot_base = plan.path("knot")
    knot.make_knot_dirs(knot_base)
    zone_files = _zone_files(plan, [name for name, _ in lab_zones])
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
    for name, text in lab_zones:
        (zone_dir / f"{name}.zone").write_text(text)
    children = [d.name for d in plan.domains] + [name for name, _ in lab_zones]
    for tld in plan.tlds:
        mine = [c for c in children if c.endswith(f".{tld}")]
        extra = [
            d.scenario.text(r) for d in plan.domains if d.scenario.tld == tld for r in d.scenario.tld_records
        ]
        (zone_dir / f"{tld}.zone").write_text(zones.tld_zone(tld, mine, ds, extra))
    (zone_dir / "root.zone").write_text(zones.root_zone(plan.tlds, ds))

    unbound_conf = unbound.write_unbound(plan.path("unbound"), plan.logs / "unbound.log", plan.tlds, ds[""])
    sites = [receiver.web_site] if receiver is not None else []
    sites += [(f"mta-sts.{domain}", sts.policy) for domain, (_, _, sts) in inbound.items()]
    web = _write_web(plan, ca, sites, revocation_files)
    daemons = [
        Daemon(
            "unbound", RESOLVER_NODE, tuple(unbound.unbound_argv(unbound_conf)), (("udp", RESOLVER_IP, 53),)
        ),
        web,
    ]
    if revocation_files is not None:
        argv = responder_argv(revocation_files)
        daemons.append(Daemon("ocsp-responder", WEB_NODE, argv, (("tcp6", "::", OCSP_PORT),)))
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
    for sender in plan.senders:
        tls = inbound[sender.domain][0] if inbound else None
        daemons += sender_daemons(plan, sender, sender_keys[sender.domain], stub, tls)
    if receiver is not None:
        daemons.append(receiver.daemon)
    sockets = [plan.syslog_socket(h.hostname) for h in plan.hosts]
    sockets += [plan.syslog_socket(s.host) for s in plan.senders]
    sink_args = [f"{s}={plan.logs / (s.stem + '.syslog')}" for s in sockets]
    logsink = Daemon("logsink", BRIDGE_NODE, (sys.executable, "-m", "mecsa.lab.logsink", *sink_args))
    knotd = Daemon(
        "knotd", AUTH_NODE, tuple(knot.knotd_argv(knot_conf)), (("udp", AUTH_IP, 53), ("tcp", AUTH_IP, 53))
    )
    return Built(
        knot_conf,
        logsink,
        knotd,
        tuple(daemons),
        tuple(z.fqdn for z in zone_files),
        state_domains,
        receiver.state if receiver is not None else None,
    )


def _sender_inbound(
    plan: LabPlan, ca: LabCa
) -> dict[str, tuple[tuple[Path, Path], x509.Certificate, MtaSts]]:
    """Mail mode grades the senders' domains as providers, both sides: each sender's MX gets a
    certificate from the lab CA, a TLSA record and an enforce MTA-STS policy (see zones.sender_zone)."""
    out = {}
    for sender in plan.senders:
        key_file, chain_file = ca.issue([sender.host]).write(plan.host_dir(sender.host) / "tls")
        certificate = x509.load_pem_x509_certificate(chain_file.read_bytes())
        sts = mta_sts_records(sender.domain, (sender.host,), "enforce")
        out[sender.domain] = ((key_file, chain_file), certificate, sts)
    return out


def _zone_files(plan: LabPlan, lab_zones: Sequence[str]) -> list[knot.ZoneFile]:
    """Root and TLDs, the lab's own zones (senders, receiver): signed; scenario domains as they ask."""
    files = [knot.ZoneFile("", True), *(knot.ZoneFile(t, True) for t in plan.tlds)]
    files += [knot.ZoneFile(name, True) for name in lab_zones]
    files += [knot.ZoneFile(d.name, d.scenario.dnssec == "signed") for d in plan.domains]
    return files


def _tamper_target(domain: MailDomain, spec: str) -> tuple[str, str]:
    owner, _, rtype = spec.strip().partition(" ")
    owner = domain.name if owner == "@" else (owner if owner.endswith(".") else f"{owner}.{domain.name}")
    return owner, rtype.strip()


def _tlsa_rdata(host: LabMxHost, cert: IssuedCert) -> str:
    if host.spec.tlsa == "none":
        return ""
    if host.spec.tlsa == "mismatch":
        return f"3 1 1 {os.urandom(32).hex()}"  # a key nobody holds
    if host.spec.tlsa == "issuer":
        return f"2 1 1 {cert.issuer_spki_sha256}"  # DANE-TA: the issuing CA's key (RFC 7672 §3.1.2)
    return f"3 1 1 {cert.spki_sha256}"


def _dkim_key(bits: int) -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=bits)


def _material(
    domain: MailDomain, key: rsa.RSAPrivateKey, tlsa: dict[str, str], revoking: Sequence[RevocationEntry]
) -> zones.DomainMaterial:
    """The records `mecsa harden records` generates for the domain (with the scenario's settings)."""
    hardening = domain.scenario.hardening
    rua = str(hardening.get("dmarc_rua") or f"dmarc_reports@{domain.name}")
    return zones.DomainMaterial(
        spf=spf_record(domain.name, tuple(hardening.get("spf_mechanisms", ("mx",)))).value,
        dmarc=dmarc_record(domain.name, rua, str(hardening.get("dmarc_policy", "reject"))).value,
        tls_rpt=tls_rpt_record(domain.name, str(hardening.get("tls_rpt_rua") or rua)).value,
        dkim_key=dkim_public_value(key.public_key()),
        tlsa={h.hostname: tlsa[h.hostname] for h in domain.hosts},
        revocation=(f"ocsp.{domain.name}", f"crl.{domain.name}")
        if any(e.domain == domain.name for e in revoking)
        else (),
    )


def _write_web(
    plan: LabPlan, ca: LabCa, sites: Sequence[tuple[str, str]] = (), revocation: RevocationFiles | None = None
) -> Daemon:
    """The MTA-STS policies of the scenario domains, `sites`: more (host name, policy) pairs, and
    the CRLs over plain HTTP when a scenario asks for revocation."""
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
    argv: tuple[str, ...] = (sys.executable, "-m", "mecsa.lab.web", WEB_IP, str(chain), str(key), str(root))
    listens: tuple[tuple[str, str, int], ...] = (("tcp", WEB_IP, 443),)
    if revocation is not None:
        argv += (str(revocation.crl_root),)
        listens += (("tcp", WEB_IP, 80),)
    return Daemon("mta-sts-web", WEB_NODE, argv, listens)


def _mx_daemons(plan: LabPlan, host: LabMxHost) -> list[Daemon]:
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
