"""The validating resolver outbound DANE needs: a local Unbound, or instructions for an existing one.

Postfix trusts TLSA records only when its resolver sets the AD bit (`smtp_dns_support_level =
dnssec`), so the resolver must validate and be local (an AD bit from afar could be forged on the
way). glibc 2.31+ also clears the AD bit unless resolv.conf says `options trust-ad`.
"""

from __future__ import annotations

from mecsa.harden.layout import Layout
from mecsa.harden.settings import HardenSettings


def unbound_conf() -> str:
    """A drop-in for /etc/unbound/unbound.conf.d (Debian's main file includes that directory).

    Validation itself is on through Debian's root-auto-trust-anchor-file.conf; this adds a
    loopback-only listener and refuses answers stripped of their signatures.
    """
    return (
        "# Written by `mecsa harden`: a local validating resolver for Postfix's outbound DANE.\n"
        "# The root trust anchor comes from root-auto-trust-anchor-file.conf (package default).\n"
        "server:\n"
        "    interface: 127.0.0.1\n"
        "    access-control: 127.0.0.0/8 allow\n"
        "    harden-dnssec-stripped: yes\n"
        "    harden-below-nxdomain: yes\n"
        "    qname-minimisation: yes\n"
    )


def files(settings: HardenSettings, layout: Layout) -> dict[str, str]:
    """The resolver files to write: the drop-in, or nothing when a validating resolver exists."""
    return {str(layout.unbound_conf): unbound_conf()} if settings.resolver == "unbound" else {}


def instructions(settings: HardenSettings) -> str:
    """What the administrator must do by hand (resolv.conf belongs to the system, not to mecsa)."""
    lines = ["Outbound DANE needs a local validating resolver:"]
    if settings.resolver == "unbound":
        lines.append("  - start Unbound with the drop-in written here: systemctl enable --now unbound")
    else:
        lines.append("  - check that the existing resolver validates: `dig +dnssec . SOA` shows the ad flag,")
        lines.append("    and `dig dnssec-failed.org` answers SERVFAIL")
    lines += [
        "  - /etc/resolv.conf: `nameserver 127.0.0.1` and `options trust-ad` (glibc 2.31+ drops the",
        "    AD bit without it); Postfix copies resolv.conf into its chroot when it starts",
        "  - then: postfix reload",
    ]
    return "\n".join(lines) + "\n"
