"""What an operator tunes about the service (`mecsa serve` options), in one frozen record."""

from __future__ import annotations

from dataclasses import dataclass, field

from mecsa.observe import AssessOptions
from mecsa.web.mailmode_config import MailModeConfig


@dataclass(frozen=True, slots=True)
class ServiceSettings:
    """The service's configuration. The defaults suit a small public instance."""

    store_url: str | None = None  # None: $MECSA_STORE, else the default SQLite file
    resolvers: tuple[str, ...] = ()  # IP[:PORT]; empty: the system's
    dns_timeout: float = 2.0
    profile: str = "mecsa"
    assess_options: AssessOptions = field(default_factory=AssessOptions)
    # Refuse targets whose hosts resolve to private, loopback or link-local addresses (guard.py).
    allow_private: bool = False
    # A domain assessed within this many minutes gets the stored result, unless an authenticated
    # client forces a fresh one.
    fresh_minutes: float = 10.0
    # New assessments per client IP: at most `client_assessments` per `client_window_s` seconds.
    client_assessments: int = 10
    client_window_s: float = 600.0
    # Assessments running at once, and waiting for a slot; beyond both the service says it is busy.
    max_running: int = 4
    # Worker processes the assessments run in (web/pool.py); 0: min(4, the CPUs).
    assess_workers: int = 0
    max_waiting: int = 16
    max_body_bytes: int = 1_000_000  # any request body (an uploaded scan list is the largest)
    max_scan_domains: int = 10_000
    # Behind a reverse proxy: take the client address and scheme from X-Forwarded-For/-Proto.
    behind_proxy: bool = False
    # How long a finished job's progress stays readable (its report is stored for good).
    job_keep_s: float = 3600.0
    # A watch list (TOML): the service runs the monitor in-process (web/monitor_runner.py).
    watchlist: str | None = None
    # Mail mode (`--mailmode FILE`): the address flow on the home page, its receiver, its limits.
    mailmode: MailModeConfig | None = None
