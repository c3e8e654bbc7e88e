"""A resolver to ask, as the command line and the configuration files name one (`IP[:PORT]`).

Apart from `mecsa.dns.resolver` so that the CLI can read `--resolver` before dnspython is imported:
its first questions go out then (`mecsa.dns.presend`).
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass


class ResolverConfigError(ValueError):
    """A resolver specification could not be used."""


@dataclass(frozen=True, slots=True)
class Nameserver:
    """A resolver to ask: an address and a port."""

    host: str
    port: int = 53

    def __str__(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"


def parse_nameserver(spec: str) -> Nameserver:
    """Parse `IP`, `IP:PORT`, `[IPv6]` or `[IPv6]:PORT`."""
    text = spec.strip()
    host, port = text, 53
    if text.startswith("["):
        end = text.find("]")
        if end < 0:
            raise ResolverConfigError(f"bad resolver {spec!r}: missing ']'")
        host, rest = text[1:end], text[end + 1 :]
        if rest:
            if not rest.startswith(":"):
                raise ResolverConfigError(f"bad resolver {spec!r}")
            port = _parse_port(spec, rest[1:])
    elif text.count(":") == 1:
        host, port_text = text.split(":")
        port = _parse_port(spec, port_text)
    try:
        ipaddress.ip_address(host)
    except ValueError:
        raise ResolverConfigError(f"bad resolver {spec!r}: not an IP address") from None
    return Nameserver(host, port)


def _parse_port(spec: str, text: str) -> int:
    if not text.isdigit() or not 0 < int(text) < 65536:
        raise ResolverConfigError(f"bad resolver {spec!r}: bad port")
    return int(text)
