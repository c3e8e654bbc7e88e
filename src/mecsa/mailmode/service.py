"""The typed entry point the web service (and any other face) calls for mail mode.

    service = MailModeService(store, client, "mailmode.example")
    started = await service.start_probe("alice@example.org")   # returns at once; the probe runs
    state = await service.state(started.token)                 # poll (or stream) the live state
    report = await service.report(started.token)               # the provider report (JSON-able)
    page = service.report_html(report)                         # the same page `mailmode report --html` writes

`start_probe` validates the address (`ProbeRequestError`, a one-line message, on bad input), makes
a token, and sends the probe in the background; its result is stored under the token (kind
"probe") like `mecsa mailmode probe` stores it. The receiver (`mecsa mailmode serve`) must run for
the test domain and share the store: it records the reply, analyses it and assesses the domain.

`state` reads only the store, so any number of web workers can poll it.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import Any

from mecsa.dns.resolver import DnsClient
from mecsa.mailmode.addresses import AddressKind, control_address, new_token, trap_address
from mecsa.mailmode.enforcement import DEFAULT_WINDOW
from mecsa.mailmode.report import build_report, connection_log, load_report, render_html
from mecsa.mailmode.signing import DkimSigner
from mecsa.mailmode.store import MailStore


class ProbeRequestError(ValueError):
    """An address the probe cannot be sent to (the message is one line, for the user)."""


class Stage(StrEnum):
    """Where one test stands, in the order a user lives it."""

    PROBING = "probing"  # the probe is being sent to the user's MX
    PROBE_FAILED = "probe_failed"  # no MX took it: the reason is in `probe`
    WAITING_FOR_REPLY = "waiting_for_reply"  # the probe landed: the user should reply to all
    ANALYSING = "analysing"  # the reply arrived; analysis or the domain assessment is running
    REPORT_READY = "report_ready"  # analysed and assessed; traps may still be pending


@dataclass(frozen=True, slots=True)
class ProbeStarted:
    token: str
    recipient: str
    reply_to: tuple[str, ...]  # the control address and both traps: what the user replies to


@dataclass(frozen=True, slots=True)
class LiveState:
    """What a live page shows for one token."""

    token: str
    stage: Stage
    probe: str  # the probe's outcome in plain words
    reply_to: tuple[str, ...]
    messages: int
    enforcement: dict[str, str] = field(default_factory=dict)  # trap -> label
    pending: tuple[str, ...] = ()
    levels: dict[str, dict[str, int]] = field(default_factory=dict)  # profile -> area -> level
    recipient: str | None = None  # the address the probe went to (None: a test started by mail)

    def to_json(self) -> dict[str, Any]:
        return {
            "token": self.token,
            "recipient": self.recipient,
            "stage": self.stage.value,
            "probe": self.probe,
            "reply_to": list(self.reply_to),
            "messages": self.messages,
            "enforcement": self.enforcement,
            "pending": list(self.pending),
            "levels": self.levels,
        }


def validate_address(address: str) -> tuple[str, str]:
    """(address, domain) for a plausible mailbox address, else `ProbeRequestError`."""
    from mecsa.domain import DomainError, normalise_domain

    text = address.strip()
    local, at, domain = text.rpartition("@")
    if not at or not local or any(c.isspace() or c in '<>"\\' for c in text):
        raise ProbeRequestError(f"{address!r} is not an e-mail address")
    try:
        return text, normalise_domain(domain)
    except DomainError as exc:
        raise ProbeRequestError(f"{address!r}: {exc}") from exc


class MailModeService:
    """Mail mode for a web service or any other face (see the module docstring)."""

    def __init__(
        self,
        store: MailStore,
        client: DnsClient,
        test_domain: str,
        *,
        signer: DkimSigner | None = None,
        smtp_port: int = 25,
        smtp_timeout: float = 10.0,
        ca_file: str | None = None,
        window: dt.timedelta = DEFAULT_WINDOW,
    ) -> None:
        self.store = store
        self.client = client
        self.test_domain = test_domain
        self.signer = signer
        self.smtp_port = smtp_port
        self.smtp_timeout = smtp_timeout
        self.ca_file = ca_file
        self.window = window
        self._tasks: set[asyncio.Task[None]] = set()

    def reply_to(self, token: str) -> tuple[str, ...]:
        d = self.test_domain
        return (
            control_address(token, d),
            trap_address(token, d, AddressKind.DANE_TRAP),
            trap_address(token, d, AddressKind.STS_TRAP),
        )

    async def start_probe(self, address: str, *, client: DnsClient | None = None) -> ProbeStarted:
        """Validate `address`, make a token, and send the probe in the background.

        `client`: this probe's DNS client instead of the service's (the web service passes a
        guard that withholds internal addresses; when it has a `refusal()` to tell, the probe
        is recorded as refused with that sentence, not as an unreachable MX).
        """
        recipient, _ = validate_address(address)
        token = new_token()
        await self.store.add(
            token, "request", {"recipient": recipient, "reply_to": list(self.reply_to(token))}
        )
        task = asyncio.ensure_future(self._probe(token, recipient, client or self.client))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return ProbeStarted(token, recipient, self.reply_to(token))

    async def _probe(self, token: str, recipient: str, client: DnsClient) -> None:
        from mecsa.mailmode.probe import run_probe

        try:
            result = await run_probe(
                recipient,
                self.test_domain,
                token,
                client,
                port=self.smtp_port,
                smtp_timeout=self.smtp_timeout,
                ca_file=self.ca_file,
                signer=self.signer,
            )
            refusal = getattr(client, "refusal", None)
            refused = refusal() if callable(refusal) else None
            if refused:
                await self.store.add(token, "error", {"stage": "probe", "error": str(refused)})
                return
            await self.store.add(token, "probe", result.to_json())
        except Exception as exc:  # recorded: the live page says why instead of waiting forever
            await self.store.add(token, "error", {"stage": "probe", "error": f"{type(exc).__name__}: {exc}"})

    @property
    def running(self) -> int:
        """Probes started here and not finished yet."""
        return len(self._tasks)

    async def drain(self) -> None:
        """Wait for the probes started here (tests, shutdown)."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    async def state(self, token: str, now: dt.datetime | None = None) -> LiveState | None:
        """The live state of `token`, or None when the store knows nothing of it."""
        entries = await self.store.entries(token)
        if not entries:
            return None
        log = await connection_log(self.store, entries[0].created_at - self.window)
        report = build_report(token, entries, now or dt.datetime.now(dt.UTC), self.window, log)
        state = live_state(
            token, report, entries_kinds=[e.kind for e in entries], reply_to=self.reply_to(token)
        )
        asked = next((e.data.get("recipient") for e in entries if e.kind == "request"), None)
        return replace(state, recipient=asked or (report.get("inbound") or {}).get("recipient"))

    async def report(self, token: str) -> dict[str, Any] | None:
        """The provider report of `token` (JSON-able), or None."""
        return await load_report(self.store, token, window=self.window)

    @staticmethod
    def report_html(report: dict[str, Any]) -> str:
        """The report page (self-contained, escaped, no script)."""
        return render_html(report)


