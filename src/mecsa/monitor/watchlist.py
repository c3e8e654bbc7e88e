"""The watch list: a TOML file naming the domains, their intervals, and where alerts go.

    expiry_days = 21          # certificate expiry warning (default 21)
    interval = "1d"           # default per domain: 30m, 6h, 1d, or seconds
    notify = ["stdout"]       # default notifiers
    reports = true            # alerts from the ingested DMARC and TLS reports (default false)
    tls_failure_threshold = 0.05   # alert above this share of failed TLS sessions (default 0.05)
    reports_window = "7d"     # the reports looked at: those ending within this (default 7d)

    [assess]                  # how to assess (all optional)
    resolvers = ["10.53.0.3"]
    ca_file = "/etc/ssl/certs/ca-certificates.crt"
    dkim_selectors = ["s2026"]
    timeout = 2
    smtp_timeout = 10
    profile = "mecsa"

    [[domain]]
    name = "example.org"
    interval = "6h"
    notify = ["ops", "hook"]
    reports = false           # optional: this domain's reports raise no alert

    [notifier.ops]
    type = "email"            # SMTP with STARTTLS, always: never in clear text
    host = "smtp.example.org"
    port = 587
    from = "mecsa@example.org"
    to = ["ops@example.org"]
    ca_file = "/etc/ssl/certs/ca-certificates.crt"   # optional: verifies the SMTP server
    username = "mecsa"        # optional, with password_env naming the variable holding the password
    password_env = "MECSA_SMTP_PASSWORD"
    max_per_hour = 12         # rate limit (messages per notifier per hour)

    [notifier.hook]
    type = "webhook"          # JSON POST
    url = "https://hooks.example.org/mecsa"
    secret_env = "MECSA_WEBHOOK_SECRET"   # optional: HMAC-SHA256 of the body in X-Mecsa-Signature

`stdout` is always defined. Errors name the file and the key, on one line.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mecsa.monitor.rules import DEFAULT_EXPIRY_DAYS, RuleSettings

DEFAULT_INTERVAL_S = 86400.0
MIN_INTERVAL_S = 60.0
DEFAULT_MAX_PER_HOUR = 12
DEFAULT_TLS_THRESHOLD = 0.05  # as mecsa.reports.events (not imported: parsing stays light)
DEFAULT_REPORTS_WINDOW_S = 7 * 86400.0
NOTIFIER_TYPES = ("stdout", "email", "webhook")
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhd]?)\s*$")
_UNIT_S = {"": 1.0, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}


class WatchListError(ValueError):
    """The watch list cannot be used; the message is one line naming the file and the problem."""


@dataclass(frozen=True, slots=True)
class NotifierConfig:
    name: str
    type: str
    max_per_hour: int = DEFAULT_MAX_PER_HOUR
    # email
    host: str = ""
    port: int = 587
    sender: str = ""
    recipients: tuple[str, ...] = ()
    ca_file: str | None = None
    username: str | None = None
    password_env: str | None = None
    timeout: float = 30.0
    # webhook
    url: str = ""
    secret_env: str | None = None


@dataclass(frozen=True, slots=True)
class AssessSettings:
    resolvers: tuple[str, ...] = ()
    ca_file: str | None = None
    dkim_selectors: tuple[str, ...] = ()
    timeout: float = 2.0
    smtp_timeout: float = 10.0
    profile: str = "mecsa"
    smtp_port: int = 25


@dataclass(frozen=True, slots=True)
class ReportAlertSettings:
    """Alerts from the ingested reports (issue 22): an unknown sending source, a TLS failure rate.

    They are conditions over the reports whose date range ends within `window_s`: open while the
    reports show the problem, resolved once they stop. Reports come daily, often a day late, so the
    window is a week by default.
    """

    enabled: bool = False
    tls_failure_threshold: float = DEFAULT_TLS_THRESHOLD
    window_s: float = DEFAULT_REPORTS_WINDOW_S


@dataclass(frozen=True, slots=True)
class WatchedDomain:
    name: str
    interval_s: float
    notify: tuple[str, ...]
    reports: bool = False  # raise alerts from this domain's ingested reports


@dataclass(frozen=True, slots=True)
class WatchList:
    domains: tuple[WatchedDomain, ...]
    notifiers: Mapping[str, NotifierConfig]
    assess: AssessSettings = field(default_factory=AssessSettings)
    rules: RuleSettings = field(default_factory=RuleSettings)
    source: str = field(default="", compare=False)
    reports: ReportAlertSettings = field(default_factory=ReportAlertSettings)


def load_watchlist(path: Path) -> WatchList:
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise WatchListError(f"{path}: cannot read the watch list: {exc.strerror or exc}") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise WatchListError(f"{path}: not valid TOML: {exc}") from None
    try:
        return parse_watchlist(data, str(path))
    except WatchListError as exc:
        raise WatchListError(f"{path}: {exc}") from None


def parse_watchlist(data: Mapping[str, Any], source: str = "") -> WatchList:
    from mecsa.domain import DomainError, normalise_domain

    known = {
        "expiry_days",
        "interval",
        "notify",
        "assess",
        "domain",
        "notifier",
        "alert_on_warnings",
        "reports",
        "tls_failure_threshold",
        "reports_window",
    }
    _no_unknown(data, known, "the top level")
    reports = _report_settings(data)
    interval = parse_duration(data.get("interval", DEFAULT_INTERVAL_S), "interval")
    default_notify = _strings(data.get("notify", ["stdout"]), "notify")
    notifiers = {"stdout": NotifierConfig("stdout", "stdout", max_per_hour=10**6)}
    for name, table in _table(data.get("notifier", {}), "notifier").items():
        notifiers[str(name)] = _notifier(str(name), _table(table, f"notifier.{name}"))
    domains: list[WatchedDomain] = []
    seen: set[str] = set()
    entries = data.get("domain", [])
    if not isinstance(entries, list) or not entries:
        raise WatchListError("no [[domain]] entries: nothing to watch")
    for position, entry in enumerate(entries, 1):
        where = f"domain #{position}"
        table = _table(entry, where)
        _no_unknown(table, {"name", "interval", "notify", "reports"}, where)
        try:
            name = normalise_domain(str(table.get("name", "")))
        except DomainError as exc:
            raise WatchListError(f"{where}: {exc}") from None
        if name in seen:
            raise WatchListError(f"{where}: {name} is listed twice")
        seen.add(name)
        notify = _strings(table["notify"], f"{where}.notify") if "notify" in table else default_notify
        for n in notify:
            if n not in notifiers:
                raise WatchListError(f"{where}: unknown notifier {n!r} (define [notifier.{n}])")
        watch_reports = table.get("reports", reports.enabled)
        if not isinstance(watch_reports, bool):
            raise WatchListError(f"{where}.reports must be true or false")
        domains.append(
            WatchedDomain(
                name,
                parse_duration(table.get("interval", interval), f"{where}.interval"),
                notify,
                watch_reports,
            )
        )
    expiry = data.get("expiry_days", DEFAULT_EXPIRY_DAYS)
    if not isinstance(expiry, int) or isinstance(expiry, bool) or not 0 <= expiry <= 365:
        raise WatchListError("expiry_days must be a whole number of days from 0 to 365")
    warnings = data.get("alert_on_warnings", False)
    if not isinstance(warnings, bool):
        raise WatchListError("alert_on_warnings must be true or false")
    return WatchList(
        tuple(domains),
        notifiers,
        _assess(_table(data.get("assess", {}), "assess")),
        RuleSettings(expiry, warnings),
        source,
        reports,
    )


def _report_settings(data: Mapping[str, Any]) -> ReportAlertSettings:
    enabled = data.get("reports", False)
    if not isinstance(enabled, bool):
        raise WatchListError("reports must be true or false")
    threshold = data.get("tls_failure_threshold", DEFAULT_TLS_THRESHOLD)
    if not isinstance(threshold, int | float) or isinstance(threshold, bool) or not 0 <= threshold < 1:
        raise WatchListError("tls_failure_threshold must be a share from 0 to 1 (e.g. 0.05 for 5%)")
    window = parse_duration(data.get("reports_window", DEFAULT_REPORTS_WINDOW_S), "reports_window")
    return ReportAlertSettings(enabled, float(threshold), window)


def parse_duration(value: Any, where: str) -> float:
    """`90`, `"30m"`, `"6h"`, `"1d"` in seconds; at least a minute (politeness)."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        seconds = float(value)
    elif isinstance(value, str) and (m := _DURATION.match(value)):
        seconds = float(m.group(1)) * _UNIT_S[m.group(2)]
    else:
        raise WatchListError(f'{where}: {value!r} is not a duration (e.g. 90, "30m", "6h", "1d")')
    if seconds < MIN_INTERVAL_S:
        raise WatchListError(f"{where}: at least {MIN_INTERVAL_S:.0f} seconds between assessments")
    return seconds


