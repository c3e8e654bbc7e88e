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
from mecsa.harden.tables import first_field, merge_key_values, merge_owned_lines, merge_set

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


HEADER = "# --- settings managed by `mecsa harden` (re-run it rather than editing these) ---"
_WHOLE_FILE_HEADER = "# Written by `mecsa harden`; re-run it rather than editing this file.\n"


def key_names(settings: HardenSettings) -> list[tuple[str, str, str]]:
    """(domain, selector, KeyTable key name) of every key, domain by domain, RSA first."""
    return [(d, s, f"{s}._domainkey.{d}") for d in settings.domains for s in settings.selectors]


def key_table(settings: HardenSettings, layout: Layout, existing: str = "") -> str:
    """KeyTable: `selector._domainkey.domain domain:selector:/path/to/key` per key.

    Entries of other keys (another domain, an older selector) are kept as they are.
    """
    ours = [f"{name} {d}:{s}:{layout.dkim_key(d, s)}\n" for d, s, name in key_names(settings)]
    names = {name for _, _, name in key_names(settings)}
    return merge_owned_lines(existing, ours, lambda line: first_field(line) in names)


def signing_table(settings: HardenSettings, existing: str = "") -> str:
    """SigningTable (refile): every address of each domain signs with every key, RSA first.

    The `*@domain` entries of our domains are ours (so a new selector replaces the old one,
    which refile's first match would otherwise keep using); every other entry is kept.
    """
    ours = [f"*@{d} {name}\n" for d, _, name in key_names(settings)]
    patterns = {f"*@{d}" for d in settings.domains}
    return merge_owned_lines(existing, ours, lambda line: first_field(line) in patterns)


def trusted_hosts(settings: HardenSettings, existing: str = "") -> str:
    """Hosts whose mail is signed, not verified: loopback, the MX itself, mynetworks (others kept)."""
    return merge_set(existing, ["127.0.0.1", "::1", "localhost", settings.mx_host, *settings.mynetworks])


def conf_settings(settings: HardenSettings, layout: Layout) -> dict[str, str]:
    """The opendkim.conf settings of the hardened setup, in file order."""
    table = layout.opendkim_dir
    wanted = {
        "Syslog": "yes",
        "SyslogSuccess": "yes",
        "Mode": "sv",
        "AuthservID": settings.mx_host,
        "Canonicalization": "relaxed/simple",
        "OversignHeaders": "From",
    }
    if settings.dkim_ed25519:
        wanted["MultipleSignatures"] = "yes"
    wanted |= {
        "KeyTable": str(table / "KeyTable"),
        "SigningTable": f"refile:{table / 'SigningTable'}",
        "ExternalIgnoreList": str(table / "TrustedHosts"),
        "InternalHosts": str(table / "TrustedHosts"),
        "UserID": USER,
        "UMask": "007",
        "Socket": OPENDKIM_SOCKET,
        "PidFile": "/run/opendkim/opendkim.pid",
        "TrustAnchorFile": "/usr/share/dns/root.key",
    }
    return wanted


def _conf_line(name: str, value: str) -> str:
    # values line up at column 24 (tab stops of 8), as in Debian's own opendkim.conf
    return f"{name}{chr(9) * max(1, 3 - len(name) // 8)}{value}\n"


def opendkim_conf(settings: HardenSettings, layout: Layout, existing: str = "") -> str:
    """opendkim.conf: ours whole when there is none, else merged (`LogWhy yes` and the like stay)."""
    wanted = conf_settings(settings, layout)
    if not existing.strip():
        return _WHOLE_FILE_HEADER + "".join(_conf_line(k, v) for k, v in wanted.items())
    return merge_key_values(existing, wanted, HEADER, _conf_line)


def default_file(existing: str) -> str:
    """/etc/default/opendkim with SOCKET set to the same inet socket as opendkim.conf."""
    return merge_shell_assignments(existing, {"SOCKET": OPENDKIM_SOCKET})


def key_files(layout: Layout, keys: Mapping[tuple[str, str], DkimPrivateKey]) -> dict[str, bytes]:
    """The private key files (path -> PEM) for `keys` ((domain, selector) -> key)."""
    return {str(layout.dkim_key(d, s)): key_pem(k) for (d, s), k in keys.items()}
