"""Zone texts for the lab's Knot: the fake root, the TLDs, the scenario domains and the senders' domains.

The lab's one zone builder. Pure functions: names, keys and digests in, zone-file text out. DS
records come from the children's keys (see `knot.py`), so parents are written after their
children's keys exist.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import rsa

from mecsa.harden.records import (
    MtaSts,
    address_records,
    dkim_txt,
    dmarc_record,
    mta_sts_records,
    mx_record,
    spf_record,
    split_txt,
    tlsa_311,
)
from mecsa.lab.plan import AUTH_IP, NS_HOST, SENDER_SELECTOR, SPF_ELSEWHERE, WEB_IP, MailDomain, Sender

TTL = 300


@dataclass(frozen=True, slots=True)
class DomainMaterial:
    """What a mail domain's zone publishes unless the scenario overrides it: the hardened records.

    `spf`, `dmarc` and `tls_rpt` are the texts `mecsa harden records` generates for the domain,
    `dkim_key` the `k=...; p=...` part of its DKIM record, `tlsa` the TLSA rdata per MX host
    ("3 1 1 <digest>", or "2 1 1 <digest>" for its issuer; "" publishes none).
    `revocation` lists the MX hosts' certificates' OCSP and CRL host names (A records to the web node).
    """

    spf: str
    dmarc: str
    tls_rpt: str
    dkim_key: str
    tlsa: Mapping[str, str]
    revocation: Sequence[str] = ()


def txt(text: str) -> str:
    """TXT rdata in presentation form: quoted strings of at most 255 bytes (RFC 1035 §3.3.14),
    never cut inside a UTF-8 character (harden's `split_txt`)."""
    return " ".join('"' + p.replace("\\", "\\\\").replace('"', '\\"') + '"' for p in split_txt(text))


def zone_text(origin: str, lines: Sequence[str]) -> str:
    """A zone served by the lab's name server: SOA and NS, then `lines`.

    `origin` is the zone's name without the final dot ("" for the root); relative owner names
    in `lines` are relative to it.
    """
    head = [
        f"$ORIGIN {origin}." if origin else "$ORIGIN .",
        f"$TTL {TTL}",
        f"@ SOA {NS_HOST}. hostmaster.{NS_HOST}. 1 3600 600 86400 {TTL}",
        f"@ NS {NS_HOST}.",
    ]
    return "\n".join([*head, *lines]) + "\n"


def root_zone(tlds: Sequence[str], ds: Mapping[str, Sequence[str]]) -> str:
    """The fake root: delegations to every TLD on the lab's one name server."""
    lines = []
    for tld in tlds:
        lines.append(f"{tld}. NS {NS_HOST}.")
        lines += ds.get(tld, ())
    lines.append(f"{NS_HOST}. A {AUTH_IP}")  # glue
    return zone_text("", lines)


def tld_zone(
    tld: str, children: Sequence[str], ds: Mapping[str, Sequence[str]], extra: Sequence[str] = ()
) -> str:
    """A TLD delegating each child zone to the lab's name server (and holding it, for `test`);
    `extra`: the scenarios' `tld_records` (a public suffix operator's DMARC record, say)."""
    lines = list(extra)
    if NS_HOST.endswith(f".{tld}"):
        lines.append(f"{NS_HOST}. A {AUTH_IP}")
    for child in children:
        lines.append(f"{child}. NS {NS_HOST}.")
        lines += ds.get(child, ())
    return zone_text(tld, lines)


def dkim_text(key_value: str, hash_tag: str = "") -> str:
    """A DKIM key record; `hash_tag` adds an `h=` tag (only deviation scenarios do)."""
    h = f"h={hash_tag}; " if hash_tag else ""
    return f"v=DKIM1; {h}{key_value}"


def mta_sts(domain: MailDomain) -> tuple[str, str] | None:
    """(TXT text, policy file) as `mecsa harden records` makes them, for the scenario's mode and hosts."""
    spec = domain.scenario.mta_sts
    if not spec.publish:
        return None
    covered = [h.hostname for h in domain.hosts if h.spec.in_mta_sts]
    records = mta_sts_records(domain.name, covered, spec.mode, 86400)
    return records.txt.value, records.policy


def mail_zone(domain: MailDomain, material: DomainMaterial) -> str:
    """A scenario domain: MX hosts, SPF, DKIM, DMARC, TLSA, MTA-STS and TLS-RPT, with its deviations."""
    sc = domain.scenario
    lines = []
    for host in domain.hosts:
        lines.append(f"@ MX {host.spec.preference} {host.hostname}.")
        lines.append(f"{host.hostname}. A {host.address}")
        rdata = material.tlsa.get(host.hostname, "")
        if rdata:
            lines.append(f"_25._tcp.{host.hostname}. TLSA {rdata}")
    spf = material.spf if sc.spf is None else sc.spf
    if spf:
        lines.append(f"@ TXT {txt(sc.text(spf))}")
    for record in (material.dmarc,) if sc.dmarc is None else sc.dmarc:
        lines.append(f"_dmarc TXT {txt(sc.text(record))}")
    if sc.dkim.publish:
        lines.append(f"{sc.dkim.selector}._domainkey TXT {txt(dkim_text(material.dkim_key, sc.dkim.hash))}")
    sts = mta_sts(domain)
    if sts is not None:
        lines.append(f"_mta-sts TXT {txt(sts[0])}")
        lines.append(f"mta-sts A {WEB_IP}")
    lines += [f"{name}. A {WEB_IP}" for name in material.revocation]
    tls_rpt = material.tls_rpt if sc.tls_rpt is None else sc.tls_rpt
    if tls_rpt:
        lines.append(f"_smtp._tls TXT {txt(sc.text(tls_rpt))}")
    lines += [sc.text(r) for r in sc.records]
    return zone_text(sc.domain, lines)


def sender_zone(
    sender: Sender, key: rsa.RSAPrivateKey, inbound: tuple[x509.Certificate, MtaSts] | None = None
) -> str:
    """A lab sender's domain, with the records `mecsa harden records` makes: MX, A, SPF, DKIM, DMARC.

    Its mail passes SPF, DKIM and DMARC, unless the sender is one that is not in its own SPF.
    With `inbound` (the MX certificate and the MTA-STS records, mail mode only), its
    MX is hardened too: TLSA 3 1 1 for the MX and an MTA-STS policy served by the lab's web server,
    so that the provider grade can reach 10 in every area on the inbound side.
    """
    spf_ip = sender.address if sender.in_spf else SPF_ELSEWHERE
    records = [
        mx_record(sender.domain, sender.host),
        *address_records(sender.host, (sender.address,)),
        spf_record(sender.domain, (f"ip4:{spf_ip}",)),
        dkim_txt(SENDER_SELECTOR, sender.domain, key.public_key()),
        dmarc_record(sender.domain, f"postmaster@{sender.domain}", "reject"),
    ]
    if inbound is not None:
        certificate, sts = inbound
        records += [
            tlsa_311(sender.host, certificate),
            sts.txt,
            *address_records(f"mta-sts.{sender.domain}", (WEB_IP,)),
        ]
    return zone_text(sender.domain, [r.zone_line() for r in records])


def tamper_signatures(signed_zone: str, targets: Sequence[tuple[str, str]]) -> tuple[str, int]:
    """Break the RRSIGs covering each (owner, type) in an offline-signed zone; return text and count.

    Flipping one character of the base64 signature keeps the record well-formed, so the server
    still serves it, while every validator must call the RRset bogus.
    """
    wanted = {(o.lower().rstrip(".") + ".", t.upper()) for o, t in targets}
    out, count = [], 0
    for line in signed_zone.splitlines():
        fields = line.split()
        if len(fields) > 5 and fields[3] == "RRSIG" and (fields[0].lower(), fields[4].upper()) in wanted:
            sig = fields[-1]
            fields[-1] = ("B" if sig[0] != "B" else "C") + sig[1:]
            line = " ".join(fields)
            count += 1
        out.append(line)
    return "\n".join(out) + "\n", count
