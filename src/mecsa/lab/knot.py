"""Knot DNS: configuration, DNSSEC keys (pre-generated with keymgr) and offline-signed bogus zones.

Keys are made before Knot starts so that each parent's zone file can carry its children's DS
records and Unbound can be given the root's DS as trust anchor. A bogus zone is signed offline
with ldns-signzone, its chosen signatures broken, and served by Knot as a plain zone file.
"""

from __future__ import annotations

import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from mecsa.lab.plan import AUTH_IP
from mecsa.lab.state import LabError
from mecsa.lab.zones import tamper_signatures


class KnotError(LabError):
    """A key or signing tool failed."""


@dataclass(frozen=True, slots=True)
class ZoneFile:
    """One zone Knot serves: `signed` means Knot signs it with the pre-generated key."""

    name: str  # "" for the root, else without the final dot
    signed: bool

    @property
    def fqdn(self) -> str:
        return f"{self.name}." if self.name else "."

    @property
    def file_name(self) -> str:
        return f"{self.name or 'root'}.zone"


def knot_conf(base: Path, log_file: Path, zones: Sequence[ZoneFile]) -> str:
    """knotd's configuration: one listener, journal off, zone files never rewritten."""
    lines = [
        "server:",
        f"  rundir: {base / 'run'}",
        f"  listen: {AUTH_IP}@53",
        "log:",
        f"  - target: {log_file}",
        "    any: info",
        "database:",
        f"  storage: {base / 'db'}",
        "policy:",
        "  - id: lab",
        "    algorithm: ecdsap256sha256",
        "    single-type-signing: on",
        "    manual: on",
        "template:",
        "  - id: default",
        f"    storage: {base / 'zones'}",
        "    journal-content: none",
        "    zonefile-sync: -1",
        "zone:",
    ]
    for zone in zones:
        lines += [f"  - domain: {zone.fqdn}", f"    file: {zone.file_name}"]
        if zone.signed:
            lines += ["    dnssec-signing: on", "    dnssec-policy: lab"]
    return "\n".join(lines) + "\n"


def make_knot_dirs(base: Path) -> None:
    for sub in ("run", "db", "zones"):
        (base / sub).mkdir(parents=True, exist_ok=True)


def generate_key(conf: Path, zone: str) -> list[str]:
    """Make the zone's combined signing key in Knot's KASP database; return its SHA-256 DS line(s)."""
    fqdn = f"{zone}." if zone else "."
    _run(["keymgr", "-c", str(conf), fqdn, "generate", "algorithm=ecdsap256sha256", "ksk=yes", "zsk=yes"])
    out = _run(["keymgr", "-c", str(conf), fqdn, "ds"])
    return [line for line in out.splitlines() if _ds_digest_type(line) == "2"]


def sign_bogus(
    zone: str, text: str, workdir: Path, tamper: Sequence[tuple[str, str]]
) -> tuple[str, list[str]]:
    """Sign `text` offline, then break the signatures of the `tamper` RRsets; return (zone, DS lines)."""
    workdir.mkdir(parents=True, exist_ok=True)
    base = _run(["ldns-keygen", "-a", "ECDSAP256SHA256", "-k", f"{zone}."], cwd=workdir).strip()
    unsigned = workdir / f"{zone}.unsigned"
    unsigned.write_text(text)
    _run(["ldns-signzone", "-f", str(workdir / f"{zone}.signed"), str(unsigned), base], cwd=workdir)
    ds = _run(["ldns-key2ds", "-n", "-2", f"{base}.key"], cwd=workdir)
    signed, count = tamper_signatures((workdir / f"{zone}.signed").read_text(), tamper)
    if count == 0:
        raise KnotError(f"{zone}: nothing to tamper with: no RRSIG covers {list(tamper)}")
    return signed, [line.strip() for line in ds.splitlines() if line.strip()]


def knotd_argv(conf: Path) -> list[str]:
    return ["knotd", "-c", str(conf)]


def _ds_digest_type(line: str) -> str:
    fields = line.split()
    return fields[fields.index("DS") + 3] if "DS" in fields and len(fields) > fields.index("DS") + 3 else ""


def _run(argv: list[str], cwd: Path | None = None) -> str:
    done = subprocess.run(argv, capture_output=True, text=True, cwd=cwd, check=False)
    if done.returncode != 0:
        raise KnotError(f"{' '.join(argv)}: {(done.stderr or done.stdout).strip()}")
    return done.stdout