def _notifier(name: str, t: Mapping[str, Any]) -> NotifierConfig:
    where = f"notifier.{name}"
    kind = t.get("type")
    if kind not in NOTIFIER_TYPES:
        raise WatchListError(f"{where}.type must be one of {', '.join(NOTIFIER_TYPES)}")
    limit = t.get("max_per_hour", DEFAULT_MAX_PER_HOUR)
    if not isinstance(limit, int) or isinstance(limit, bool) or limit < 1:
        raise WatchListError(f"{where}.max_per_hour must be a whole number of at least 1")
    if kind == "email":
        _no_unknown(
            t,
            {
                "type",
                "host",
                "port",
                "from",
                "to",
                "ca_file",
                "username",
                "password_env",
                "timeout",
                "max_per_hour",
            },
            where,
        )
        recipients = _strings(t.get("to", []), f"{where}.to")
        if not t.get("host") or not t.get("from") or not recipients:
            raise WatchListError(f"{where}: an email notifier needs host, from and to")
        port = t.get("port", 587)
        if not isinstance(port, int) or not 0 < port < 65536:
            raise WatchListError(f"{where}.port must be a port number")
        if t.get("username") and not t.get("password_env"):
            raise WatchListError(f"{where}: username needs password_env (the variable holding the password)")
        return NotifierConfig(
            name,
            "email",
            limit,
            host=str(t["host"]),
            port=port,
            sender=str(t["from"]),
            recipients=recipients,
            ca_file=str(t["ca_file"]) if t.get("ca_file") else None,
            username=str(t["username"]) if t.get("username") else None,
            password_env=str(t["password_env"]) if t.get("password_env") else None,
            timeout=float(t.get("timeout", 30.0)),
        )
    if kind == "webhook":
        _no_unknown(t, {"type", "url", "secret_env", "max_per_hour", "timeout"}, where)
        url = str(t.get("url", ""))
        if not url.startswith(("http://", "https://")):
            raise WatchListError(f"{where}.url must be an http:// or https:// URL")
        secret = str(t["secret_env"]) if t.get("secret_env") else None
        return NotifierConfig(
            name, "webhook", limit, url=url, secret_env=secret, timeout=float(t.get("timeout", 10.0))
        )
    _no_unknown(t, {"type", "max_per_hour"}, where)
    return NotifierConfig(name, "stdout", limit)


