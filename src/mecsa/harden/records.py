"""DNS records for a hardened mail domain, as typed objects that print as zone-file lines or JSON.

One generator serves two callers: `mecsa harden records` (the whole set for a domain) and the
assessment's fixes (one record for one failing finding). Both must print the same text, so
both call the small functions below.

Reusable API (all pure; names are A-labels without the final dot; TTL defaults to 3600):

- ``DnsRecord(owner, rtype, value, ttl=3600, comment="")``: frozen.
  ``value`` is the logical value (a TXT record's text joined, or the rdata of other types);
  ``.rdata()`` is the presentation form (TXT split into quoted strings of at most 255 bytes);
  ``.zone_line()`` is ``owner. TTL IN TYPE rdata`` (with ``; comment`` on the line above when set);
  ``.to_json()`` is ``{"name", "type", "ttl", "value", "rdata", "zone_line", "comment"?}``.
- ``mx_record(domain, mx_host, preference=10) -> DnsRecord``
- ``address_records(host, ipv4=(), ipv6=()) -> tuple[DnsRecord, ...]``: A then AAAA.
- ``spf_record(domain, mechanisms=("mx",), all_qualifier="-") -> DnsRecord``: ``v=spf1 mx -all``.
- ``dkim_txt(selector, domain, public_key) -> DnsRecord``: at ``selector._domainkey.domain``,
  ``v=DKIM1; k=rsa; p=<base64 DER SPKI>`` (or ``k=ed25519; p=<base64 raw key>``, RFC 8463).
  Never an ``h=`` tag (see NOTES: ``h=rsa-sha256`` breaks verifiers).
- ``dmarc_record(domain, rua, policy="reject") -> DnsRecord``:
  ``v=DMARC1; p=reject; sp=reject; np=reject; rua=mailto:...``; ``rua`` is a bare address or
  already ``mailto:``. Valid under RFC 9989 and RFC 7489 alike (see the function).
- ``dmarc_report_authorization(domain, rua) -> DnsRecord | None``: the RFC 9990 §4 (RFC 7489
  §7.1) record the report domain must publish when the rua address is outside the domain; None
  when not needed.
- ``tlsa_311(mx_host, cert_or_key, port=25) -> DnsRecord``: ``_25._tcp.mx. IN TLSA 3 1 1 <64 hex>``,
  the SHA-256 of the SubjectPublicKeyInfo of an ``x509.Certificate`` or of a public/private key.
- ``mta_sts_policy(mx_hosts, mode="enforce", max_age=604800) -> str``: the policy file (CRLF lines).
- ``mta_sts_records(domain, mx_hosts, mode="enforce", max_age=604800) -> MtaSts``:
  ``.txt`` (``_mta-sts.domain TXT "v=STSv1; id=<hash of the policy>"``), ``.policy`` (file text),
  ``.url`` (where to serve it); the id changes exactly when the policy changes.
- ``tls_rpt_record(domain, rua) -> DnsRecord``: ``_smtp._tls.domain TXT "v=TLSRPTv1; rua=mailto:..."``.
- ``ds_note(domain) -> str``: zone-file comment lines on publishing the DS at the parent.
- ``RecordSet``: ``.records``, ``.mta_sts``, ``.notes``; ``.zone_text()`` and ``.to_json()``.
- ``records_for(settings, dkim_keys, certificate, next_key=None) -> RecordSet``: the full set for
  `mecsa harden records`.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes, PublicKeyTypes

    from mecsa.harden.settings import HardenSettings

DEFAULT_TTL = 3600
MTA_STS_MAX_AGE = 604800  # one week: RFC 8461 suggests weeks; long enough to matter, short to undo
_TXT_CHUNK = 255  # RFC 1035 §3.3.14: one character-string holds at most 255 octets


@dataclass(frozen=True, slots=True)
class DnsRecord:
    """One resource record: owner name, type and logical value, printable as a zone-file line."""

    owner: str
    rtype: str
    value: str
    ttl: int = DEFAULT_TTL
    comment: str = ""

    def rdata(self) -> str:
        """The presentation form of the rdata (TXT: quoted strings of at most 255 bytes)."""
        if self.rtype != "TXT":
            return self.value
        return " ".join(f'"{_escape_txt(part)}"' for part in split_txt(self.value))

    def zone_line(self) -> str:
        """`owner. TTL IN TYPE rdata`, preceded by `; comment` when the record has one."""
        line = f"{self.owner}. {self.ttl} IN {self.rtype} {self.rdata()}"
        return f"; {self.comment}\n{line}" if self.comment else line

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "name": self.owner,
            "type": self.rtype,
            "ttl": self.ttl,
            "value": self.value,
            "rdata": self.rdata(),
            "zone_line": self.zone_line(),
        }
        if self.comment:
            out["comment"] = self.comment
        return out


def split_txt(text: str) -> tuple[str, ...]:
    """Split TXT text into character-strings of at most 255 bytes (never inside a UTF-8 sequence)."""
    data = text.encode("utf-8")
    parts: list[str] = []
    while data:
        cut = min(_TXT_CHUNK, len(data))
        while cut < len(data) and (data[cut] & 0xC0) == 0x80:  # do not split a multi-byte character
            cut -= 1
        parts.append(data[:cut].decode("utf-8"))
        data = data[cut:]
    return tuple(parts) or ("",)


def _escape_txt(text: str) -> str:
    return text.replace("\\", "\\\\").replace('"', '\\"')


def _mailto(address: str) -> str:
    return address if address.startswith("mailto:") else f"mailto:{address}"


def mx_record(domain: str, mx_host: str, preference: int = 10) -> DnsRecord:
    """The MX record pointing `domain` at `mx_host`."""
    return DnsRecord(domain, "MX", f"{preference} {mx_host}.")


def address_records(host: str, ipv4: Iterable[str] = (), ipv6: Iterable[str] = ()) -> tuple[DnsRecord, ...]:
    """The A records, then the AAAA records, of `host`."""
    return (*(DnsRecord(host, "A", a) for a in ipv4), *(DnsRecord(host, "AAAA", a) for a in ipv6))


def spf_record(domain: str, mechanisms: Iterable[str] = ("mx",), all_qualifier: str = "-") -> DnsRecord:
    """`v=spf1 <mechanisms> -all`: only the listed senders, hard fail for the rest."""
    terms = [m for m in mechanisms if m]
    return DnsRecord(domain, "TXT", " ".join(["v=spf1", *terms, f"{all_qualifier}all"]))


def dkim_public_value(public_key: PublicKeyTypes) -> str:
    """The `k=...; p=...` part of a DKIM key record for an RSA or Ed25519 public key."""
    if isinstance(public_key, rsa.RSAPublicKey):
        der = public_key.public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)
        return f"k=rsa; p={base64.b64encode(der).decode('ascii')}"
    if isinstance(public_key, ed25519.Ed25519PublicKey):
        raw = public_key.public_bytes(Encoding.Raw, PublicFormat.Raw)  # RFC 8463 §4.2: the bare key
        return f"k=ed25519; p={base64.b64encode(raw).decode('ascii')}"
    raise TypeError(f"DKIM keys are RSA or Ed25519, not {type(public_key).__name__}")


def dkim_txt(selector: str, domain: str, public_key: PublicKeyTypes) -> DnsRecord:
    """The DKIM key record at `selector._domainkey.domain` (no `h=` tag: all hashes allowed)."""
    return DnsRecord(f"{selector}._domainkey.{domain}", "TXT", f"v=DKIM1; {dkim_public_value(public_key)}")


def dmarc_record(domain: str, rua: str, policy: str = "reject") -> DnsRecord:
    """`v=DMARC1; p=<policy>; sp=<policy>; np=<np>; rua=mailto:<rua>` at `_dmarc.domain`.

    Right under both specifications: `v` first and `p` second (RFC 7489 §6.4 wants that order;
    RFC 9989 allows any), no `pct`, `rf` or `ri` (removed by RFC 9989, Appendix C.5.2), no `psd`
    or `t` (RFC 9989 defaults: `u`, `n`). `sp` states the subdomain policy outright; `np`
    (RFC 9989 §4.7; an RFC 7489 receiver ignores it as unknown, §6.3) rejects mail from names
    that do not exist, which never send mail, unless the domain only monitors (`p=none`).
    """
    np = policy if policy == "none" else "reject"
    value = f"v=DMARC1; p={policy}; sp={policy}; np={np}; rua={_mailto(rua)}"
    return DnsRecord(f"_dmarc.{domain}", "TXT", value)


def dmarc_report_authorization(domain: str, rua: str) -> DnsRecord | None:
    """The record a foreign report domain publishes to accept `domain`'s reports (RFC 9990 §4;
    RFC 7489 §7.1)."""
    report_domain = rua.removeprefix("mailto:").rpartition("@")[2].lower().rstrip(".")
    related = report_domain.endswith(f".{domain}") or domain.endswith(f".{report_domain}")
    if report_domain == domain or related:
        return None
    return DnsRecord(
        f"{domain}._report._dmarc.{report_domain}",
        "TXT",
        "v=DMARC1",
        comment=f"publish in the zone of {report_domain}, so that it accepts {domain}'s DMARC reports",
    )


def spki_sha256(cert_or_key: x509.Certificate | PublicKeyTypes | PrivateKeyTypes) -> str:
    """Hex SHA-256 of the DER SubjectPublicKeyInfo: the data of a TLSA x 1 1 record."""
    if isinstance(cert_or_key, x509.Certificate):
        public: Any = cert_or_key.public_key()
    elif hasattr(cert_or_key, "public_key"):
        public = cert_or_key.public_key()
    else:
        public = cert_or_key
    der = public.public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)
    return hashlib.sha256(der).hexdigest()


def tlsa_311(
    mx_host: str, cert_or_key: x509.Certificate | PublicKeyTypes | PrivateKeyTypes, port: int = 25
) -> DnsRecord:
    """TLSA 3 1 1 (DANE-EE, SPKI, SHA-256) for `mx_host`'s SMTP port."""
    return DnsRecord(f"_{port}._tcp.{mx_host}", "TLSA", f"3 1 1 {spki_sha256(cert_or_key)}")


