"""Scenario files: one mail domain, how it is set up in the lab, and what an assessment must find.

A scenario is a TOML file (any path; the shipped ones are in `mecsa/lab/scenarios/`). Every key
but `domain` is optional; the defaults describe the hardened, top-score setup. In record texts,
`{domain}` stands for the scenario's domain.

    name = "top-score"                  # default: the file name without .toml
    description = "..."
    domain = "top.test"                 # its parent must be a TLD (the lab serves root + TLDs)
    dnssec = "signed"                   # signed | unsigned | bogus
    tamper = ["@ MX"]                   # bogus only: "OWNER TYPE" RRsets whose signature is broken
    # The records default to those `mecsa harden records` generates; give a text to deviate:
    spf = "v=spf1 mx ~all"              # the SPF record text ("" publishes none)
    dmarc = ["v=DMARC1; p=none"]        # zero, one or several records
    tls_rpt = ""                        # "" publishes none
    records = ["extra.{domain}. 300 IN TXT \"...\""]            # extra zone lines, verbatim
    tld_records = ["_dmarc.{tld}. 300 IN TXT \"...\""]   # extra lines in the TLD's zone (give the
                                        # scenario a TLD of its own, or they reach its neighbours)

    [hardening]                         # `mecsa harden` settings (see mecsa/harden/example.toml),
    dmarc_policy = "quarantine"         # passed to `harden apply` for every MX host

    [dkim]
    selector = "lab"
    bits = 2048                         # RSA key size (1024 is a deviation)
    hash = ""                           # an `h=` tag to publish, e.g. "rsa-sha256" (a known mistake)
    publish = true                      # false: the key is used but its TXT record is missing

    [mta_sts]
    mode = "enforce"                    # enforce | testing | none
    publish = true                      # false: no _mta-sts record and no policy

    [[mx]]                              # one table per MX host (default: one, "mx1")
    name = "mx1"                        # host label: mx1.<domain>
    preference = 10
    starttls = true
    tls = ["TLSv1.2", "TLSv1.3"]        # protocols the server offers
    certificate = "valid"               # valid | expired | wrong-name | self-signed | lenient-ca
                                        # (lenient-ca: issued by an intermediate whose
                                        # basicConstraints is not marked critical)
    tlsa = "match"                      # match | mismatch | none | issuer (2 1 1 of the issuing CA)
    revocation = "none"                 # none | good | revoked | crl-revoked | unreachable
                                        # (see mecsa/lab/revocation.py)
    in_mta_sts = true                   # listed in the MTA-STS policy

    [expect]                            # what `mecsa lab assess` must find
    fail = ["dane"]                     # exactly the scored protocols whose verdict is fail
    fail_by_profile = {"mecsa-st" = []} # ... under a profile, when it differs (`mecsa assess
                                        # --profile` also picks the DMARC discovery: mecsa-st, psl)
    error = []                          # exactly those whose verdict is error (default: none)
    findings = ["dane.no_match"]        # finding ids that must be reported (as fail, warn or error)
    [expect.levels.mecsa]               # per profile, per area: a level, or "best" (the
    confidentiality = 10                # highest the profile's table gives at all)
    phishing = 10
    integrity = 10
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from mecsa.domain import DomainError, normalise_domain

SHIPPED_DIR = Path(__file__).parent / "scenarios"
DNSSEC_MODES = ("signed", "unsigned", "bogus")
CERT_KINDS = ("valid", "expired", "wrong-name", "self-signed", "lenient-ca")
TLSA_KINDS = ("match", "mismatch", "none", "issuer")
REVOCATION_KINDS = ("none", "good", "revoked", "crl-revoked", "unreachable")
MTA_STS_MODES = ("enforce", "testing", "none")
DEFAULT_TLS = ("TLSv1.2", "TLSv1.3")
TLS_VERSIONS = ("TLSv1", "TLSv1.1", "TLSv1.2", "TLSv1.3")
AREAS = ("confidentiality", "phishing", "integrity")
Level = int | str  # an int, or "best"


class ScenarioError(ValueError):
    """A scenario file is not valid; the message names the file and the key."""


@dataclass(frozen=True, slots=True)
class MxSpec:
    """One MX host of the scenario's domain."""

    name: str = "mx1"
    preference: int = 10
    starttls: bool = True
    tls: tuple[str, ...] = DEFAULT_TLS
    certificate: str = "valid"
    tlsa: str = "match"
    in_mta_sts: bool = True
    revocation: str = "none"


@dataclass(frozen=True, slots=True)
class DkimSpec:
    selector: str = "lab"
    bits: int = 2048
    hash: str = ""
    publish: bool = True


@dataclass(frozen=True, slots=True)
class MtaStsSpec:
    mode: str = "enforce"
    publish: bool = True