def _assess(t: Mapping[str, Any]) -> AssessSettings:
    _no_unknown(
        t,
        {"resolvers", "ca_file", "dkim_selectors", "timeout", "smtp_timeout", "profile", "smtp_port"},
        "assess",
    )
    try:
        return AssessSettings(
            resolvers=_strings(t.get("resolvers", []), "assess.resolvers"),
            ca_file=str(t["ca_file"]) if t.get("ca_file") else None,
            dkim_selectors=_strings(t.get("dkim_selectors", []), "assess.dkim_selectors"),
            timeout=float(t.get("timeout", 2.0)),
            smtp_timeout=float(t.get("smtp_timeout", 10.0)),
            profile=str(t.get("profile", "mecsa")),
            smtp_port=int(t.get("smtp_port", 25)),
        )
    except (TypeError, ValueError) as exc:
        raise WatchListError(f"assess: {exc}") from None


def _table(value: Any, where: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise WatchListError(f"{where} must be a table")
    return value


def _strings(value: Any, where: str) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise WatchListError(f"{where} must be a list of strings")
    return tuple(value)


def _no_unknown(table: Mapping[str, Any], known: set[str], where: str) -> None:
    unknown = sorted(set(table) - known)
    if unknown:
        raise WatchListError(f"{where}: unknown key(s) {', '.join(unknown)}")
