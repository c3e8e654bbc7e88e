"""Send a message from the lab's DANE sender and follow it: log, TLS, delivery, Authentication-Results."""

from __future__ import annotations

import email
import email.policy
import re
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

from mecsa.lab.plan import SENDER_DOMAIN, SENDER_HOST
from mecsa.lab.runner import SENDER_NODE, run_in
from mecsa.lab.state import LabError, LabState

FROM_ADDRESS = f"alice@{SENDER_DOMAIN}"


@dataclass(frozen=True, slots=True)
class Delivery:
    """What became of one message. `status` is Postfix's (sent, deferred, bounced) or "timeout"."""

    message_id: str
    recipient: str
    status: str
    detail: str
    verified_tls: bool
    sender_log: tuple[str, ...]
    maildir_file: Path | None = None
    authentication_results: tuple[str, ...] = ()

    def results(self) -> dict[str, str]:
        """The method results in the delivered message's Authentication-Results: {"dkim": "pass", ...}."""
        found: dict[str, str] = {}
        for header in self.authentication_results:
            for method, result in re.findall(r"\b(spf|dkim|dmarc)=(\w+)", header):
                found.setdefault(method, result)
        return found


def send(
    state: LabState, recipient: str, *, subject: str = "mecsa lab test", timeout: float = 20.0
) -> Delivery:
    """Submit a message on the sender (DKIM-signed there), wait for Postfix's verdict, then for delivery."""
    message_id = f"<{uuid.uuid4().hex}@{SENDER_DOMAIN}>"
    message = (
        f"From: Alice <{FROM_ADDRESS}>\nTo: <{recipient}>\nSubject: {subject}\n"
        f"Message-ID: {message_id}\n\nSent through the mecsa lab.\n"
    )
    config = state.directory / "hosts" / SENDER_HOST / "etc" / "postfix"
    done = run_in(
        state,
        SENDER_NODE,
        ["/usr/sbin/sendmail", "-C", str(config), "-f", FROM_ADDRESS, recipient],
        capture=True,
        input_text=message,
        timeout=timeout,
    )
    if done.returncode != 0:
        raise LabError(f"sendmail failed: {done.stderr.strip()}")
    log = state.directory / "logs" / f"{SENDER_HOST}.postfix.log"
    deadline = time.monotonic() + timeout
    while True:
        lines = queue_lines(log, message_id)
        status_line = next((ln for ln in lines if " status=" in ln), None)
        if status_line is not None or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    if status_line is None:
        return Delivery(message_id, recipient, "timeout", "no delivery attempt logged", False, tuple(lines))
    status = re.search(r" status=(\w+)", status_line)
    verified = verified_tls_for(log, status_line)
    delivery = Delivery(
        message_id,
        recipient,
        status.group(1) if status else "?",
        status_line.split(" status=")[-1],
        verified,
        tuple(lines),
    )
    if delivery.status != "sent":
        return delivery
    found = _wait_maildir(state, recipient, message_id, deadline)
    if found is None:
        return delivery
    parsed = email.message_from_bytes(found.read_bytes(), policy=email.policy.compat32)
    results = tuple(" ".join(str(h).split()) for h in parsed.get_all("Authentication-Results", []))
    return Delivery(
        delivery.message_id, recipient, "sent", delivery.detail, verified, delivery.sender_log, found, results
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
    needle = message_id.encode()
    while time.monotonic() < deadline:
        for directory in maildirs:
            for path in directory.glob("*") if directory.is_dir() else ():
                if needle in path.read_bytes():
                    return path
        time.sleep(0.05)
    return None
