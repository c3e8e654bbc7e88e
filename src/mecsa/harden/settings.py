"""What `mecsa harden` needs to know, read from a TOML file and/or command-line flags, all validated.

The TOML file is one flat table; every key has a CLI flag of the same name (``_`` -> ``-``),
and a flag overrides the file. See ``example.toml`` beside this module. Keys:

=======================  ========================================================================
key                      meaning
=======================  ========================================================================
domain (required)        the mail domain, e.g. ``example.com`` (IDNs accepted, stored as A-labels)
domains                  more mail domains served by the same MX (a list); ``domain`` may be left
                         out, the first of ``domains`` is then the primary one
mx_host (required)       the MX host name; Postfix's ``myhostname``; must be covered by the cert
ipv4, ipv6               the MX's public addresses (a string or a list; at least one in all)
cert, key (required)     PEM certificate chain (leaf first) and its private key, as Postfix will
                         read them; the key must match the leaf certificate, and the certificate
                         must be valid now. Relative paths are made absolute (against the
                         current directory): Postfix runs elsewhere and would not find them;
                         under a --root, a system path that exists only there is taken from it
next_key                 PEM key (or certificate) for the next TLS key: its TLSA is pre-published
selector                 DKIM selector; default ``s<YYYYMM>`` of today, e.g. ``s202611``
dkim_ed25519             also sign with an Ed25519 key (selector ``<selector>-ed25519``); false
dmarc_rua                DMARC aggregate report address; default ``dmarc_reports@<domain>``
dmarc_policy             ``reject`` (default) or ``quarantine``
dmarc_reject_failures    OpenDMARC rejects mail failing DMARC (RejectFailures); true
spf_mechanisms           SPF mechanisms before ``-all``; default ``["mx"]``
tls_rpt_rua              TLS-RPT report address; default the DMARC report address
mta_sts_max_age          MTA-STS max_age in seconds; default 604800 (one week)
mynetworks               extra trusted client networks (CIDRs) besides loopback
postmaster (required)    target of the postmaster alias: a local user or a mail address
dmarc_reports_to         target of the dmarc_reports alias; default the postmaster target
resolver                 ``unbound`` (write a local validating resolver config, default) or
                         ``existing`` (a validating resolver runs already: instructions only)
zone_nameservers         NS names of the zones `mecsa harden zone` writes; default ``ns1.<domain>``,
                         at the MX's addresses (this host serves its own zone)
mta_sts_web              write the MTA-STS policy file and an nginx block serving it; true
certbot_hook             Postfix serves a copy of the certificate that a Certbot deploy hook
                         replaces only when the renewed key matches a published TLSA; default
                         true when ``cert`` lies under ``/etc/letsencrypt/live/``
=======================  ========================================================================
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    PublicFormat,
    load_pem_private_key,
)

from mecsa.domain import DomainError, normalise_domain

_LOCAL_PART = re.compile(r"^[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*$")
_LOCAL_USER = re.compile(r"^[a-z_][a-z0-9_.-]{0,31}$")
_SPF_TERM = re.compile(
    r"^([+?~-]?(a|mx|ptr|ip4|ip6|include|exists)([:/]\S+)?|(redirect|exp)=\S+)$", re.IGNORECASE
)
DMARC_POLICIES = ("reject", "quarantine")
RESOLVER_MODES = ("unbound", "existing")


class SettingsError(ValueError):
    """A setting that cannot be used; the message is one line, fit for the CLI."""


def default_selector(today: dt.date | None = None) -> str:
    """`s<YYYYMM>` of `today`: a new month gives a new selector, which eases key rotation."""
    day = today or dt.date.today()
    return f"s{day.year:04d}{day.month:02d}"


@dataclass(frozen=True, slots=True)
class HardenSettings:
    """The validated input of every generator. Build with `load_settings` or `settings_from_mapping`."""

    domain: str
    mx_host: str
    cert: Path
    key: Path
    postmaster: str
    selector: str
    dmarc_rua: str
    ipv4: tuple[str, ...] = ()
    ipv6: tuple[str, ...] = ()
    next_key: Path | None = None
    dkim_ed25519: bool = False
    dmarc_policy: str = "reject"
    dmarc_reject_failures: bool = True
    spf_mechanisms: tuple[str, ...] = ("mx",)
    tls_rpt_rua: str = ""
    mta_sts_max_age: int = 604800
    mynetworks: tuple[str, ...] = ()
    dmarc_reports_to: str = ""
    resolver: str = "unbound"
    extra_domains: tuple[str, ...] = ()
    certbot_hook: bool = False
    mta_sts_web: bool = True
    zone_nameservers: tuple[str, ...] = ()

    @property
    def domains(self) -> tuple[str, ...]:
        """Every mail domain of this MX, the primary one first."""
        return (self.domain, *self.extra_domains)

    @property
    def ed25519_selector(self) -> str:
        return f"{self.selector}-ed25519"

    @property
    def selectors(self) -> tuple[str, ...]:
        """The DKIM selectors in use, RSA first."""
        return (self.selector, self.ed25519_selector) if self.dkim_ed25519 else (self.selector,)


_KNOWN = ({f.name for f in fields(HardenSettings)} - {"extra_domains"}) | {"domains"}
CERT_WARN_DAYS = 21  # Certbot renews at 30 days left: under 21, renewal has been failing for 9 days


def load_settings(
    config: Path | None,
    overrides: Mapping[str, Any] | None = None,
    today: dt.date | None = None,
    root: Path | None = None,
) -> HardenSettings:
    """Read `config` (TOML), apply `overrides` (CLI flags; None values ignored) and validate.

    With `root` (the --root of a staged copy of the system), an absolute TLS path that exists
    only under the root is taken from there."""
    raw: dict[str, Any] = {}
    if config is not None:
        try:
            raw = tomllib.loads(config.read_text(encoding="utf-8"))
        except OSError as exc:
            raise SettingsError(f"cannot read {config}: {exc.strerror or exc}") from None
        except tomllib.TOMLDecodeError as exc:
            raise SettingsError(f"{config} is not valid TOML: {exc}") from None
    raw.update({k: v for k, v in (overrides or {}).items() if v is not None and v != [] and v != ()})
    return settings_from_mapping(raw, today, root)


def settings_from_mapping(
    raw: Mapping[str, Any], today: dt.date | None = None, root: Path | None = None
) -> HardenSettings:
    """Validate a flat mapping (the TOML table) into `HardenSettings`; SettingsError on the first problem."""
    unknown = sorted(set(raw) - _KNOWN)
    if unknown:
        raise SettingsError(f"unknown setting(s): {', '.join(unknown)}; known: {', '.join(sorted(_KNOWN))}")
    listed = tuple(_domain(d, "domains") for d in _strings(raw.get("domains", ()), "domains"))
    if raw.get("domain") in (None, "") and listed:
        raw = {**raw, "domain": listed[0]}
    for required in ("domain", "mx_host", "cert", "key", "postmaster"):
        if raw.get(required) in (None, ""):
            raise SettingsError(f"missing setting {required!r} (flag --{required.replace('_', '-')})")
    domain = _domain(raw["domain"], "domain")
    extra_domains = tuple(d for d in dict.fromkeys(listed) if d != domain)
    mx_host = _domain(raw["mx_host"], "mx_host")
    ipv4 = tuple(_address(a, 4) for a in _strings(raw.get("ipv4", ()), "ipv4"))
    ipv6 = tuple(_address(a, 6) for a in _strings(raw.get("ipv6", ()), "ipv6"))
    if not ipv4 and not ipv6:
        raise SettingsError("give the MX's public address: ipv4 and/or ipv6")
    cert, key = _absolute(raw["cert"], "cert", root), _absolute(raw["key"], "key", root)
    check_tls_pair(cert, key, mx_host)
    next_key = _absolute(raw["next_key"], "next_key", root) if raw.get("next_key") else None
    if next_key is not None:
        load_public_key(next_key)
    dmarc_rua = _email(raw.get("dmarc_rua") or f"dmarc_reports@{domain}", "dmarc_rua")
    postmaster = _alias_target(raw["postmaster"], "postmaster")
    return HardenSettings(
        domain=domain,
        mx_host=mx_host,
        cert=cert,
        key=key,
        postmaster=postmaster,
        selector=parse_selector(raw.get("selector") or default_selector(today)),
        dmarc_rua=dmarc_rua,
        ipv4=ipv4,
        ipv6=ipv6,
        next_key=next_key,
        dkim_ed25519=_bool(raw.get("dkim_ed25519", False), "dkim_ed25519"),
        dmarc_policy=_choice(raw.get("dmarc_policy", "reject"), DMARC_POLICIES, "dmarc_policy"),
        dmarc_reject_failures=_bool(raw.get("dmarc_reject_failures", True), "dmarc_reject_failures"),
        spf_mechanisms=_spf(raw.get("spf_mechanisms", ("mx",))),
        tls_rpt_rua=_email(raw.get("tls_rpt_rua") or dmarc_rua, "tls_rpt_rua"),
        mta_sts_max_age=_max_age(raw.get("mta_sts_max_age", 604800)),
        mynetworks=tuple(_network(n) for n in _strings(raw.get("mynetworks", ()), "mynetworks")),
        dmarc_reports_to=_alias_target(raw.get("dmarc_reports_to") or postmaster, "dmarc_reports_to"),
        resolver=_choice(raw.get("resolver", "unbound"), RESOLVER_MODES, "resolver"),
        extra_domains=extra_domains,
        zone_nameservers=tuple(
            _domain(n, "zone_nameservers")
            for n in _strings(raw.get("zone_nameservers", ()), "zone_nameservers")
        ),
        mta_sts_web=_bool(raw.get("mta_sts_web", True), "mta_sts_web"),
        certbot_hook=_bool(raw.get("certbot_hook", "/letsencrypt/live/" in str(cert)), "certbot_hook"),
    )


# --- field validators: each returns the normalised value or raises SettingsError -------------------


def _string(value: Any, name: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise SettingsError(f"{name} must be a non-empty string, not {value!r}")
    return value.strip()


def _strings(value: Any, name: str) -> tuple[str, ...]:
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, list | tuple):
        raise SettingsError(f"{name} must be a string or a list of strings, not {value!r}")
    out: list[str] = []
    for item in items:
        # CLI flags may carry comma-separated lists
        out.extend(p.strip() for p in _string(item, name).split(",") if p.strip())
    return tuple(out)


def _absolute(value: Any, name: str, root: Path | None = None) -> Path:
    """An absolute path: a relative one against the current directory (Postfix runs in its queue
    directory and would not find `pki/x.pem`); under a staged `root`, a system path found only there."""
    # abspath, not resolve(): Certbot's live/ names are symlinks that renewal re-points, and
    # Postfix must keep reading through them
    path = Path(os.path.abspath(_string(value, name)))  # noqa: PTH100
    if root is not None and not path.exists():
        staged = Path(os.path.abspath(root)) / path.relative_to(path.anchor)  # noqa: PTH100
        if staged.exists():
            return staged
    return path


def _bool(value: Any, name: str) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "yes", "1", "false", "no", "0"):
        return value.lower() in ("true", "yes", "1")
    raise SettingsError(f"{name} must be true or false, not {value!r}")


def _choice(value: Any, choices: tuple[str, ...], name: str) -> str:
    if value not in choices:
        raise SettingsError(f"{name} must be one of {', '.join(choices)}, not {value!r}")
    return str(value)


def _domain(value: Any, name: str) -> str:
    try:
        return normalise_domain(_string(value, name))
    except DomainError as exc:
        raise SettingsError(f"{name}: {exc}") from None


def _address(text: str, version: int) -> str:
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        raise SettingsError(f"ipv{version}: {text!r} is not an IP address") from None
    if address.version != version:
        raise SettingsError(f"ipv{version}: {text!r} is an IPv{address.version} address")
    if not address.is_global and not address.is_loopback and not address.is_private:
        raise SettingsError(f"ipv{version}: {text!r} is not a unicast address an MX can have")
    return address.compressed


def _network(text: str) -> str:
    try:
        return ipaddress.ip_network(text.strip("[]").replace("]/", "/"), strict=True).compressed
    except ValueError as exc:
        raise SettingsError(f"mynetworks: {text!r} is not a network in CIDR form ({exc})") from None


def _email(value: Any, name: str) -> str:
    text = _string(value, name).removeprefix("mailto:")
    local, at, domain = text.rpartition("@")
    if not at or not _LOCAL_PART.match(local):
        raise SettingsError(f"{name}: {text!r} is not a mail address (local@domain)")
    return f"{local}@{_domain(domain, name)}"


def _alias_target(value: Any, name: str) -> str:
    text = _string(value, name)
    if "@" in text:
        return _email(text, name)
    if not _LOCAL_USER.match(text):
        raise SettingsError(f"{name}: {text!r} is neither a local user name nor a mail address")
    return text


def parse_selector(value: Any) -> str:
    """A DKIM selector, lower-cased A-labels; SettingsError when it is not one or more DNS labels."""
    text = _string(value, "selector")
    try:
        # a selector is one or more DNS labels (RFC 6376 §3.1); "x" makes one label a name
        return normalise_domain(f"{text}.x").removesuffix(".x")
    except DomainError:
        raise SettingsError(f"selector: {text!r} is not one or more DNS labels") from None


def _spf(value: Any) -> tuple[str, ...]:
    terms = tuple(t for item in _strings(value, "spf_mechanisms") for t in item.split())
    for term in terms:
        if term.lower().lstrip("+?~-") == "all":
            raise SettingsError("spf_mechanisms: leave out 'all'; mecsa ends the record with -all")
        if _SPF_TERM.match(term) is None:
            raise SettingsError(f"spf_mechanisms: {term!r} is not an SPF mechanism")
    if not terms:
        raise SettingsError("spf_mechanisms: give at least one mechanism, e.g. mx")
    return terms


def _max_age(value: Any) -> int:
    if isinstance(value, str) and value.isdigit():
        value = int(value)
    if not isinstance(value, int) or isinstance(value, bool) or not 86400 <= value <= 31557600:
        raise SettingsError(f"mta_sts_max_age must be seconds between 86400 and 31557600, not {value!r}")
    return value


# --- TLS material ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class TlsMaterial:
    """The certificate chain (leaf first) and private key named by the settings."""

    chain: tuple[x509.Certificate, ...]
    key_pem: bytes

    @property
    def leaf(self) -> x509.Certificate:
        return self.chain[0]


def load_chain(path: Path) -> tuple[x509.Certificate, ...]:
    """The certificates of a PEM file, in file order; SettingsError when none can be read."""
    try:
        chain = tuple(x509.load_pem_x509_certificates(path.read_bytes()))
    except OSError as exc:
        raise SettingsError(f"cert: cannot read {path}: {exc.strerror or exc}") from None
    except ValueError as exc:
        raise SettingsError(f"cert: {path} holds no readable PEM certificate ({exc})") from None
    return chain


def load_public_key(path: Path) -> Any:
    """The public key of a PEM private key or certificate file (for the next-key TLSA)."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise SettingsError(f"next_key: cannot read {path}: {exc.strerror or exc}") from None
    if b"CERTIFICATE-----" in data:
        return x509.load_pem_x509_certificate(data).public_key()
    try:
        return load_pem_private_key(data, password=None).public_key()
    except (ValueError, TypeError) as exc:
        raise SettingsError(f"next_key: {path} is not an unencrypted PEM key or certificate: {exc}") from None