@dataclass(frozen=True, slots=True)
class Expectation:
    """The scored protocols that must fail / be in error, findings that must be reported, and the
    levels per profile and area."""

    fail: frozenset[str] = frozenset()
    error: frozenset[str] = frozenset()
    findings: tuple[str, ...] = ()
    levels: Mapping[str, Mapping[str, Level]] = field(default_factory=dict)
    fail_by_profile: Mapping[str, frozenset[str]] = field(default_factory=dict)

    def fail_under(self, profile: str) -> frozenset[str]:
        """The protocols that must fail when assessed with `--profile profile`."""
        return self.fail_by_profile.get(profile, self.fail)


@dataclass(frozen=True, slots=True)
class Scenario:
    """One parsed scenario file."""

    name: str
    domain: str
    description: str = ""
    dnssec: str = "signed"
    tamper: tuple[str, ...] = ("@ MX",)
    spf: str | None = None  # None: the record `mecsa harden` generates
    dmarc: tuple[str, ...] | None = None
    tls_rpt: str | None = None
    records: tuple[str, ...] = ()
    tld_records: tuple[str, ...] = ()
    hardening: Mapping[str, Any] = field(default_factory=dict)
    dkim: DkimSpec = DkimSpec()
    mta_sts: MtaStsSpec = MtaStsSpec()
    mx: tuple[MxSpec, ...] = (MxSpec(),)
    expect: Expectation = Expectation()
    source: str = ""

    def text(self, template: str) -> str:
        """A record text with `{domain}` (and `{tld}`) filled in."""
        return template.replace("{domain}", self.domain).replace("{tld}", self.tld)

    @property
    def tld(self) -> str:
        return self.domain.rpartition(".")[2]

    def mx_host(self, mx: MxSpec) -> str:
        return f"{mx.name}.{self.domain}"


