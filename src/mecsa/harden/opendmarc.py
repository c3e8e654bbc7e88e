"""OpenDMARC: opendmarc.conf, the hosts it ignores, and /etc/default/opendmarc.

`SPFSelfValidate true` and `SPFIgnoreResults true` make OpenDMARC check SPF itself and ignore any
`Received-SPF` header: trusting policyd-spf's header allows a DMARC bypass (CVE-2019-20790).
OpenDMARC believes only Authentication-Results whose authserv-id it trusts, so OpenDKIM's
AuthservID (the MX host name) is listed in `TrustedAuthservIDs`.
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
