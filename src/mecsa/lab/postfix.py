"""Postfix instances: the MX hosts and the DANE sender, one instance per namespace.

Each instance has its own configuration directory, queue and data directories, and logs to a
file through postlogd (there is no syslog). The settings split in two: what the lab needs to
run an instance at all (`lab_settings`: paths, addresses, delivery into a Maildir), and the
hardening under test, which `mecsa harden apply` writes (see `mxconfig`), plus the scenario's
`deviations` from it.
"""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Mapping
from pathlib import Path

from mecsa.lab.scenario import MxSpec

NOBODY = 65534

# chroot "n" everywhere: a chrooted daemon would not see the lab's resolv.conf bind mount.
MASTER_CF_BASE = """\
smtp       inet  n       -       n       -       -       smtpd
pickup     unix  n       -       n       60      1       pickup
cleanup    unix  n       -       n       -       0       cleanup
qmgr       unix  n       -       n       300     1       qmgr
tlsmgr     unix  -       -       n       1000?   1       tlsmgr
rewrite    unix  -       -       n       -       -       trivial-rewrite
bounce     unix  -       -       n       -       0       bounce
defer      unix  -       -       n       -       0       bounce
trace      unix  -       -       n       -       0       bounce
verify     unix  -       -       n       -       1       verify
flush      unix  n       -       n       1000?   0       flush
proxymap   unix  -       -       n       -       -       proxymap
proxywrite unix  -       -       n       -       1       proxymap
smtp       unix  -       -       n       -       -       smtp
relay      unix  -       -       n       -       -       smtp
showq      unix  n       -       n       -       -       showq
error      unix  -       -       n       -       -       error
retry      unix  -       -       n       -       -       error
discard    unix  -       -       n       -       -       discard
local      unix  -       n       n       -       -       local
virtual    unix  -       n       n       -       -       virtual
lmtp       unix  -       -       n       -       -       lmtp
anvil      unix  -       -       n       -       1       anvil
scache     unix  -       -       n       -       1       scache
postlog    unix-dgram n  -       n       -       1       postlogd
"""
HARDENED_TLS = ("TLSv1.2", "TLSv1.3")


def lab_settings(*, hostname: str, domain: str, address: str, root: Path, log_file: Path) -> dict[str, str]:
    """What any lab instance needs: its own paths, one address, IPv4, a log file, Maildir delivery."""
    return {
        "compatibility_level": "3.6",
        "queue_directory": str(root / "spool"),
        "data_directory": str(root / "data"),
        "mail_owner": "postfix",
        "setgid_group": "postdrop",
        "myhostname": hostname,
        "mydomain": domain,
        "myorigin": domain,
        "mydestination": "",
        "inet_interfaces": address,
        "inet_protocols": "ipv4",
        "smtp_bind_address": address,
        "mynetworks": "127.0.0.0/8",
        "maillog_file": str(log_file),
        "maillog_file_prefixes": str(log_file.parent),
        "alias_maps": "",
        "alias_database": "",
        "local_recipient_maps": "",
        "biff": "no",
        "virtual_mailbox_domains": domain,
        "virtual_mailbox_base": str(root / "mail"),
        # every recipient of the domain lands in one Maildir: the lab has no user accounts
        "virtual_mailbox_maps": "static:Maildir/",
        "virtual_uid_maps": f"static:{NOBODY}",
        "virtual_gid_maps": f"static:{NOBODY}",
        "smtpd_banner": "$myhostname ESMTP",
        "smtp_tls_loglevel": "1",
        "smtpd_tls_loglevel": "1",
    }


def deviations(spec: MxSpec, key_file: Path, chain_file: Path) -> dict[str, str]:
    """main.cf overrides for the scenario's MX deviations from the hardened setup (none by default)."""
    if not spec.starttls:
        return {"smtpd_tls_security_level": "none"}
    settings: dict[str, str] = {}
    if spec.certificate != "valid" or spec.revocation != "none":
        settings["smtpd_tls_chain_files"] = f"{key_file}, {chain_file}"
    if tuple(spec.tls) != HARDENED_TLS:
        excluded = [
            v for v in ("SSLv2", "SSLv3", "TLSv1", "TLSv1.1", "TLSv1.2", "TLSv1.3") if v not in spec.tls
        ]
        protocols = ", ".join(f"!{v}" for v in excluded)
        settings |= {"smtpd_tls_protocols": protocols, "smtpd_tls_mandatory_protocols": protocols}
    if {"TLSv1", "TLSv1.1"} & set(spec.tls):
        # OpenSSL 3 refuses TLS 1.0/1.1 at its default security level: allow them for the scenario
        settings |= {
            "tls_medium_cipherlist": "DEFAULT:@SECLEVEL=0",
            "tls_low_cipherlist": "DEFAULT:@SECLEVEL=0",
            "tls_high_cipherlist": "DEFAULT:@SECLEVEL=0",
        }
    return settings


def sender_settings() -> dict[str, str]:
    """The sender: DANE for every delivery, DKIM-signs what is submitted locally."""
    return {
        "smtp_tls_security_level": "dane",
        "smtp_dns_support_level": "dnssec",
        "non_smtpd_milters": "inet:127.0.0.1:8891",
        "milter_default_action": "tempfail",
        "smtpd_tls_security_level": "none",
    }


def write_instance(config_dir: Path, settings: Mapping[str, str]) -> None:
    """Write main.cf and master.cf of an instance the lab configures itself (the sender)."""
    config_dir.mkdir(parents=True, exist_ok=True)
    (config_dir / "main.cf").write_text("".join(f"{k} = {v}\n" for k, v in settings.items()))
    (config_dir / "master.cf").write_text(MASTER_CF_BASE)
    backdate(config_dir)
    make_instance_dirs(settings)


def make_instance_dirs(settings: Mapping[str, str]) -> None:
    """Create the directories Postfix does not create itself, owned as its daemons need."""
    for key in ("queue_directory", "data_directory"):
        Path(settings[key]).mkdir(parents=True, exist_ok=True)
    os.chown(settings["data_directory"], _uid("postfix"), -1)
    mail = Path(settings["virtual_mailbox_base"])
    mail.mkdir(parents=True, exist_ok=True)
    os.chown(mail, NOBODY, NOBODY)


def backdate(config_dir: Path) -> None:
    """Postfix waits while main.cf/master.cf are younger than about 2 s: make them a minute old."""
    then = time.time() - 60
    for name in ("main.cf", "master.cf"):
        path = config_dir / name
        if path.exists():
            os.utime(path, (then, then))


def postconf_set(config_dir: Path, settings: Mapping[str, str]) -> None:
    """Set parameters in an existing main.cf (`postconf -e`, which keeps the rest)."""
    if settings:
        argv = ["postconf", "-c", str(config_dir), "-e", *(f"{k}={v}" for k, v in settings.items())]
        subprocess.run(argv, check=True, capture_output=True)
    backdate(config_dir)


def postfix_start_argv(config_dir: Path) -> list[str]:
    return ["postfix", "-c", str(config_dir), "start"]


def _uid(user: str) -> int:
    import pwd

    return pwd.getpwnam(user).pw_uid
