"""The receiver's test addresses, and how a recipient is classified.

For a receiver of test domain `D`:

==============================  ============================================================
address                         meaning
==============================  ============================================================
``<token>@D``                   the control address of one test; the reply joins report <token>
``test@D``, ``check@D``         fixed addresses: each message starts a new report (new token)
``postmaster@D``                accepted as RFC 5321 §4.5.1 requires; treated as a fixed address
``<token>@dane-trap.D``         the DANE trap: its MX has a TLSA record that never matches
``<token>@sts-trap.D``          the MTA-STS trap: its enforce policy does not list its MX
==============================  ============================================================

A token is 8 to 40 characters of ``a-z0-9`` (``new_token`` makes 16 base32 characters).
Anything else in `D` or a trap domain is an unknown user (550 5.1.1); any other domain is
relaying (550 5.7.1). Local parts are compared case-insensitively.
"""

from __future__ import annotations

import base64
import re
import secrets
from dataclasses import dataclass
from enum import StrEnum

DANE_TRAP_LABEL = "dane-trap"
STS_TRAP_LABEL = "sts-trap"
FIXED_LOCAL_PARTS = frozenset({"test", "check", "postmaster"})
_TOKEN = re.compile(r"[a-z0-9]{8,40}")


class AddressKind(StrEnum):
    """What a recipient address is to the receiver."""

    CONTROL = "control"  # <token>@D
    FIXED = "fixed"  # test@D and friends: a new token per message
    DANE_TRAP = "dane_trap"
    STS_TRAP = "sts_trap"
    UNKNOWN_USER = "unknown_user"  # our domain, not one of our addresses
    RELAY = "relay"  # not our domain at all


@dataclass(frozen=True, slots=True)
class Recipient:
    """One classified recipient; `token` is set for control and trap addresses."""

    address: str
    kind: AddressKind
    token: str | None = None

    @property
    def accepted(self) -> bool:
        return self.kind not in (AddressKind.UNKNOWN_USER, AddressKind.RELAY)


def new_token() -> str:
    """A fresh report token: 80 random bits as 16 lower-case base32 characters."""
    return base64.b32encode(secrets.token_bytes(10)).decode("ascii").lower()


def is_token(text: str) -> bool:
    """True when `text` has the shape of a report token."""
    return _TOKEN.fullmatch(text) is not None


def control_address(token: str, domain: str) -> str:
    return f"{token}@{domain}"


def trap_address(token: str, domain: str, kind: AddressKind) -> str:
    """The DANE or MTA-STS trap address of `token` under test domain `domain`."""
    label = {AddressKind.DANE_TRAP: DANE_TRAP_LABEL, AddressKind.STS_TRAP: STS_TRAP_LABEL}[kind]
    return f"{token}@{label}.{domain}"


def classify(address: str, domain: str) -> Recipient:
    """Classify one RCPT TO address for the receiver of `domain` (an A-label, lower case)."""
    text = address.strip().strip("<>")
    local, at, host = text.rpartition("@")
    host = host.lower().rstrip(".")
    local = local.lower()
    # Quoted local parts and source routes are never ours; they are unknown users in our domains.
    traps = {
        f"{DANE_TRAP_LABEL}.{domain}": AddressKind.DANE_TRAP,
        f"{STS_TRAP_LABEL}.{domain}": AddressKind.STS_TRAP,
    }
    if not at or (host != domain and host not in traps):
        return Recipient(text, AddressKind.RELAY)
    if host == domain:
        if local in FIXED_LOCAL_PARTS:
            return Recipient(text, AddressKind.FIXED)
        if is_token(local):
            return Recipient(text, AddressKind.CONTROL, local)
        return Recipient(text, AddressKind.UNKNOWN_USER)
    if is_token(local):
        return Recipient(text, traps[host], local)
    return Recipient(text, AddressKind.UNKNOWN_USER)
