"""Mail mode in the web service: the operator's configuration file (`mecsa serve --mailmode FILE`).

A TOML file, so that `mecsa serve` takes one option rather than mirroring every option of
`mecsa mailmode serve` (docs/mailmode.md has an example). Keys:

    domain = "mailmode.example"           # the test domain D (required)
    store = "/var/lib/mecsa/mailmode.sqlite3"   # the mail store (required); shared with
                                          # `mecsa mailmode serve`/`report` if those run too
    listen = "203.0.113.7:25"             # run the SMTP receiver inside `mecsa serve` (omit when a
                                          # separate `mecsa mailmode serve` shares the store)
    tls_cert = "..."  tls_key = "..."     # STARTTLS for the receiver
    dkim_key = "..."  dkim_selector = "mecsa"   # signs the probe and the auto-reply
    public_url = "https://mecsa.example"  # the auto-reply links to {public_url}/mail/{token}
    autoreply = true                      # needs dkim_key
    autoreply_interval_minutes = 60       # one auto-reply per sender per interval
    assess = true                         # assess each sender's domain (the inbound side)
    ca_file = "..."                       # trust for the probe's PKIX check and the assessment
    smtp_port = 25   smtp_timeout = 10    # where the probe connects (tests and the lab change it)
    window_minutes = 30                   # how long a trap must stay empty
    probes_per_client = 5   probes_per_recipient = 3   probe_window_s = 3600
    max_running_probes = 16               # probes in flight at once; beyond, "busy" (503)
    report_addresses = ["dmarc@example.org"]   reports_store = "..."
    dmarc_discovery = "treewalk"          # or "psl"

Relative paths are taken from the file's directory. Every problem is a `MailModeConfigError`
with a one-line message (the CLI turns it into exit 2).
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any


class MailModeConfigError(ValueError):
    """A configuration file mail mode cannot run with (one line, for the operator)."""


@dataclass(frozen=True, slots=True)
class MailModeConfig:
    """Mail mode's settings in the web service (see the module docstring)."""

    domain: str
    store: str
    listen: tuple[str, int] | None = None
    tls_cert: str | None = None
    tls_key: str | None = None
    dkim_key: str | None = None
    dkim_selector: str = "mecsa"
    public_url: str | None = None
    autoreply: bool = True
    autoreply_interval_minutes: float = 60.0
    assess: bool = True
    ca_file: str | None = None
    smtp_port: int = 25
    smtp_timeout: float = 10.0
    window_minutes: float = 30.0
    probes_per_client: int = 5
    probes_per_recipient: int = 3
    probe_window_s: float = 3600.0
    max_running_probes: int = 16
    report_addresses: tuple[str, ...] = ()
    reports_store: str | None = None
    dmarc_discovery: str = "treewalk"

    @property
    def report_url(self) -> str | None:
        """The auto-reply's link, with `{token}` (mecsa.mailmode.autoreply)."""
        return f"{self.public_url.rstrip('/')}/mail/{{token}}" if self.public_url else None


_PATHS = ("store", "tls_cert", "tls_key", "dkim_key", "ca_file", "reports_store")
_STRINGS = (*_PATHS, "domain", "dkim_selector", "public_url", "dmarc_discovery", "listen")
_NUMBERS = ("autoreply_interval_minutes", "smtp_timeout", "window_minutes", "probe_window_s")
_COUNTS = ("smtp_port", "probes_per_client", "probes_per_recipient", "max_running_probes")
_FLAGS = ("autoreply", "assess")
_KNOWN = frozenset((*_STRINGS, *_NUMBERS, *_COUNTS, *_FLAGS, "report_addresses"))


def load_mailmode_config(path: str | Path, *, public_url: str | None = None) -> MailModeConfig:
    """Read and check the file; `public_url` (the CLI's --public-url) overrides the file's."""
    file = Path(path)
    try:
        data = tomllib.loads(file.read_text("utf-8"))
    except OSError as exc:
        raise MailModeConfigError(f"--mailmode {path}: {exc.strerror or exc}") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise MailModeConfigError(f"--mailmode {path}: not TOML: {exc}") from None
    if public_url is not None:
        data["public_url"] = public_url
    return config_from_mapping(data, file.parent)


def config_from_mapping(data: dict[str, Any], base: Path) -> MailModeConfig:
    """The checked configuration of one TOML document (relative paths from `base`)."""
    unknown = sorted(set(data) - _KNOWN)
    if unknown:
        raise MailModeConfigError(f"mail mode: unknown key(s) {', '.join(unknown)}")
    for key in ("domain", "store"):
        if key not in data:
            raise MailModeConfigError(f"mail mode: the key {key!r} is required")
    values: dict[str, Any] = {}
    for key, value in data.items():
        values[key] = _checked(key, value)
    for key in _PATHS:
        if key in values:
            values[key] = str((base / Path(values[key]).expanduser()).resolve())
    values["domain"] = _domain(values["domain"])
    if "listen" in values:
        values["listen"] = _listen(values["listen"])
    if ("tls_cert" in values) != ("tls_key" in values):
        raise MailModeConfigError("mail mode: tls_cert and tls_key go together")
    url = values.get("public_url")
    if url is not None and not url.startswith(("https://", "http://")):
        raise MailModeConfigError(f"mail mode: public_url {url!r} must start with https:// or http://")
    if values.get("dmarc_discovery", "treewalk") not in ("treewalk", "psl"):
        raise MailModeConfigError("mail mode: dmarc_discovery must be treewalk or psl")
    addresses = tuple(a.strip().lower() for a in values.get("report_addresses", ()))
    if any("@" not in a for a in addresses):
        raise MailModeConfigError("mail mode: each of report_addresses must be an address")
    values["report_addresses"] = addresses
    for key in ("tls_cert", "tls_key", "dkim_key", "ca_file"):
        if key in values and not Path(values[key]).is_file():
            raise MailModeConfigError(f"mail mode: {key} {values[key]}: no such file")
    return MailModeConfig(**values)


def _checked(key: str, value: Any) -> Any:
    if key in _STRINGS and not isinstance(value, str):
        raise MailModeConfigError(f"mail mode: {key} must be a string")
    if key in _FLAGS and not isinstance(value, bool):
        raise MailModeConfigError(f"mail mode: {key} must be true or false")
    if key in _COUNTS and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
        raise MailModeConfigError(f"mail mode: {key} must be a positive integer")
    if key in _NUMBERS:
        if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
            raise MailModeConfigError(f"mail mode: {key} must be a number >= 0")
        return float(value)
    if key == "report_addresses" and (
        not isinstance(value, list) or not all(isinstance(a, str) for a in value)
    ):
        raise MailModeConfigError("mail mode: report_addresses must be a list of addresses")
    return value


def _domain(text: str) -> str:
    from mecsa.domain import DomainError, normalise_domain

    try:
        return normalise_domain(text)
    except DomainError as exc:
        raise MailModeConfigError(f"mail mode: domain {text!r}: {exc}") from None


def _listen(text: str) -> tuple[str, int]:
    """ADDR:PORT or [IPv6]:PORT (the receiver's address)."""
    import ipaddress

    host, sep, port = text.strip().rpartition(":")
    host = host.strip("[]")
    try:
        ipaddress.ip_address(host)
    except ValueError:
        raise MailModeConfigError(f"mail mode: listen {text!r}: give ADDR:PORT (203.0.113.7:25)") from None
    if not sep or not port.isdigit() or not 0 <= int(port) < 65536:
        raise MailModeConfigError(f"mail mode: listen {text!r}: bad port")
    return host, int(port)
