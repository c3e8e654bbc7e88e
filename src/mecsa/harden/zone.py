"""`mecsa harden zone`: host the mail domain's own zone in Knot DNS, signed automatically. Pure.

DANE needs the zone signed and its DS at the parent (RFC 7672 §2.2: TLSA records count only
when validated). Knot signs by itself: ECDSA P-256 (algorithm 13, RFC 8624 "MUST" for signing),
one combined signing key (single-type signing: one key, one DS to hand over), rolled by policy
every `ZONE_CSK_LIFETIME`, with CDS/CDNSKEY published during a rollover so that a parent that
reads them (RFC 8078) can take the new DS itself. The zone file is the unsigned source the
administrator may edit; Knot keeps the signed zone in its journal (`zonefile-load:
difference-no-serial`, `journal-content: all`, `zonefile-sync: -1`), as its manual advises.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import dns.name

from mecsa.harden.layout import Layout
from mecsa.harden.records import DnsRecord, RecordSet, address_records
from mecsa.harden.settings import HardenSettings

POLICY_ID = "mecsa"
ZONE_CSK_LIFETIME = "365d"
ZONE_HEADER = "; Written by `mecsa harden zone`: the unsigned source of the zone; Knot signs it."
CONF_HEADER = "# Written by `mecsa harden zone`; re-run it rather than editing this file."
SOA_TIMERS = "7200 3600 1209600 3600"  # refresh, retry, expire, negative TTL (RFC 1912 §2.2 ranges)
DEBIAN_SAMPLE = "# This is a sample of a minimal configuration file for Knot DNS."


def nameservers(settings: HardenSettings, domain: str) -> tuple[str, ...]:
    """The zone's NS names: `zone_nameservers`, default `ns1.<domain>` (this host)."""
    return settings.zone_nameservers or (f"ns1.{domain}",)


def _zone_of(owner: str, zones: Sequence[str]) -> str | None:
    """The most specific zone among `zones` that holds `owner`."""
    name = dns.name.from_text(owner)
    inside = [z for z in zones if name.is_subdomain(dns.name.from_text(z))]
    return max(inside, key=len) if inside else None


@dataclass(frozen=True, slots=True)
class ZoneFile:
    """One zone: its origin, its records, and the records that belong to zones hosted elsewhere."""

    domain: str
    records: tuple[DnsRecord, ...]

    def text(self, settings: HardenSettings) -> str:
        """The zone file: SOA and NS first, then every record, one per line."""
        d = self.domain
        head = [
            ZONE_HEADER,
            "; The serial is Knot's business (serial-policy unixtime); edit, then `knotc zone-reload`.",
            "$TTL 3600",
            f"{d}. 3600 IN SOA {nameservers(settings, d)[0]}. postmaster.{d}. 1 {SOA_TIMERS}",
            *(f"{d}. 3600 IN NS {ns}." for ns in nameservers(settings, d)),
        ]
        return "\n".join(head + [r.zone_line() for r in self.records]) + "\n"


def zone_files(
    settings: HardenSettings, record_sets: Iterable[RecordSet]
) -> tuple[list[ZoneFile], list[DnsRecord]]:
    """One zone per mail domain with every record it holds; and the records that fall in no such zone.

    Beside the mail records: the A/AAAA of in-zone name servers and of `mta-sts.<domain>` (this
    host, which serves the policy too).
    """
    zones = list(settings.domains)
    wanted: list[DnsRecord] = []
    for records in record_sets:
        wanted.extend(records.records)
    for domain in zones:
        hosts = [ns for ns in nameservers(settings, domain) if _zone_of(ns, [domain]) == domain]
        hosts.append(f"mta-sts.{domain}")
        for host in hosts:
            wanted.extend(address_records(host, settings.ipv4, settings.ipv6))
    by_zone: dict[str, list[DnsRecord]] = {z: [] for z in zones}
    elsewhere: list[DnsRecord] = []
    seen: set[tuple[str, str, str]] = set()
    for record in wanted:
        key = (record.owner, record.rtype, record.value)
        if key in seen:
            continue
        seen.add(key)
        zone = _zone_of(record.owner, zones)
        (by_zone[zone] if zone is not None else elsewhere).append(record)
    return [ZoneFile(z, tuple(by_zone[z])) for z in zones], elsewhere


def _listen(settings: HardenSettings) -> str:
    addresses = [*settings.ipv4, *settings.ipv6]
    # the public addresses only: the local validating resolver for DANE owns 127.0.0.1:53
    return ", ".join(f'"{a}@53"' for a in addresses)


def knot_conf(settings: HardenSettings, layout: Layout) -> str:
    """The whole knot.conf: server, the signing policy, one template, and the zones."""
    user = (
        "    user: knot:knot\n" if layout.is_system else ""
    )  # another root runs as its caller, like the lab
    zones = "".join(f"  - domain: {d}\n" for d in settings.domains)
    return (
        f"{CONF_HEADER}\n"
        "server:\n"
        f'    rundir: "{layout.knot_rundir}"\n'
        f"{user}"
        f"    listen: [ {_listen(settings)} ]\n"
        "\n"
        "log:\n"
        "  - target: syslog\n"
        "    any: info\n"
        "\n"
        "database:\n"
        f'    storage: "{layout.knot_storage}"\n'
        "\n"
        "policy:\n"
        f"  - id: {POLICY_ID}\n"
        "    algorithm: ecdsap256sha256\n"
        "    single-type-signing: on\n"
        f"    ksk-lifetime: {ZONE_CSK_LIFETIME}\n"
        "    cds-cdnskey-publish: rollover\n"
        "\n"
        "template:\n"
        "  - id: default\n"
        f'    storage: "{layout.knot_zones}"\n'
        '    file: "%s.zone"\n'
        "    dnssec-signing: on\n"
        f"    dnssec-policy: {POLICY_ID}\n"
        "    zonefile-sync: -1\n"
        "    zonefile-load: difference-no-serial\n"
        "    journal-content: all\n"
        "    serial-policy: unixtime\n"
        "    semantic-checks: on\n"
        "\n"
        "zone:\n"
        f"{zones}"
    )


def owns_conf(text: str | None) -> bool:
    """True when knot.conf may be (re)written: absent, ours, or Debian's untouched sample (no zone)."""
    if text is None or text.startswith(CONF_HEADER):
        return True
    active = [line for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]
    return text.startswith(DEBIAN_SAMPLE) and not any(line.strip().startswith("- domain:") for line in active)


def registrar_steps(domain: str, ds_lines: Sequence[str]) -> str:
    """What to do with the DS, and what a key rollover will ask for."""
    lines = [f"; Hand this DS to the registrar of {domain} (the parent zone publishes it):", *ds_lines]
    lines += [
        f"; Check, once the parent publishes it: dig +dnssec {domain}. SOA on a validating resolver",
        ";   shows the ad flag. Then publish the TLSA records: they count only from then on.",
        f"; Every {ZONE_CSK_LIFETIME} Knot rolls the key: it publishes the new key and CDS/CDNSKEY,",
        f";   then waits. Hand over the new DS (`keymgr {domain}. ds`), then run",
        f";   `knotc zone-ksk-submitted {domain}` (unless the parent takes CDS itself, RFC 8078).",
    ]
    return "\n".join(lines) + "\n"
