"""Checking and normalising the domain names users type."""

from __future__ import annotations

import ipaddress
import re

_LABEL = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)$")


class DomainError(ValueError):
    """A name that cannot be assessed; the message is fit for a one-line CLI error."""


def normalise_domain(text: str) -> str:
    """Return the A-label form of a mail domain, lower case, without the trailing dot.

    Accepts IDNs (converted with IDNA 2008 where the `idna` package is present, else IDNA 2003).
    Rejects empty names, IP literals, labels that are empty, too long or not letter-digit-hyphen,
    and names over 253 octets.
    """
    name = text.strip()
    if not name:
        raise DomainError("the domain is empty")
    if name.startswith("[") or _is_ip(name):
        raise DomainError(f"{text!r} is an IP address, not a domain name")
    name = name.removesuffix(".")
    if not name or ("." not in name and len(name) > 63):
        raise DomainError(f"{text!r} is not a valid domain name")
    try:
        ascii_name = _to_ascii(name)
    except UnicodeError as exc:
        raise DomainError(f"{text!r} is not a valid internationalised domain name: {exc}") from None
    if len(ascii_name) > 253:
        raise DomainError(f"{text!r} is too long: {len(ascii_name)} octets, at most 253")
    labels = ascii_name.split(".")
    for label in labels:
        if not label:
            raise DomainError(f"{text!r} has an empty label")
        if len(label) > 63:
            raise DomainError(f"{text!r} has a label longer than 63 octets")
        if not _LABEL.match(label):
            raise DomainError(
                f"{text!r} has an invalid label {label!r} (letters, digits and inner hyphens only)"
            )
    if labels[-1].isdigit():
        raise DomainError(f"{text!r} ends in an all-numeric label")
    return ascii_name


def _is_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text.removesuffix("."))
    except ValueError:
        return False
    return True


def _to_ascii(name: str) -> str:
    if name.isascii():
        return name.lower()
    try:
        import idna

        return str(idna.encode(name, uts46=True).decode("ascii")).lower()
    except ImportError:  # pragma: no cover - idna ships with httpx
        return name.encode("idna").decode("ascii").lower()
