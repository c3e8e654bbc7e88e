"""The Certbot deploy hook `mecsa harden apply` installs: `python -m mecsa.harden.renewal ...`.

Certbot has already switched its live/ files to the renewed certificate when a deploy hook runs
(RENEWED_LINEAGE names the lineage directory, RENEWED_DOMAINS its names). Postfix reads a
deployed copy instead (see `certbot`), and this hook decides whether the renewal goes into it:

- the same key as the copy in service (`--reuse-key`): the TLSA still matches; install, reload;
- a new key that a published TLSA record of `_25._tcp.<mx>` matches (the pre-published next
  key): install, reload;
- no TLSA published at all: DANE is not in use, nothing can break; install, reload;
- otherwise (an unknown key, or TLSA that could not be looked up): keep the copy in service,
  print the TLSA to publish, exit 1. Installing would make DANE senders defer every message
  (RFC 7672 §2.2: a TLSA RRset that matches nothing makes the server unusable for them).

Exit status: 0 installed (or not our lineage), 1 refused, 2 bad usage.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import os
import shutil
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from mecsa.certs import Tlsa
from mecsa.harden.settings import SettingsError, TlsMaterial, check_tls_pair, load_chain

REFUSED = 1
USAGE = 2


def chain_matches(records: Sequence[Tlsa], chain: list[x509.Certificate]) -> Tlsa | None:
    """The first record the renewed chain satisfies: DANE-EE (3) by the leaf, DANE-TA (2) by an
    issuer in the chain (RFC 7672 §3.1; PKIX usages 0 and 1 are unusable for SMTP); else None."""
    for record in records:
        if record.unusable_because is not None:  # an unknown selector or matching type never matches
            continue
        if record.usage == 3 and record.matches(chain[0]):
            return record
        if record.usage == 2 and any(record.matches(c) for c in chain[1:]):
            return record
    return None


def tlsa_311_line(mx_host: str, leaf: x509.Certificate) -> str:
    spki = leaf.public_key().public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)
    return f"_25._tcp.{mx_host}. 3600 IN TLSA 3 1 1 {hashlib.sha256(spki).hexdigest()}"


@dataclass(frozen=True, slots=True)
class TlsaLookup:
    """The published TLSA set, or why it could not be learnt (`error`)."""

    records: tuple[Tlsa, ...] = ()
    error: str | None = None


def lookup_tlsa(mx_host: str, resolvers: Sequence[str]) -> TlsaLookup:
    """TLSA of `_25._tcp.<mx_host>` through the given (or the system's) resolvers."""
    from mecsa.dns.answer import Rcode
    from mecsa.dns.resolver import DnsClient, Resolver, ResolverConfigError, parse_nameserver

    async def ask() -> TlsaLookup:
        try:
            client = DnsClient([parse_nameserver(r) for r in resolvers] or None, timeout=3.0, attempts=3)
        except ResolverConfigError as exc:
            return TlsaLookup(error=str(exc))
        answer = await Resolver(client).resolve(f"_25._tcp.{mx_host}", "TLSA")
        if answer.rcode not in (Rcode.NOERROR, Rcode.NXDOMAIN):
            return TlsaLookup(error=f"{answer.rcode.value}{f' ({answer.detail})' if answer.detail else ''}")
        return TlsaLookup(
            tuple(
                Tlsa(int(r.usage), int(r.selector), int(r.mtype), bytes(r.cert))  # type: ignore[attr-defined]
                for r in answer.records
            )
        )

    return asyncio.run(ask())


def _same_key(a: x509.Certificate, b: x509.Certificate) -> bool:
    spki = (Encoding.DER, PublicFormat.SubjectPublicKeyInfo)
    return a.public_key().public_bytes(*spki) == b.public_key().public_bytes(*spki)


def install(deployed: Path, content: bytes) -> None:
    """Replace the deployed copy atomically, mode 0600 (it holds the private key)."""
    from mecsa.harden.apply import write_atomically

    write_atomically(deployed, content, 0o600, None)


def reload_postfix(postfix_dir: Path) -> str:
    """Reload Postfix when it runs (new smtpd processes then read the new copy); say what happened."""
    if shutil.which("postfix") is None:
        return "postfix is not installed here: nothing to reload"
    command = ["postfix", "-c", str(postfix_dir)]
    status = subprocess.run([*command, "status"], capture_output=True, check=False, timeout=60)
    if status.returncode != 0:
        return "Postfix is not running: it reads the new certificate when it starts"
    done = subprocess.run([*command, "reload"], capture_output=True, text=True, check=False, timeout=60)
    return "postfix reload: done" if done.returncode == 0 else f"postfix reload failed: {done.stderr.strip()}"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="mecsa.harden.renewal", description=__doc__.splitlines()[0])
    parser.add_argument("--mx-host", required=True)
    parser.add_argument("--lineage", required=True, type=Path, help="the Certbot lineage this hook guards")
    parser.add_argument("--cert-file", default="fullchain.pem")
    parser.add_argument("--key-file", default="privkey.pem")
    parser.add_argument("--deployed", required=True, type=Path, help="the key+chain file Postfix reads")
    parser.add_argument("--postfix-dir", required=True, type=Path)
    parser.add_argument("--resolver", action="append", default=[], help="IP[:PORT]; default: the system's")
    parser.add_argument("--hook", default="<this hook>", help="the hook's own path, for the advice it prints")
    return parser