@dataclass(frozen=True, slots=True)
class MtaSts:
    """The MTA-STS TXT record, the policy file it announces, and where the policy is served."""

    txt: DnsRecord
    policy: str
    url: str


def mta_sts_policy(mx_hosts: Iterable[str], mode: str = "enforce", max_age: int = MTA_STS_MAX_AGE) -> str:
    """The policy file of RFC 8461 §3.2, CRLF-separated."""
    lines = ["version: STSv1", f"mode: {mode}", *(f"mx: {h}" for h in mx_hosts), f"max_age: {max_age}"]
    return "".join(f"{line}\r\n" for line in lines)


def mta_sts_records(
    domain: str, mx_hosts: Iterable[str], mode: str = "enforce", max_age: int = MTA_STS_MAX_AGE
) -> MtaSts:
    """The TXT record and policy; the id is a hash of the policy, so it changes only with it."""
    policy = mta_sts_policy(mx_hosts, mode, max_age)
    policy_id = hashlib.sha256(policy.encode("ascii")).hexdigest()[:20]
    txt = DnsRecord(f"_mta-sts.{domain}", "TXT", f"v=STSv1; id={policy_id}")
    return MtaSts(txt, policy, f"https://mta-sts.{domain}/.well-known/mta-sts.txt")


def tls_rpt_record(domain: str, rua: str) -> DnsRecord:
    """`v=TLSRPTv1; rua=mailto:<rua>` at `_smtp._tls.domain` (RFC 8460)."""
    return DnsRecord(f"_smtp._tls.{domain}", "TXT", f"v=TLSRPTv1; rua={_mailto(rua)}")