def live_state(
    token: str, report: dict[str, Any], *, entries_kinds: list[str], reply_to: tuple[str, ...]
) -> LiveState:
    """The stage and the summary lines of one token's report (pure)."""
    probe = report.get("inbound")
    probe_errors = [e for e in report.get("errors", []) if e.get("stage") == "probe"]
    if probe is None and probe_errors:
        stage, said = Stage.PROBE_FAILED, f"the probe could not be sent: {probe_errors[-1]['error']}"
    elif probe is None and "request" not in entries_kinds and "probe" not in entries_kinds:
        # started by the user's own mail to the test address: there is no probe to wait for
        stage, said = Stage.WAITING_FOR_REPLY, "no probe for this test: it started with your message"
    elif probe is None:
        stage, said = Stage.PROBING, "sending the probe to your provider"
    elif not probe["delivered"]:
        stage = Stage.PROBE_FAILED
        explained = [a["delivery"]["explanation"] for a in probe.get("attempts", []) if a.get("delivery")]
        said = probe.get("mx_error") or (explained[-1] if explained else "no MX host could be reached")
    else:
        stage, said = Stage.WAITING_FOR_REPLY, "the probe reached your provider: reply to it, to all"
    messages = [
        m for m in report["messages"] if any(r["kind"] in ("control", "fixed") for r in m["recipients"])
    ]
    if messages:
        analysed = any(m.get("analysis") for m in messages)
        assessed = "assessment" in entries_kinds
        stage = Stage.REPORT_READY if analysed and assessed else Stage.ANALYSING
    provider = report.get("provider") or {}
    levels = {name: g["levels"] for name, g in (provider.get("profiles") or {}).items()}
    pending = tuple(e["pending"] for e in report["enforcement"] if e.get("pending"))
    return LiveState(
        token,
        stage,
        said,
        reply_to,
        len(messages),
        {e["trap"]: e["label"] for e in report["enforcement"]},
        pending,
        levels if stage is Stage.REPORT_READY else {},
    )
