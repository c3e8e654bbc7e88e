"""Every SMTP connection the receiver (and so each trap MX) saw, delivered or not.

An enforcing DANE sender connects to the DANE trap's MX, starts TLS, sees a certificate that
matches none of the trap's TLSA records, and quits without a MAIL command (RFC 7672 §2.2: the
connection is not authenticated, so the message must not be sent). That abort is the positive
evidence for "enforces DANE"; absence of mail over a window is only the fallback.

Which MX name the sender meant is known from the TLS SNI (Postfix sends the TLSA base domain,
the MX host name, at its `dane` level) or, when the trap hosts have addresses of their own, from
the local address the sender connected to.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

CONNECTIONS_TOKEN = "-connections-"  # the store's key for connection entries (never a token's shape)
MAX_COMMANDS = 40


@dataclass(frozen=True, slots=True)
class ConnectionAttempt:
    """One TCP connection to the receiver, from accept to close."""

    peer_ip: str
    local_ip: str
    started_at: dt.datetime
    ended_at: dt.datetime
    ehlo: str = ""
    commands: tuple[str, ...] = ()  # the verbs the client sent, in order (at most MAX_COMMANDS)
    starttls: bool = False  # the client issued STARTTLS
    tls_version: str | None = None  # the handshake completed, at this version
    sni: str | None = None
    recipients: tuple[str, ...] = ()  # RCPT TO addresses the receiver accepted
    delivered: bool = False  # a DATA transaction ended with a 250

    @property
    def aborted_after_tls(self) -> bool:
        """Started TLS, then left without trying to send: the signature of a sender that did not
        trust the certificate it was shown."""
        after = self.commands[self.commands.index("STARTTLS") + 1 :] if "STARTTLS" in self.commands else ()
        return self.starttls and not self.delivered and "MAIL" not in after

    def describe(self) -> str:
        tls = (
            f"TLS {self.tls_version}"
            if self.tls_version
            else ("STARTTLS, no handshake" if self.starttls else "no TLS")
        )
        sni = f" SNI {self.sni}" if self.sni else ""
        verbs = " ".join(self.commands) or "(nothing)"
        return (
            f"connection from {self.ehlo or '?'} [{self.peer_ip}] to {self.local_ip} at "
            f"{self.started_at:%Y-%m-%d %H:%M:%S}Z: {tls}{sni}; commands: {verbs}"
            + ("; delivered" if self.delivered else "; quit without sending")
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "peer_ip": self.peer_ip,
            "local_ip": self.local_ip,
            "started_at": self.started_at.isoformat(),
            "ended_at": self.ended_at.isoformat(),
            "ehlo": self.ehlo,
            "commands": list(self.commands),
            "starttls": self.starttls,
            "tls_version": self.tls_version,
            "sni": self.sni,
            "recipients": list(self.recipients),
            "delivered": self.delivered,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ConnectionAttempt:
        return cls(
            str(data["peer_ip"]),
            str(data.get("local_ip", "")),
            dt.datetime.fromisoformat(data["started_at"]),
            dt.datetime.fromisoformat(data["ended_at"]),
            str(data.get("ehlo", "")),
            tuple(data.get("commands", ())),
            bool(data.get("starttls")),
            data.get("tls_version"),
            data.get("sni"),
            tuple(data.get("recipients", ())),
            bool(data.get("delivered")),
        )


@dataclass
class ConnectionLog:
    """The mutable record one SMTP protocol instance keeps while its connection lives."""

    peer_ip: str
    local_ip: str
    started_at: dt.datetime = field(default_factory=lambda: dt.datetime.now(dt.UTC))
    ehlo: str = ""
    commands: list[str] = field(default_factory=list)
    starttls: bool = False
    tls_version: str | None = None
    sni: str | None = None
    recipients: list[str] = field(default_factory=list)
    delivered: bool = False

    def command(self, verb: str) -> None:
        if len(self.commands) < MAX_COMMANDS:
            self.commands.append(verb)

    def close(self) -> ConnectionAttempt:
        return ConnectionAttempt(
            self.peer_ip,
            self.local_ip,
            self.started_at,
            dt.datetime.now(dt.UTC),
            self.ehlo,
            tuple(self.commands),
            self.starttls,
            self.tls_version,
            self.sni,
            tuple(self.recipients),
            self.delivered,
        )


def aimed_at(attempt: ConnectionAttempt, host: str, addresses: frozenset[str] = frozenset()) -> bool:
    """True when the connection was meant for MX `host`: by SNI, or by a trap-only local address."""
    if attempt.sni is not None:
        return attempt.sni.lower().rstrip(".") == host
    return attempt.local_ip in addresses
