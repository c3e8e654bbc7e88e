"""The milters' command lines, and the sender's own OpenDKIM configuration (MX hosts use harden's).

The milters listen on loopback inet sockets inside the host's namespace (a unix socket would
have to be reachable from Postfix's chroot). They log only through syslog(3): the lab gives
them a /dev/log that leads to its log sink (see `netns.devlog_script`).
"""

from __future__ import annotations

from pathlib import Path

DKIM_PORT = 8891
DMARC_PORT = 8893


def signer_opendkim_conf(
    *,
    hostname: str,
    domain: str,
    selector: str,
    key_file: Path,
    resolver: str,
    trust_anchor: Path,
    stub_conf: Path,
    pid_file: Path,
    mode: str = "sv",
) -> str:
    """OpenDKIM: sign mail of `domain` from loopback (local submission), verify everything else.

    `RequireSafeKeys false` because the lab directory may sit under a world-writable one, which
    opendkim otherwise refuses with a silent exit 78.
    """
    return "\n".join(
        [
            "Syslog yes",
            "SyslogSuccess yes",
            "LogWhy yes",
            f"Mode {mode}",
            f"Socket inet:{DKIM_PORT}@127.0.0.1",
            f"PidFile {pid_file}",
            f"AuthservID {hostname}",
            f"Domain {domain}",
            f"Selector {selector}",
            f"KeyFile {key_file}",
            "RequireSafeKeys false",
            "Canonicalization relaxed/simple",
            "InternalHosts 127.0.0.1",
            f"Nameservers {resolver}",
            f"TrustAnchorFile {trust_anchor}",
            f"ResolverConfiguration {stub_conf}",
            "",
        ]
    )


def opendkim_argv(conf: Path) -> list[str]:
    return ["opendkim", "-f", "-x", str(conf)]


def opendmarc_argv(conf: Path) -> list[str]:
    return ["opendmarc", "-f", "-c", str(conf)]
