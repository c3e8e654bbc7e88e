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

USER = "opendmarc"


def _flag(value: bool) -> str:
    return "true" if value else "false"


def opendmarc_conf(settings: HardenSettings, layout: Layout) -> str:
    """The whole opendmarc.conf."""
    return (
        "# Written by `mecsa harden`; re-run it rather than editing this file.\n"
        f"AuthservID {settings.mx_host}\n"
        f"TrustedAuthservIDs {settings.mx_host}\n"
        f"IgnoreHosts {layout.opendmarc_ignore_hosts}\n"
        "IgnoreAuthenticatedClients true\n"
        f"RejectFailures {_flag(settings.dmarc_reject_failures)}\n"
        "SPFSelfValidate true\n"
        "SPFIgnoreResults true\n"
        "FailureReports false\n"
        "PidFile /run/opendmarc/opendmarc.pid\n"
        "# OpenDMARC 1.4.2 finds organisational domains with the PSL (RFC 7489), not RFC 9989's tree walk\n"
        "PublicSuffixList /usr/share/publicsuffix/public_suffix_list.dat\n"
        f"Socket {OPENDMARC_SOCKET}\n"
        "Syslog true\n"
        "UMask 0002\n"
        f"UserID {USER}\n"
    )


def ignore_hosts(settings: HardenSettings) -> str:
    """Clients whose mail OpenDMARC does not judge: loopback and the trusted networks."""
    return "".join(f"{h}\n" for h in dict.fromkeys(("127.0.0.1", "::1", *settings.mynetworks)))


def default_file(existing: str) -> str:
    """/etc/default/opendmarc with SOCKET set to the same inet socket as opendmarc.conf."""
    return merge_shell_assignments(existing, {"SOCKET": OPENDMARC_SOCKET})
