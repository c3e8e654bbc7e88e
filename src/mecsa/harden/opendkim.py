"""OpenDKIM: signing keys, KeyTable, SigningTable, TrustedHosts, opendkim.conf and /etc/default/opendkim.

Keys are made with `cryptography` rather than `opendkim-genkey`, whose `-h rsa-sha256` (copied
from the widely used guide) writes an `h=` tag that RFC 6376 verifiers reject; the DNS record
comes from `records.dkim_txt`, without `h=`. The socket is inet on 127.0.0.1, reachable from
Postfix's chroot, and /etc/default/opendkim names the same socket because Debian's start-up
scripts may take it from there instead of from opendkim.conf.
"""

from __future__ import annotations

from collections.abc import Mapping

from cryptography.hazmat.primitives.asymmetric import ed25519, rsa
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
    load_pem_private_key,
)

from mecsa.harden.conffile import merge_shell_assignments
from mecsa.harden.layout import OPENDKIM_SOCKET, Layout
from mecsa.harden.settings import HardenSettings

USER = "opendkim"
RSA_BITS = 2048
DkimPrivateKey = rsa.RSAPrivateKey | ed25519.Ed25519PrivateKey


def generate_rsa_key() -> rsa.RSAPrivateKey:
    """A fresh RSA-2048 signing key (RFC 8301: at least 1024, 2048 recommended)."""
    return rsa.generate_private_key(public_exponent=65537, key_size=RSA_BITS)


def generate_ed25519_key() -> ed25519.Ed25519PrivateKey:
    """A fresh Ed25519 signing key (RFC 8463), used beside the RSA key, never alone."""
    return ed25519.Ed25519PrivateKey.generate()


def key_pem(key: DkimPrivateKey) -> bytes:
    """The key as unencrypted PKCS#8 PEM, which OpenDKIM reads for both algorithms."""
    return key.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption())


def load_key(pem: bytes) -> DkimPrivateKey:
    """Read a DKIM private key back; ValueError for anything but RSA or Ed25519."""
    key = load_pem_private_key(pem, password=None)
    if not isinstance(key, rsa.RSAPrivateKey | ed25519.Ed25519PrivateKey):
        raise ValueError(f"a DKIM key must be RSA or Ed25519, not {type(key).__name__}")
    return key


def key_table(settings: HardenSettings, layout: Layout) -> str:
    """KeyTable: `selector._domainkey.domain domain:selector:/path/to/key` per key."""
    d = settings.domain
    return "".join(f"{s}._domainkey.{d} {d}:{s}:{layout.dkim_key(d, s)}\n" for s in settings.selectors)


def signing_table(settings: HardenSettings) -> str:
    """SigningTable (refile): every address of the domain signs with every key, RSA first."""
    d = settings.domain
    return "".join(f"*@{d} {s}._domainkey.{d}\n" for s in settings.selectors)


def trusted_hosts(settings: HardenSettings) -> str:
    """Hosts whose mail is signed rather than verified: loopback, the MX itself and mynetworks."""
    hosts = ["127.0.0.1", "::1", "localhost", settings.mx_host, *settings.mynetworks]
    return "".join(f"{h}\n" for h in dict.fromkeys(hosts))


def opendkim_conf(settings: HardenSettings, layout: Layout) -> str:
    """The whole opendkim.conf."""
    table = layout.opendkim_dir
    multiple = "MultipleSignatures\tyes\n" if settings.dkim_ed25519 else ""
    return (
        "# Written by `mecsa harden`; re-run it rather than editing this file.\n"
        "Syslog\t\t\tyes\n"
        "SyslogSuccess\t\tyes\n"
        "Mode\t\t\tsv\n"
        f"AuthservID\t\t{settings.mx_host}\n"
        "Canonicalization\trelaxed/simple\n"
        "OversignHeaders\t\tFrom\n"
        f"{multiple}"
        f"KeyTable\t\t{table / 'KeyTable'}\n"
        f"SigningTable\t\trefile:{table / 'SigningTable'}\n"
        f"ExternalIgnoreList\t{table / 'TrustedHosts'}\n"
        f"InternalHosts\t\t{table / 'TrustedHosts'}\n"
        f"UserID\t\t\t{USER}\n"
        "UMask\t\t\t007\n"
        f"Socket\t\t\t{OPENDKIM_SOCKET}\n"
        "PidFile\t\t\t/run/opendkim/opendkim.pid\n"
        "TrustAnchorFile\t\t/usr/share/dns/root.key\n"
    )


def default_file(existing: str) -> str:
    """/etc/default/opendkim with SOCKET set to the same inet socket as opendkim.conf."""
    return merge_shell_assignments(existing, {"SOCKET": OPENDKIM_SOCKET})


def key_files(
    settings: HardenSettings, layout: Layout, keys: Mapping[str, DkimPrivateKey]
) -> dict[str, bytes]:
    """The private key files (path -> PEM) for `keys` (selector -> key)."""
    return {str(layout.dkim_key(settings.domain, s)): key_pem(k) for s, k in keys.items()}
