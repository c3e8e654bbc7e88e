"""Send mail from one of the lab's senders and follow it: sender log, TLS, delivery, the receiver's report.

One `send` for every sender of the lab: the DANE sender (sender.test, the default) and mail mode's
extra senders (`plan.SENDERS`). It submits one message, then follows each recipient in the
sender Postfix's log and, for a scenario domain, into the MX's Maildir.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import email
import email.policy
import re
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mecsa.lab.plan import HARDENED, Sender
from mecsa.lab.runner import run_in
from mecsa.lab.state import LabError, LabState

# A Postfix delivery-attempt line: "... to=<rcpt>, [orig_to=<...>,] relay=..., status=sent (detail)"
_STATUS_LINE = re.compile(r" to=<([^>]*)>,.* status=(\w+) ?\(?(.*?)\)?$")


@dataclass(frozen=True, slots=True)
class DeliveryTrace:
    """What became of one message for one recipient. `status` is Postfix's (sent, deferred,
    bounced) or "timeout"; `detail` is the text Postfix gives in parentheses after it."""

    message_id: str
    recipient: str
    status: str
    detail: str
    verified_tls: bool  # delivered over a DANE-verified TLS connection
    sender_log: tuple[str, ...]
    maildir_file: Path | None = None  # where a scenario domain's MX delivered it
    authentication_results: tuple[str, ...] = ()

    def results(self) -> dict[str, str]:
        """The method results in the delivered message's Authentication-Results: {"dkim": "pass", ...}."""
        found: dict[str, str] = {}
        for header in self.authentication_results:
            for method, result in re.findall(r"\b(spf|dkim|dmarc)=(\w+)", header):
                found.setdefault(method, result)
        return found


def send(
    state: LabState,
    to: str,
    cc: Sequence[str] = (),
    *,
    sender: Sender = HARDENED,
    subject: str = "mecsa lab test",
    timeout: float = 20.0,
) -> dict[str, DeliveryTrace]:
    """Submit one message (To `to`, Cc `cc`, envelope to all) on `sender`, DKIM-signed there.

    Waits until the sender's Postfix logged a verdict for every recipient, and for a recipient
    at a scenario domain also until the MX delivered it; returns the trace per recipient.
    """
    message_id = f"<{uuid.uuid4().hex}@{sender.domain}>"
    recipients = [to, *cc]
    headers = [f"From: Alice <{sender.from_address}>", f"To: <{to}>"]
    if cc:
        headers.append("Cc: " + ", ".join(f"<{a}>" for a in cc))
    body = ["", "Sent through the mecsa lab.", ""]
    message = "\n".join([*headers, f"Subject: {subject}", f"Message-ID: {message_id}", *body])
    config = state.directory / "hosts" / sender.host / "etc" / "postfix"
    done = run_in(
        state,
        sender.node,
        ["/usr/sbin/sendmail", "-C", str(config), "-f", sender.from_address, *recipients],
        capture=True,
        input_text=message,
        timeout=timeout,
    )
    if done.returncode != 0:
        raise LabError(f"sendmail on {sender.host} failed: {done.stderr.strip()}")
    log = state.directory / "logs" / f"{sender.host}.postfix.log"
    deadline = time.monotonic() + timeout
    status_lines = _wait_status_lines(log, message_id, recipients, deadline)
    lines = tuple(queue_lines(log, message_id))
    traces: dict[str, DeliveryTrace] = {}
    for rcpt in recipients:
        line = status_lines.get(rcpt)
        if line is None:
            traces[rcpt] = DeliveryTrace(
                message_id, rcpt, "timeout", "no delivery attempt logged", False, lines
            )
            continue
        status, detail = parse_attempt(line)
        trace = DeliveryTrace(message_id, rcpt, status, detail, verified_tls_for(log, line), lines)
        if status == "sent":
            trace = _follow_to_maildir(state, trace, deadline)
        traces[rcpt] = trace
    return traces


def _wait_status_lines(
    log: Path, message_id: str, recipients: Sequence[str], deadline: float
) -> dict[str, str]:
    """Poll the sender's log until each recipient has a delivery-attempt line, or until `deadline`."""
    while True:
        found = attempt_lines(log, message_id, recipients)
        if len(found) == len(recipients) or time.monotonic() > deadline:
            return found
        time.sleep(0.05)


