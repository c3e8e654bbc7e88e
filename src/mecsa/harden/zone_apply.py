"""Write and check the Knot configuration and zone files of `mecsa harden zone`; make the key; read the DS.

Like `apply`: only changed files are written, each after a backup, then `knotc conf-check` and
`kzonecheck` run, and a failed check puts every file back. The signing key is made once with
`keymgr` (a key already in Knot's database is kept: a new one would need a new DS at the
parent), and the DS comes from `keymgr ... ds`.
"""

from __future__ import annotations

import os
import pwd
import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from mecsa.harden import zone
from mecsa.harden.apply import (
    ApplyError,
    CheckOutcome,
    FileChange,
    Runner,
    file_change,
    read_text,
    run_command,
    write_checked,
)
from mecsa.harden.files import DesiredFile
from mecsa.harden.layout import Layout
from mecsa.harden.records import DnsRecord, RecordSet
from mecsa.harden.settings import HardenSettings

KEY_ARGS = ("algorithm=ecdsap256sha256", "ksk=yes", "zsk=yes")  # ksk+zsk: one combined signing key
DS_SHA256 = " 13 2 "  # algorithm 13, digest type 2 (SHA-256, RFC 8624: MUST)


@dataclass(frozen=True, slots=True)
class ZonePlan:
    """The Knot files for the mail domains, and the records that belong to zones hosted elsewhere."""

    settings: HardenSettings
    layout: Layout
    files: tuple[FileChange, ...]
    zones: tuple[zone.ZoneFile, ...]
    elsewhere: tuple[DnsRecord, ...]

    @property
    def pending(self) -> tuple[FileChange, ...]:
        return tuple(f for f in self.files if f.changed)

    def zone_path(self, domain: str) -> Path:
        return Path(self.layout.knot_zones / f"{domain}.zone")


def make_zone_plan(settings: HardenSettings, layout: Layout, record_sets: Sequence[RecordSet]) -> ZonePlan:
    """The knot.conf and zone files to have; ApplyError when one of them is not mecsa's to write."""
    conf_path = str(layout.knot_conf)
    if not zone.owns_conf(read_text(conf_path)):
        raise ApplyError(
            f"{conf_path} holds someone else's Knot configuration: move it away, or add the zones by hand"
            " (`mecsa harden zone` prints them)"
        )
    zones, elsewhere = zone.zone_files(settings, record_sets)
    desired = [DesiredFile(conf_path, zone.knot_conf(settings, layout).encode())]
    for zone_file in zones:
        path = str(layout.knot_zones / f"{zone_file.domain}.zone")
        current = read_text(path)
        if current is not None and not current.startswith(zone.ZONE_HEADER):
            raise ApplyError(f"{path} was not written by mecsa: move it away first")
        desired.append(DesiredFile(path, zone_file.text(settings).encode()))
    files = tuple(file_change(d) for d in desired)
    return ZonePlan(settings, layout, files, tuple(zones), tuple(elsewhere))


def _checks(plan: ZonePlan, runner: Runner) -> list[CheckOutcome]:
    commands = [("knot", ("knotc", "-c", str(plan.layout.knot_conf), "conf-check"))]
    commands += [
        (f"zone {z.domain}", ("kzonecheck", "-o", f"{z.domain}.", str(plan.zone_path(z.domain))))
        for z in plan.zones
    ]
    outcomes = []
    for name, command in commands:
        if shutil.which(command[0]) is None:
            outcomes.append(CheckOutcome(name, command, True, f"{command[0]} is not installed", skipped=True))
            continue
        status, output = runner(command)
        outcomes.append(CheckOutcome(name, command, status == 0, output))
    return outcomes


@dataclass(frozen=True, slots=True)
class ZoneResult:
    """What `apply_zone` did, and the DS record(s) per zone."""

    written: tuple[str, ...]
    backups: dict[str, str]
    checks: tuple[CheckOutcome, ...]
    new_keys: tuple[str, ...]
    ds: dict[str, tuple[str, ...]]


def _knot_directories(layout: Layout) -> None:
    """Knot's storage (journal, key database) must be writable by the user it runs as."""
    owner = None
    if layout.is_system and os.geteuid() == 0:
        try:
            entry = pwd.getpwnam("knot")
            owner = (entry.pw_uid, entry.pw_gid)
        except KeyError:
            owner = None
    for directory in (layout.knot_storage, layout.knot_rundir):
        path = Path(directory)
        path.mkdir(parents=True, exist_ok=True)
        if owner is not None:
            os.chown(path, *owner)


def _keymgr(layout: Layout, domain: str, *args: str) -> tuple[str, ...]:
    return ("keymgr", "-c", str(layout.knot_conf), f"{domain}.", *args)


def ds_records(plan: ZonePlan, runner: Runner | None = None) -> dict[str, tuple[str, ...]]:
    """The SHA-256 DS of each zone's key as keymgr prints it (empty when there is no key yet)."""
    runner = runner or run_command
    out: dict[str, tuple[str, ...]] = {}
    for z in plan.zones:
        if shutil.which("keymgr") is None or not Path(plan.layout.knot_conf).exists():
            out[z.domain] = ()
            continue
        status, text = runner(_keymgr(plan.layout, z.domain, "ds"))
        lines = tuple(line.strip() for line in text.splitlines() if DS_SHA256 in line) if status == 0 else ()
        out[z.domain] = lines
    return out


def apply_zone(plan: ZonePlan, runner: Runner | None = None) -> ZoneResult:
    """Write the changed files, check them (roll back on failure), make missing keys, return the DS."""
    runner = runner or run_command
    _knot_directories(plan.layout)
    written, backups = write_checked(plan.pending, lambda _paths: _checks(plan, runner))
    made: list[str] = []
    for z in plan.zones:
        status, listing = runner(_keymgr(plan.layout, z.domain, "list"))
        if status != 0:
            raise ApplyError(f"keymgr could not read the key database of {z.domain}: {listing}")
        if listing.strip():
            continue
        status, output = runner(_keymgr(plan.layout, z.domain, "generate", *KEY_ARGS))
        if status != 0:
            raise ApplyError(f"keymgr could not make the signing key of {z.domain}: {output}")
        made.append(z.domain)
    _give_keys_to_knot(plan.layout)
    return ZoneResult(
        tuple(str(c.path) for c in written.changes),
        backups,
        written.outcomes,
        tuple(made),
        ds_records(plan, runner),
    )


def _give_keys_to_knot(layout: Layout) -> None:
    """keymgr ran as root: the key database must belong to the user knotd runs as."""
    if not (layout.is_system and os.geteuid() == 0):
        return
    try:
        entry = pwd.getpwnam("knot")
    except KeyError:
        return
    for path in [Path(layout.knot_storage), *Path(layout.knot_storage).rglob("*")]:
        os.chown(path, entry.pw_uid, entry.pw_gid)