def check_tls_pair(cert: Path, key: Path, mx_host: str, now: dt.datetime | None = None) -> TlsMaterial:
    """Load and cross-check the chain and key: parseable, matching, valid for `mx_host`, and valid now."""
    chain = load_chain(cert)
    check_validity(chain[0], cert, now)
    try:
        key_pem = key.read_bytes()
    except OSError as exc:
        raise SettingsError(f"key: cannot read {key}: {exc.strerror or exc}") from None
    try:
        private = load_pem_private_key(key_pem, password=None)
    except (ValueError, TypeError) as exc:
        raise SettingsError(f"key: {key} is not an unencrypted PEM private key ({exc})") from None
    spki = (Encoding.DER, PublicFormat.SubjectPublicKeyInfo)
    if private.public_key().public_bytes(*spki) != chain[0].public_key().public_bytes(*spki):
        raise SettingsError(f"key: {key} does not match the first certificate in {cert}")
    if not _covers(chain[0], mx_host):
        raise SettingsError(f"cert: {cert} is not valid for {mx_host} (not in its subjectAltName)")
    return TlsMaterial(chain, key_pem)


def check_validity(leaf: x509.Certificate, path: Path, now: dt.datetime | None = None) -> None:
    """SettingsError when the leaf is expired or not yet valid (RFC 5280 §4.1.2.5): senders refuse it."""
    moment = now or dt.datetime.now(dt.UTC)
    if moment > leaf.not_valid_after_utc:
        raise SettingsError(f"cert: {path} expired on {leaf.not_valid_after_utc:%Y-%m-%d %H:%M} UTC")
    if moment < leaf.not_valid_before_utc:
        raise SettingsError(
            f"cert: {path} is not valid before {leaf.not_valid_before_utc:%Y-%m-%d %H:%M} UTC"
        )


def certificate_warnings(leaf: x509.Certificate, path: Path, now: dt.datetime | None = None) -> list[str]:
    """A warning when the leaf has under CERT_WARN_DAYS days left."""
    left = leaf.not_valid_after_utc - (now or dt.datetime.now(dt.UTC))
    if left < dt.timedelta(days=CERT_WARN_DAYS):
        return [
            f"{path} expires in {left.days} day(s), on {leaf.not_valid_after_utc:%Y-%m-%d}: renew it"
            " (Certbot renews at 30 days left; check `certbot renew --dry-run`)"
        ]
    return []


def _covers(cert: x509.Certificate, host: str) -> bool:
    try:
        names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return False
    for name in names.get_values_for_type(x509.DNSName):
        pattern = name.lower().rstrip(".")
        if pattern == host or (
            pattern.startswith("*.") and host.count(".") == pattern.count(".") and host.endswith(pattern[1:])
        ):
            return True
    return False


def load_tls(settings: HardenSettings) -> TlsMaterial:
    """The TLS material of validated settings (re-read: files may have changed since validation)."""
    return check_tls_pair(settings.cert, settings.key, settings.mx_host)
