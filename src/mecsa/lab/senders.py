"""The lab's sender Postfix instances (OpenDKIM signing + Postfix): the lab's own small configuration,
not the system under test. One builder for all of them: the DANE sender (sender.test) and mail
mode's extra senders differ only in their node, domain, address and `smtp_tls_security_level`.
"""

from __future__ import annotations

from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from mecsa.lab import milters, postfix
from mecsa.lab.daemon import Daemon
from mecsa.lab.plan import RESOLVER_IP, SENDER_SELECTOR, LabPlan, Sender


def sender_daemons(
    plan: LabPlan, sender: Sender, key: rsa.RSAPrivateKey, stub: Path, tls: tuple[Path, Path] | None = None
) -> list[Daemon]:
    """Write the sender's OpenDKIM and Postfix configuration; return the two daemons to start.

    `tls` (key file, chain file): the sender's own MX offers STARTTLS with it (mail mode, where
    the sender's domain is the provider being graded from both sides).
    """
    host = sender.host
    hdir = plan.host_dir(host)
    key_file = write_private_key(key, hdir / "dkim" / f"{SENDER_SELECTOR}.private")
    (hdir / "run").mkdir(parents=True, exist_ok=True)
    dkim_conf = hdir / "opendkim.conf"
    dkim_conf.write_text(
        milters.signer_opendkim_conf(
            hostname=host,
            domain=sender.domain,
            selector=SENDER_SELECTOR,
            key_file=key_file,
            resolver=RESOLVER_IP,
            trust_anchor=plan.path("unbound", "root.ds"),
            stub_conf=stub,
            pid_file=hdir / "run" / "opendkim.pid",
            mode="s",
        )
    )
    settings = postfix.lab_settings(
        hostname=host,
        domain=sender.domain,
        address=sender.address,
        root=hdir,
        log_file=plan.logs / f"{host}.postfix.log",
    )
    settings.update(postfix.sender_settings())
    settings["smtp_tls_security_level"] = sender.tls_level
    if tls is not None:
        settings["smtpd_tls_security_level"] = "may"
        settings["smtpd_tls_key_file"], settings["smtpd_tls_cert_file"] = str(tls[0]), str(tls[1])
    config_dir = hdir / "etc" / "postfix"
    postfix.write_instance(config_dir, settings)
    devlog = plan.syslog_socket(host)
    return [
        Daemon(
            f"opendkim@{host}",
            sender.node,
            tuple(milters.opendkim_argv(dkim_conf)),
            (("tcp", "127.0.0.1", milters.DKIM_PORT),),
            devlog,
        ),
        Daemon(
            f"postfix@{host}",
            sender.node,
            tuple(postfix.postfix_start_argv(config_dir)),
            (("tcp", sender.address, 25),),
            devlog,
            forks=True,
        ),
    ]


def private_key_pem(key: rsa.RSAPrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def write_private_key(key: rsa.RSAPrivateKey, path: Path) -> Path:
    """Write `key` as PKCS#8 PEM, readable by its owner only."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(private_key_pem(key))
    path.chmod(0o600)
    return path
