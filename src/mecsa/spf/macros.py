"""SPF macro expansion (RFC 7208 §7.2-§7.4): pure, given the values of the macro letters.

The `p` macro needs DNS (a validated PTR name); the evaluator looks it up first, only when a
macro string uses it, and passes the result in `MacroContext.validated_name`.
"""

from __future__ import annotations

import ipaddress
import re
import time
from dataclasses import dataclass, field, replace
from urllib.parse import quote

from mecsa.spf.parser import MacroExpand, MacroLiteral, MacroString

IpAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
MAX_DOMAIN_LENGTH = 253


@dataclass(frozen=True, slots=True)
class MacroContext:
    """The values macros expand to, for one check_host() call."""

    ip: IpAddress
    sender: str
    domain: str
    helo: str = ""
    validated_name: str = "unknown"
    receiver: str = "unknown"
    timestamp: int = field(default_factory=lambda: int(time.time()))

    @property
    def local_part(self) -> str:
        local, at, _ = self.sender.rpartition("@")
        return local if at and local else "postmaster"

    @property
    def sender_domain(self) -> str:
        return self.sender.rpartition("@")[2]

    def with_domain(self, domain: str) -> MacroContext:
        return replace(self, domain=domain)


def reverse_name(ip: IpAddress) -> str:
    """The in-addr.arpa / ip6.arpa name of an address, without the final dot."""
    return ip.reverse_pointer


def dotted_ip(ip: IpAddress) -> str:
    """The `i` macro: dotted quad for IPv4, dot-separated lower-case nibbles for IPv6 (RFC 7208 §7.3)."""
    if isinstance(ip, ipaddress.IPv4Address):
        return str(ip)
    return ".".join(ip.exploded.replace(":", ""))


def _letter_value(letter: str, ctx: MacroContext) -> str:
    match letter:
        case "s":
            return f"{ctx.local_part}@{ctx.sender_domain}"
        case "l":
            return ctx.local_part
        case "o":
            return ctx.sender_domain
        case "d":
            return ctx.domain
        case "i":
            return dotted_ip(ctx.ip)
        case "p":
            return ctx.validated_name
        case "v":
            return "in-addr" if isinstance(ctx.ip, ipaddress.IPv4Address) else "ip6"
        case "h":
            return ctx.helo
        case "c":
            return str(ctx.ip)  # RFC 5952 text for IPv6 ("cafe:babe::1"), as §7.3 asks for `c`
        case "r":
            return ctx.receiver
        case "t":
            return str(ctx.timestamp)
    raise ValueError(f"unknown macro letter {letter!r}")  # the parser admits only the letters above


def expand_macro(macro: MacroExpand, ctx: MacroContext) -> str:
    """One `%{...}`: split on the delimiters, maybe reverse, keep the rightmost N parts, join with dots."""
    value = _letter_value(macro.letter, ctx)
    delimiters = macro.delimiters or "."
    parts = re.split("[" + re.escape(delimiters) + "]", value)
    if macro.reverse:
        parts.reverse()
    if macro.digits is not None and macro.digits < len(parts):
        parts = parts[-macro.digits :]
    text = ".".join(parts)
    # Upper-case macro letters are URL-escaped: every octet outside the unreserved set (§7.3).
    return quote(text, safe="-._~") if macro.url_escape else text


def expand(macro_string: MacroString, ctx: MacroContext) -> str:
    """Expand a macro string (explanations too) to text."""
    out: list[str] = []
    for part in macro_string.parts:
        out.append(part.text if isinstance(part, MacroLiteral) else expand_macro(part, ctx))
    return "".join(out)


def expand_domain(macro_string: MacroString, ctx: MacroContext) -> str:
    """Expand a domain-spec to a name to query: no trailing dot, left labels cut to fit 253 octets (§7.3)."""
    name = expand(macro_string, ctx).removesuffix(".")
    while len(name) > MAX_DOMAIN_LENGTH and "." in name:
        name = name.split(".", 1)[1]
    return name