def run(argv: Sequence[str], environ: dict[str, str] | os._Environ[str]) -> int:
    """The hook; prints what it did and returns the exit status."""
    args = _parser().parse_args(argv)
    renewed = environ.get("RENEWED_LINEAGE", "")
    if not renewed:
        print(
            "mecsa renewal hook: RENEWED_LINEAGE is not set (Certbot sets it for deploy hooks)",
            file=sys.stderr,
        )
        return USAGE
    if Path(renewed).resolve() != args.lineage.resolve():
        print(f"mecsa renewal hook: {renewed} is not {args.lineage}: nothing to do")
        return 0
    try:
        tls = check_tls_pair(Path(renewed) / args.cert_file, Path(renewed) / args.key_file, args.mx_host)
    except SettingsError as exc:
        print(f"mecsa renewal hook: the renewed certificate is unusable, keeping the one in service: {exc}")
        return REFUSED
    return _decide(args, tls)


def _decide(args: argparse.Namespace, tls: TlsMaterial) -> int:
    from mecsa.harden.certbot import deployed_pem

    leaf = tls.leaf
    in_service = _in_service(args.deployed)
    if in_service is not None and _same_key(in_service, leaf):
        reason = "the same key as the certificate in service: the published TLSA still matches"
    else:
        lookup = lookup_tlsa(args.mx_host, args.resolver)
        if lookup.error is not None:
            return _refuse(args, leaf, f"the TLSA records could not be looked up ({lookup.error})")
        if not lookup.records:
            reason = f"no TLSA published for _25._tcp.{args.mx_host}: DANE is not in use"
        else:
            match = chain_matches(lookup.records, list(tls.chain))
            if match is None:
                return _refuse(args, leaf, "its new key matches none of the published TLSA records")
            reason = f"its key matches the published TLSA {str(match)[:24]}..."
    install(args.deployed, deployed_pem(tls))
    print(f"mecsa renewal hook: installed the renewed certificate into {args.deployed}: {reason}")
    print(f"mecsa renewal hook: {reload_postfix(args.postfix_dir)}")
    return 0


def _in_service(deployed: Path) -> x509.Certificate | None:
    try:
        return load_chain(deployed)[0]
    except SettingsError:
        return None


def _refuse(args: argparse.Namespace, leaf: x509.Certificate, why: str) -> int:
    print(
        f"mecsa renewal hook: NOT installed, {why}; {args.deployed} stays in service, so no mail defers.\n"
        f"Publish this record (in the signed zone), wait for its TTL, then run this hook again:\n"
        f"  {tlsa_311_line(args.mx_host, leaf)}\n"
        f"  RENEWED_LINEAGE={args.lineage} {args.hook}",
        file=sys.stderr,
    )
    return REFUSED


def main() -> None:
    sys.exit(run(sys.argv[1:], os.environ))


if __name__ == "__main__":
    main()