def load_scenario(path: Path | str) -> Scenario:
    """Read and validate one scenario file."""
    source = Path(path)
    try:
        data = tomllib.loads(source.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ScenarioError(f"{source}: {exc}") from exc
    try:
        return parse_scenario(data, name=source.stem, source=str(source))
    except ScenarioError as exc:
        raise ScenarioError(f"{source}: {exc}") from exc


def shipped_scenarios() -> list[Path]:
    """The scenario files shipped with mecsa, sorted by name."""
    return sorted(SHIPPED_DIR.glob("*.toml"))


def parse_scenario(data: Mapping[str, Any], *, name: str = "scenario", source: str = "") -> Scenario:
    """Build a `Scenario` from parsed TOML, rejecting unknown keys and values."""
    _known(
        data,
        "",
        {
            "name",
            "description",
            "domain",
            "dnssec",
            "tamper",
            "spf",
            "dmarc",
            "tls_rpt",
            "records",
            "tld_records",
            "hardening",
            "dkim",
            "mta_sts",
            "mx",
            "expect",
        },
    )
    if "domain" not in data:
        raise ScenarioError("missing key 'domain'")
    try:
        domain = normalise_domain(_str(data, "domain"))
    except DomainError as exc:
        raise ScenarioError(f"domain: {exc}") from exc
    if domain.count(".") != 1:
        raise ScenarioError(f"domain {domain!r}: must be one label under a TLD, e.g. example.test")
    base = Scenario(name=name, domain=domain, source=source)
    scenario = replace(
        base,
        name=_str(data, "name", base.name),
        description=_str(data, "description", ""),
        dnssec=_choice(data, "dnssec", DNSSEC_MODES, base.dnssec),
        tamper=_strs(data, "tamper", base.tamper),
        spf=_str(data, "spf") if "spf" in data else None,
        dmarc=_strs(data, "dmarc", ()) if "dmarc" in data else None,
        tls_rpt=_str(data, "tls_rpt") if "tls_rpt" in data else None,
        records=_strs(data, "records", ()),
        tld_records=_strs(data, "tld_records", ()),
        hardening=dict(_table(data, "hardening")),
        dkim=_dkim(_table(data, "dkim")),
        mta_sts=_mta_sts(_table(data, "mta_sts")),
        mx=_mx_list(data.get("mx")),
        expect=_expect(_table(data, "expect")),
    )
    return scenario


def _dkim(table: Mapping[str, Any]) -> DkimSpec:
    _known(table, "dkim.", {"selector", "bits", "hash", "publish"})
    bits = _int(table, "bits", 2048)
    if bits not in (1024, 2048, 3072, 4096):
        raise ScenarioError(f"dkim.bits: {bits} is not one of 1024, 2048, 3072, 4096")
    return DkimSpec(
        _str(table, "selector", "lab"), bits, _str(table, "hash", ""), _bool(table, "publish", True)
    )


def _mta_sts(table: Mapping[str, Any]) -> MtaStsSpec:
    _known(table, "mta_sts.", {"mode", "publish"})
    return MtaStsSpec(_choice(table, "mode", MTA_STS_MODES, "enforce"), _bool(table, "publish", True))


def _mx_list(value: Any) -> tuple[MxSpec, ...]:
    if value is None:
        return (MxSpec(),)
    if not isinstance(value, list) or not value:
        raise ScenarioError("mx: must be a non-empty array of tables ([[mx]])")
    hosts = tuple(_mx(t, i) for i, t in enumerate(value))
    if len({m.name for m in hosts}) != len(hosts):
        raise ScenarioError("mx: host names repeat")
    return hosts


def _mx(table: Any, index: int) -> MxSpec:
    where = f"mx[{index}]."
    if not isinstance(table, dict):
        raise ScenarioError(f"{where[:-1]}: must be a table")
    keys = {"name", "preference", "starttls", "tls", "certificate", "tlsa", "in_mta_sts", "revocation"}
    _known(table, where, keys)
    label = _str(table, "name", f"mx{index + 1}")
    if not label.replace("-", "").isalnum():
        raise ScenarioError(f"{where}name: {label!r} is not one DNS label")
    tls = _strs(table, "tls", DEFAULT_TLS)
    for version in tls:
        if version not in TLS_VERSIONS:
            raise ScenarioError(f"{where}tls: {version!r} is not one of {', '.join(TLS_VERSIONS)}")
    return MxSpec(
        name=label.lower(),
        preference=_int(table, "preference", 10 * (index + 1)),
        starttls=_bool(table, "starttls", True),
        tls=tls,
        certificate=_choice(table, "certificate", CERT_KINDS, "valid"),
        tlsa=_choice(table, "tlsa", TLSA_KINDS, "match"),
        in_mta_sts=_bool(table, "in_mta_sts", True),
        revocation=_choice(table, "revocation", REVOCATION_KINDS, "none"),
    )


def _expect(table: Mapping[str, Any]) -> Expectation:

    _known(table, "expect.", {"fail", "error", "findings", "levels", "fail_by_profile"})
    sets = {}
    for key in ("fail", "error"):
        sets[key] = _protocol_set(table, key, f"expect.{key}")
    by_profile = {
        profile: _protocol_set(_table(table, "fail_by_profile"), profile, f"expect.fail_by_profile.{profile}")
        for profile in _table(table, "fail_by_profile")
    }
    levels: dict[str, dict[str, Level]] = {}
    for profile, areas in _table(table, "levels").items():
        if not isinstance(areas, dict):
            raise ScenarioError(f"expect.levels.{profile}: must be a table of areas")
        _known(areas, f"expect.levels.{profile}.", set(AREAS))
        for area, level in areas.items():
            ok = (
                isinstance(level, int) and not isinstance(level, bool) and 0 <= level <= 10
            ) or level == "best"
            if not ok:
                raise ScenarioError(f'expect.levels.{profile}.{area}: {level!r} is not 0..10 or "best"')
        levels[profile] = dict(areas)
    return Expectation(sets["fail"], sets["error"], _strs(table, "findings", ()), levels, by_profile)


def _protocol_set(table: Mapping[str, Any], key: str, where: str) -> frozenset[str]:
    from mecsa.model import SCORED_PROTOCOLS

    names = frozenset(_strs(table, key, ()))
    unknown = names - set(SCORED_PROTOCOLS)
    if unknown:
        raise ScenarioError(f"{where}: unknown protocols {sorted(unknown)}")
    return names


def _known(table: Mapping[str, Any], where: str, keys: set[str]) -> None:
    unknown = set(table) - keys
    if unknown:
        raise ScenarioError(f"unknown key(s) {', '.join(where + k for k in sorted(unknown))}")


def _table(data: Mapping[str, Any], key: str) -> Mapping[str, Any]:
    value = data.get(key, {})
    if not isinstance(value, dict):
        raise ScenarioError(f"{key}: must be a table")
    return value


def _str(data: Mapping[str, Any], key: str, default: str | None = None) -> str:
    value = data.get(key, default)
    if not isinstance(value, str):
        raise ScenarioError(f"{key}: must be a string")
    return value


def _strs(data: Mapping[str, Any], key: str, default: tuple[str, ...]) -> tuple[str, ...]:
    value = data.get(key, list(default))
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ScenarioError(f"{key}: must be a string or an array of strings")
    return tuple(value)


def _int(data: Mapping[str, Any], key: str, default: int) -> int:
    value = data.get(key, default)
    if not isinstance(value, int) or isinstance(value, bool):
        raise ScenarioError(f"{key}: must be an integer")
    return value


def _bool(data: Mapping[str, Any], key: str, default: bool) -> bool:
    value = data.get(key, default)
    if not isinstance(value, bool):
        raise ScenarioError(f"{key}: must be true or false")
    return value


def _choice(data: Mapping[str, Any], key: str, choices: tuple[str, ...], default: str) -> str:
    value = _str(data, key, default)
    if value not in choices:
        raise ScenarioError(f"{key}: {value!r} is not one of {', '.join(choices)}")
    return value
