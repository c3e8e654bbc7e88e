"""Surviving Certbot renewal with DANE: Postfix serves a deployed copy, and a deploy hook guards it. Pure.

Certbot renews with a new key by default, which breaks a published TLSA 3 1 1: mail to the
domain then defers. So with `certbot_hook`, Postfix does not read Certbot's live/ files but a
copy (key first, then the chain, one file, replaced atomically), and Certbot's deploy hook
(`/etc/letsencrypt/renewal-hooks/deploy/`) installs a renewed certificate into that copy only
when its key matches a TLSA record already published; see `renewal` for what the hook does.
`certbot renew --reuse-key` avoids the question altogether: the key, and so the TLSA, stay.
"""

from __future__ import annotations

import shlex
import sys
from pathlib import Path

from mecsa.harden.layout import Layout
from mecsa.harden.settings import HardenSettings, TlsMaterial

HOOK_MODE = 0o755


def deployed_pem(tls: TlsMaterial) -> bytes:
    """The file Postfix's `smtpd_tls_chain_files` names: the private key, then the chain (postconf(5))."""
    from cryptography.hazmat.primitives.serialization import Encoding

    key = tls.key_pem if tls.key_pem.endswith(b"\n") else tls.key_pem + b"\n"
    return key + b"".join(cert.public_bytes(Encoding.PEM) for cert in tls.chain)


def hook_script(settings: HardenSettings, layout: Layout, python: str | None = None) -> str:
    """The deploy hook: a shell script that runs `python -m mecsa.harden.renewal` with this setup's paths.

    Certbot runs every hook in the directory for every renewed certificate, with RENEWED_LINEAGE
    set; the hook acts only for the lineage that holds `settings.cert`. Extra arguments are passed
    on (`--resolver IP[:PORT]` to ask another resolver than the system's).
    """
    argv = [
        python or sys.executable,
        "-m",
        "mecsa.harden.renewal",
        "--mx-host",
        settings.mx_host,
        "--lineage",
        str(Path(settings.cert).parent),
        "--cert-file",
        Path(settings.cert).name,
        "--key-file",
        Path(settings.key).name,
        "--deployed",
        str(layout.tls_deployed(settings.mx_host)),
        "--postfix-dir",
        str(layout.postfix_dir),
    ]
    return (
        "#!/bin/sh\n"
        "# Written by `mecsa harden apply`: Certbot deploy hook. It installs a renewed certificate for\n"
        f"# Postfix only when its key matches a published TLSA record of _25._tcp.{settings.mx_host};\n"
        "# otherwise it keeps the certificate in service, prints the TLSA to publish, and fails.\n"
        "# Run it again by hand after publishing: RENEWED_LINEAGE=<lineage> <this file>\n"
        f'exec {" ".join(shlex.quote(a) for a in argv)} --hook "$0" "$@"\n'
    )