def attempt_lines(log: Path, message_id: str, recipients: Sequence[str]) -> dict[str, str]:
    """The first delivery-attempt line per recipient of the message, as the sender's log has them.

    Postfix logs the recipient as submitted; the match ignores case (domains are case-blind).
    A lone recipient takes any attempt line of its message, also one whose address Postfix
    rewrote (a bare local part gets the sender's domain).
    """
    wanted = {r.lower(): r for r in recipients}
    found: dict[str, str] = {}
    for line in queue_lines(log, message_id):
        match = _STATUS_LINE.search(line)
        if match is None:
            continue
        rcpt = wanted.get(match.group(1).lower())
        if rcpt is None and len(recipients) == 1:
            rcpt = recipients[0]
        if rcpt is not None and rcpt not in found:
            found[rcpt] = line
    return found


def parse_attempt(line: str) -> tuple[str, str]:
    """(status, detail) of a delivery-attempt line: ("deferred", "Server certificate not verified")."""
    match = _STATUS_LINE.search(line)
    return (match.group(2), match.group(3)) if match else ("?", line)


def _follow_to_maildir(state: LabState, trace: DeliveryTrace, deadline: float) -> DeliveryTrace:
    """Find the message in the scenario domain's Maildir and read its Authentication-Results."""
    found = _wait_maildir(state, trace.recipient, trace.message_id, deadline)
    if found is None:
        return trace
    parsed = email.message_from_bytes(found.read_bytes(), policy=email.policy.compat32)
    results = tuple(" ".join(str(h).split()) for h in parsed.get_all("Authentication-Results", []))
    return DeliveryTrace(
        trace.message_id,
        trace.recipient,
        trace.status,
        trace.detail,
        trace.verified_tls,
        trace.sender_log,
        found,
        results,
    )


def queue_lines(log: Path, message_id: str) -> list[str]:
    """The sender log's lines about the message: found by message-id, then followed by queue id."""
    try:
        text = log.read_text(errors="replace")
    except FileNotFoundError:
        return []
    queue_id = None
    for line in text.splitlines():
        if f"message-id={message_id}" in line:
            match = re.search(r"\]: ([0-9A-F]+): message-id=", line)
            queue_id = match.group(1) if match else None
    if queue_id is None:
        return []
    return [ln for ln in text.splitlines() if f": {queue_id}: " in ln]


def verified_tls_for(log: Path, status_line: str) -> bool:
    """Whether this delivery went over a verified (DANE) TLS connection.

    One smtp process makes many deliveries, so only its log lines between its previous delivery
    and this one count: the nearest TLS line of that process must say "Verified" for the relay.
    """
    pid = re.search(r"postfix/smtp\[(\d+)\]", status_line)
    relay = re.search(r" relay=([^,]+?)(?::\d+)?,", status_line)
    if pid is None or relay is None:
        return False
    lines = log.read_text(errors="replace").splitlines()
    end = lines.index(status_line) if status_line in lines else len(lines)
    tag = f"postfix/smtp[{pid.group(1)}]: "
    for line in reversed(lines[:end]):
        if tag not in line:
            continue
        if " status=" in line:
            return False  # an earlier delivery of the same process: none for this one
        if "TLS connection established to " in line:
            return f"Verified TLS connection established to {relay.group(1)}:" in line
    return False


def _wait_maildir(state: LabState, recipient: str, message_id: str, deadline: float) -> Path | None:
    domain = recipient.rpartition("@")[2].lower()
    hosts = state.domains.get(domain, {}).get("hosts", [])
    base = state.directory / "hosts"
    maildirs: list[Path] = [base / h["hostname"] / "mail" / "Maildir" / "new" for h in hosts]
    if not maildirs:  # not a scenario domain (the mail-mode receiver): no Maildir to wait for
        return None
    needle = message_id.encode()
    while time.monotonic() < deadline:
        for directory in maildirs:
            for path in directory.glob("*") if directory.is_dir() else ():
                if needle in path.read_bytes():
                    return path
        time.sleep(0.05)
    return None


def wait_report(
    store: Path,
    token: str,
    ready: Callable[[dict[str, Any]], bool],
    *,
    window: dt.timedelta,
    timeout: float = 20.0,
) -> dict[str, Any]:
    """The mail-mode receiver's report of `token` once `ready(report)` holds (analysis runs after
    the 250). Raises `LabError` with the last report seen when it does not become ready in time.
    """
    from mecsa.mailmode.report import load_report
    from mecsa.mailmode.store import MailStore

    async def read() -> dict[str, Any] | None:
        opened = await MailStore.open(store)
        try:
            return await load_report(opened, token, window=window)
        finally:
            await opened.close()

    deadline = time.monotonic() + timeout
    while True:
        report = asyncio.run(read()) if store.exists() else None
        if report is not None and ready(report):
            return report
        if time.monotonic() > deadline:
            raise LabError(f"report {token} not ready after {timeout:g} s: {report}")
        time.sleep(0.1)