def ds_note(domain: str) -> str:
    """Zone-file comments: DANE and the DNSSEC verdicts need the zone signed and its DS at the parent."""
    return "\n".join(
        (
            f"; DNSSEC: sign the zone {domain}. and publish its DS record at the parent (through the",
            "; registrar). Without a validated chain, TLSA records are ignored by sending servers.",
            "; Check: dig +dnssec " + f"{domain}. SOA shows the ad flag on a validating resolver.",
        )
    )


@dataclass(frozen=True, slots=True)
class RecordSet:
    """Every record to publish for a hardened domain, plus the MTA-STS policy and notes."""

    domain: str
    records: tuple[DnsRecord, ...]
    mta_sts: MtaSts
    notes: tuple[str, ...]

    def zone_text(self) -> str:
        """Zone-file text: records, then the MTA-STS policy and the notes as comments."""
        blocks = [r.zone_line() for r in self.records]
        policy = "\n".join(f";   {line}" for line in self.mta_sts.policy.splitlines())
        blocks.append(f"; MTA-STS policy to serve at {self.mta_sts.url} (CRLF line ends):\n{policy}")
        blocks.extend(self.notes)
        return "\n".join(blocks) + "\n"

    def to_json(self) -> dict[str, Any]:
        return {
            "domain": self.domain,
            "records": [r.to_json() for r in self.records],
            "mta_sts_policy": {"url": self.mta_sts.url, "text": self.mta_sts.policy},
            "notes": list(self.notes),
        }


def records_for(
    settings: HardenSettings,
    dkim_keys: Mapping[str, PublicKeyTypes],
    certificate: x509.Certificate,
    next_key: PublicKeyTypes | PrivateKeyTypes | x509.Certificate | None = None,
    domain: str | None = None,
) -> RecordSet:
    """The record set of one mail domain (default: the primary); `dkim_keys` maps selector -> public key.

    The MX host's own records (A/AAAA, TLSA) are listed with the primary domain only: the host
    has one name, whichever domains it receives for.
    """
    mx = settings.mx_host
    domain = domain or settings.domain
    primary = domain == settings.domain
    records: list[DnsRecord] = [
        mx_record(domain, mx),
        *(address_records(mx, settings.ipv4, settings.ipv6) if primary else ()),
        spf_record(domain, settings.spf_mechanisms),
        *(dkim_txt(selector, domain, key) for selector, key in dkim_keys.items()),
        dmarc_record(domain, settings.dmarc_rua, settings.dmarc_policy),
    ]
    authorization = dmarc_report_authorization(domain, settings.dmarc_rua)
    if authorization is not None:
        records.append(authorization)
    if primary:
        records.append(tlsa_311(mx, certificate))
        if next_key is not None:
            nxt = tlsa_311(mx, next_key)
            records.append(
                DnsRecord(
                    nxt.owner, nxt.rtype, nxt.value, nxt.ttl, "the next TLS key: publish now, switch later"
                )
            )
    sts = mta_sts_records(domain, (mx,), "enforce", settings.mta_sts_max_age)
    records.extend((sts.txt, tls_rpt_record(domain, settings.tls_rpt_rua)))
    return RecordSet(domain, tuple(records), sts, (ds_note(domain),))
