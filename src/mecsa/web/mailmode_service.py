"""Mail mode inside `mecsa serve`: the probe sender, the SMTP receiver beside it, the abuse controls.

`WebMailMode.start(config, settings)` opens the mail store, makes the test domain's DKIM signer,
starts the receiver when the configuration has `listen` (otherwise a separate `mecsa mailmode
serve` shares the store), and wraps `mecsa.mailmode.service.MailModeService` for the routes
(`mecsa.web.mailmode_pages`).

Abuse controls, before any mail leaves:
- probes per client IP and per recipient address, each a sliding window (`web/limits.py`): a
  stranger cannot make the service mail someone over and over; and at most
  `max_running_probes` in flight at once, whoever asks;
- the probe's DNS goes through `GuardedClient` unless --allow-private: an MX whose address is
  private, loopback or link-local is never connected to, and the page says why.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass
from typing import Any

from mecsa.dns.resolver import DnsClient, parse_nameserver
from mecsa.mailmode.service import LiveState, MailModeService, ProbeStarted, validate_address
from mecsa.mailmode.store import MailStore
from mecsa.web.limits import SlidingWindow
from mecsa.web.mailmode_config import MailModeConfig, MailModeConfigError
from mecsa.web.settings import ServiceSettings

log = logging.getLogger("mecsa.web.mailmode")


class ProbesBusy(Exception):
    """As many probes are in flight as the configuration allows."""


class ProbeRateLimited(Exception):
    """Too many probes from this client, or to this address; `retry_after` seconds until the next."""

    def __init__(self, what: str, retry_after: float) -> None:
        super().__init__(f"too many tests {what}; retry in {retry_after:.0f} s")
        self.retry_after = retry_after


@dataclass(frozen=True, slots=True)
class ProbeLimits:
    """The two sliding windows: per client IP and per (lower-cased) recipient address."""

    per_client: SlidingWindow
    per_recipient: SlidingWindow

    def check(self, client: str, recipient: str) -> None:
        """Raise `ProbeRateLimited` when either is exhausted; otherwise count this probe in both."""
        key = recipient.lower()
        for window, k, what in (
            (self.per_client, client, "from your address"),
            (self.per_recipient, key, "to this e-mail address"),
        ):
            wait = window.retry_after(k)
            if wait > 0:
                raise ProbeRateLimited(what, wait)
        self.per_client.hit(client)
        self.per_recipient.hit(key)


class WebMailMode:
    """Mail mode's state in one service process (kept on `app.state.mailmode`)."""

    def __init__(
        self,
        config: MailModeConfig,
        settings: ServiceSettings,
        store: MailStore,
        client: DnsClient,
        service: MailModeService,
        receiver: Any = None,
        reports: Any = None,
    ) -> None:
        self.config = config
        self.settings = settings
        self.store = store
        self.client = client
        self.service = service
        self.receiver = receiver
        self.reports = reports
        window = config.probe_window_s
        self.limits = ProbeLimits(
            SlidingWindow(config.probes_per_client, window),
            SlidingWindow(config.probes_per_recipient, window),
        )

    @classmethod
    async def start(cls, config: MailModeConfig, settings: ServiceSettings) -> WebMailMode:
        """Open the store, make the signer, start the receiver (with `listen`)."""
        from mecsa.mailmode.signing import DkimSigner, SignerError

        signer = None
        if config.dkim_key is not None:
            try:
                signer = DkimSigner.from_file(config.domain, config.dkim_selector, config.dkim_key)
            except SignerError as exc:
                raise MailModeConfigError(f"mail mode: dkim_key {exc}") from None
        servers = [parse_nameserver(r) for r in settings.resolvers]
        client = DnsClient(servers or None, timeout=settings.dns_timeout)
        store = await MailStore.open(config.store)
        service = MailModeService(
            store,
            client,
            config.domain,
            signer=signer,
            smtp_port=config.smtp_port,
            smtp_timeout=config.smtp_timeout,
            ca_file=config.ca_file,
            window=dt.timedelta(minutes=config.window_minutes),
        )
        receiver = reports = None
        try:
            if config.listen is not None:
                receiver, reports = await _start_receiver(config, store, client, signer)
        except BaseException:
            await store.close()
            raise
        return cls(config, settings, store, client, service, receiver, reports)

    async def close(self) -> None:
        if self.receiver is not None:
            await self.receiver.stop()
        await self.service.drain()
        await self.store.close()
        if self.reports is not None:
            self.reports.close()

    async def start_probe(self, address: str, client_key: str) -> ProbeStarted:
        """Check the address and the limits, then send the probe (in the background).

        `ProbeRequestError` for a bad address, `ProbeRateLimited` past a limit, `ProbesBusy` when
        `max_running_probes` are in flight (checked first: a busy service counts no probe).
        """
        recipient, _ = validate_address(address)
        if self.service.running >= self.config.max_running_probes:
            raise ProbesBusy("the service is sending as many test messages as it may: try again in a minute")
        self.limits.check(client_key, recipient)
        client: DnsClient = self.client
        if not self.settings.allow_private:
            from mecsa.web.guard import GuardedClient

            client = GuardedClient(self.client)  # one per probe: its refusal names this probe's hosts
        return await self.service.start_probe(recipient, client=client)

    async def state(self, token: str) -> LiveState | None:
        return await self.service.state(token)

    async def report(self, token: str) -> dict[str, Any] | None:
        return await self.service.report(token)


async def _start_receiver(
    config: MailModeConfig, store: MailStore, client: DnsClient, signer: Any
) -> tuple[Any, Any]:
    """The SMTP receiver of `mecsa mailmode serve`, in this process (and the report store it feeds)."""
    from mecsa.mailmode.autoreply import AutoReplySettings
    from mecsa.mailmode.receiver import Receiver, ReceiverSettings, server_tls_context
    from mecsa.observe import AssessOptions
    from mecsa.observe.dmarc import DiscoveryMethod

    assert config.listen is not None
    host, port = config.listen
    auto = None
    if signer is not None and config.autoreply:
        auto = AutoReplySettings(
            signer,
            config.report_url,
            min_interval=dt.timedelta(minutes=config.autoreply_interval_minutes),
            port=config.smtp_port,
        )
    settings = ReceiverSettings(
        config.domain,
        host,
        port,
        assess_sender=config.assess,
        autoreply=auto,
        report_addresses=frozenset(config.report_addresses),
        dmarc_discovery=DiscoveryMethod(config.dmarc_discovery),
        assess_options=AssessOptions(ca_file=config.ca_file),
    )
    tls = server_tls_context(config.tls_cert, config.tls_key) if config.tls_cert and config.tls_key else None
    handler = reports = None
    if config.report_addresses:
        from mecsa.reports.receive import report_handler
        from mecsa.reports.storage import ReportStore

        reports = ReportStore.open(config.reports_store)
        handler = report_handler(reports)
    receiver = await Receiver(settings, store, client, tls, handler).start()
    log.info("mail mode: receiving for %s on %s:%s", config.domain, host, receiver.port)
    return receiver, reports
