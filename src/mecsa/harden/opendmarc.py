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


def _conf_line(name: str, value: str) -> str:
    return f"{name} {value}\n"


def opendmarc_conf(settings: HardenSettings, layout: Layout, existing: str = "") -> str:
    """opendmarc.conf: ours whole when there is none, else merged (other settings stay)."""
    wanted = conf_settings(settings, layout)
    if not existing.strip():
        header = "# Written by `mecsa harden`; re-run it rather than editing this file.\n"
        return header + "".join(_conf_line(k, v) for k, v in wanted.items())
    return merge_key_values(existing, wanted, HEADER, _conf_line)


def ignore_hosts(settings: HardenSettings, existing: str = "") -> str:
    """Clients whose mail OpenDMARC does not judge: loopback and the trusted networks (others kept)."""
    return merge_set(existing, ["127.0.0.1", "::1", *settings.mynetworks])


def default_file(existing: str) -> str:
    """/etc/default/opendmarc with SOCKET set to the same inet socket as opendmarc.conf."""
    return merge_shell_assignments(existing, {"SOCKET": OPENDMARC_SOCKET})
