"""OpenDMARC: opendmarc.conf, the hosts it ignores, and /etc/default/opendmarc.

`SPFSelfValidate true` and `SPFIgnoreResults true` make OpenDMARC check SPF itself and ignore any
`Received-SPF` header: trusting policyd-spf's header allows a DMARC bypass (CVE-2019-20790).
OpenDMARC believes only Authentication-Results whose authserv-id it trusts, so OpenDKIM's
AuthservID (the MX host name) is listed in `TrustedAuthservIDs`.

DMARC discovery: Debian 12's OpenDMARC 1.4.2 follows RFC 7489. It finds organisational domains
with the Public Suffix List (`PublicSuffixList`, RFC 7489 §3.2), not with RFC 9989's DNS tree
walk; it knows neither `psd=` nor `t=`, and it still applies `pct=`. What that means for a
hardened domain: its own record (written by `mecsa harden records`, valid under both RFCs) is
found the same way by both rules, so nothing changes for mail from it; for incoming mail from
domains that rely on RFC 9989 alone (a `psd=n` record below the PSL's organisational domain, a
`psd=y` policy of a suffix the PSL does not list, `t=y`), this receiver decides by RFC 7489 and
may differ from RFC 9989 receivers. OpenDMARC's development branch has a configurable walk mode
(trusteddomainproject/OpenDMARC PRs #430 and #433, merged June 2026, not in a release packaged
for Debian 12): once installed, switch it to the RFC 9989 tree walk as its opendmarc.conf(5)
documents. The file written here stays valid for 1.4.2, which refuses directives it does not
know.
"""

from __future__ import annotations

from mecsa.harden.conffile import merge_shell_assignments
from mecsa.harden.layout import OPENDMARC_SOCKET, Layout
from mecsa.harden.settings import HardenSettings
from mecsa.harden.tables import merge_key_values, merge_set

USER = "opendmarc"


def _flag(value: bool) -> str:
    return "true" if value else "false"


HEADER = "# --- settings managed by `mecsa harden` (re-run it rather than editing these) ---"


def conf_settings(settings: HardenSettings, layout: Layout) -> dict[str, str]:
    """The opendmarc.conf settings of the hardened setup, in file order."""
    return {
        "AuthservID": settings.mx_host,
        "TrustedAuthservIDs": settings.mx_host,
        "IgnoreHosts": str(layout.opendmarc_ignore_hosts),
        "IgnoreAuthenticatedClients": "true",
        "RejectFailures": _flag(settings.dmarc_reject_failures),
        "SPFSelfValidate": "true",
        "SPFIgnoreResults": "true",
        "FailureReports": "false",
        "PidFile": "/run/opendmarc/opendmarc.pid",
        "PublicSuffixList": "/usr/share/publicsuffix/public_suffix_list.dat",
        "Socket": OPENDMARC_SOCKET,
        "Syslog": "true",
        "UMask": "0002",
        "UserID": USER,
    }


_PSL_NOTE = (
    "# OpenDMARC 1.4.2 finds organisational domains with the PSL (RFC 7489), not RFC 9989's tree walk\n"
)


def _conf_line(name: str, value: str) -> str:
    return f"{name} {value}\n"


def opendmarc_conf(settings: HardenSettings, layout: Layout, existing: str = "") -> str:
    """opendmarc.conf: ours whole when there is none, else merged (other settings stay)."""
    wanted = conf_settings(settings, layout)
    if not existing.strip():
        lines = ["# Written by `mecsa harden`; re-run it rather than editing this file.\n"]
        for name, value in wanted.items():
            if name == "PublicSuffixList":
                lines.append(_PSL_NOTE)
            lines.append(_conf_line(name, value))
        return "".join(lines)
    return merge_key_values(existing, wanted, HEADER, _conf_line)


def ignore_hosts(settings: HardenSettings, existing: str = "") -> str:
    """Clients whose mail OpenDMARC does not judge: loopback and the trusted networks (others kept)."""
    return merge_set(existing, ["127.0.0.1", "::1", *settings.mynetworks])


def default_file(existing: str) -> str:
    """/etc/default/opendmarc with SOCKET set to the same inet socket as opendmarc.conf."""
    return merge_shell_assignments(existing, {"SOCKET": OPENDMARC_SOCKET})
