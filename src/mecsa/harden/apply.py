"""`plan` and `apply`: the only code in mecsa that writes to disk.

`make_plan` reads the current files under a root and works out the wanted ones (pure generators
in `files`); `apply_plan` writes those that differ, each atomically (temp file + os.replace),
after a timestamped backup of the file it replaces; it then runs the services' own
configuration checks and, if one fails, puts every file back byte for byte (new files removed).
Services are reloaded only when asked.
"""

from __future__ import annotations

import datetime as dt
import difflib
import os
import pty
import pwd
import shutil
import stat
import subprocess
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography import x509

from mecsa.harden import opendkim, postfix
from mecsa.harden.conffile import main_cf_values
from mecsa.harden.files import DesiredFile, MissingFileError, desired_files
from mecsa.harden.layout import Layout
from mecsa.harden.postfix_lists import ListSyntaxError
from mecsa.harden.records import RecordSet, records_for, spki_sha256
from mecsa.harden.settings import HardenSettings, certificate_warnings, load_public_key, load_tls

CHECK_TIMEOUT = 60.0
BACKUP_MARK = ".mecsa-bak-"


class ApplyError(RuntimeError):
    """Apply stopped; every file it had written was put back. The message says why."""


@dataclass(frozen=True, slots=True)
class FileChange:
    """One managed file: its wanted state, its current bytes (None when absent), mode and owner."""

    desired: DesiredFile
    old: bytes | None
    old_mode: int | None = None
    old_owner: tuple[int, int] | None = None

    @property
    def mode(self) -> int:
        """The mode to write: an existing file keeps its own (main.cf may be 0640 on purpose), a secret
        gets the one it must have."""
        return self.desired.mode if self.old_mode is None or self.desired.secret else self.old_mode

    @property
    def access_wrong(self) -> bool:
        """A private key its daemon cannot read, or others can: mode or owner not the wanted ones."""
        if not self.desired.secret or self.old is None:
            return False
        wanted = _owner_ids(self.desired.owner)
        owner_wrong = wanted is not None and self.old_owner is not None and self.old_owner[0] != wanted[0]
        return self.old_mode != self.desired.mode or owner_wrong

    @property
    def path(self) -> Path:
        return Path(self.desired.path)

    @property
    def changed(self) -> bool:
        return self.old != self.desired.content or self.access_wrong

    def diff(self) -> str:
        """A unified diff of the change ('' when none); secrets are named, never shown."""
        if not self.changed:
            return ""
        if self.desired.secret:
            if self.old is None:
                return f"--- /dev/null\n+++ {self.path}\n+ (new private key, mode 0600, not shown)\n"
            owner = f" and owner {self.desired.owner}" if self.desired.owner else ""
            fixed = f"private key kept, now mode {self.desired.mode:04o}{owner}"
            return f"--- {self.path}\n+++ {self.path}\n+ ({fixed}, not shown)\n"
        before = (self.old or b"").decode("utf-8", "replace").splitlines(keepends=True)
        after = self.desired.content.decode("utf-8").splitlines(keepends=True)
        old_name = str(self.path) if self.old is not None else "/dev/null"
        return "".join(difflib.unified_diff(before, after, old_name, str(self.path)))


@dataclass(frozen=True, slots=True)
class Plan:
    """What apply would do under one root."""

    settings: HardenSettings
    layout: Layout
    files: tuple[FileChange, ...]
    dkim_keys: Mapping[tuple[str, str], opendkim.DkimPrivateKey]
    new_keys: frozenset[tuple[str, str]]
    directories: tuple[str, ...]
    warnings: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()
    in_service: x509.Certificate | None = None  # with the Certbot hook: the leaf Postfix serves

    @property
    def new_selectors(self) -> frozenset[str]:
        """`selector` (primary domain) or `selector@domain` of each key apply will generate."""
        primary = self.settings.domain
        return frozenset(s if d == primary else f"{s}@{d}" for d, s in self.new_keys)

    @property
    def pending(self) -> tuple[FileChange, ...]:
        return tuple(f for f in self.files if f.changed)

    def diff(self) -> str:
        return "".join(f.diff() for f in self.pending)

    def record_sets(self) -> tuple[RecordSet, ...]:
        """The DNS records to publish, one set per mail domain (DKIM from the keys on disk or about to be)."""
        live = load_tls(self.settings).leaf
        served = self.in_service or live
        next_key: Any = load_public_key(self.settings.next_key) if self.settings.next_key else None
        if next_key is None and spki_sha256(live) != spki_sha256(served):
            next_key = live  # a renewal the hook kept out of service: its TLSA must be published first
        sets = []
        for domain in self.settings.domains:
            public = {s: k.public_key() for (d, s), k in self.dkim_keys.items() if d == domain}
            sets.append(records_for(self.settings, public, served, next_key, domain=domain))
        return tuple(sets)

    def records(self) -> RecordSet:
        """The records of the primary domain (with the MX host's own A/AAAA and TLSA)."""
        return self.record_sets()[0]


def _read(path: str) -> bytes | None:
    try:
        return Path(path).read_bytes()
    except FileNotFoundError:
        return None


def _text(path: str) -> str | None:
    data = _read(path)
    return None if data is None else data.decode("utf-8", "surrogateescape")


DkimKeys = dict[tuple[str, str], opendkim.DkimPrivateKey]


def _dkim_keys(settings: HardenSettings, layout: Layout) -> tuple[DkimKeys, frozenset[tuple[str, str]]]:
    """The key of each (domain, selector): read from disk when there, otherwise newly generated."""
    keys: DkimKeys = {}
    new: set[tuple[str, str]] = set()
    for domain in settings.domains:
        for selector in settings.selectors:
            path = layout.dkim_key(domain, selector)
            pem = _read(str(path))
            if pem is not None:
                try:
                    keys[domain, selector] = opendkim.load_key(pem)
                except ValueError as exc:
                    raise ApplyError(f"{path} is not a usable DKIM key: {exc}") from None
                continue
            ed = selector == settings.ed25519_selector and settings.dkim_ed25519
            keys[domain, selector] = opendkim.generate_ed25519_key() if ed else opendkim.generate_rsa_key()
            new.add((domain, selector))
    return keys, frozenset(new)


def _existing_keys(
    settings: HardenSettings, layout: Layout, new: frozenset[tuple[str, str]]
) -> list[DesiredFile]:
    """The DKIM keys already there, byte for byte, with the mode and owner they must have.

    A key made by hand as root (opendkim-genkey, a copy) is unreadable for OpenDKIM, which then
    answers every outgoing message with a temporary failure; apply gives it to `opendkim`, 0600.
    """
    out = []
    for domain in settings.domains:
        for selector in settings.selectors:
            path = str(layout.dkim_key(domain, selector))
            pem = _read(path)
            if (domain, selector) not in new and pem is not None:
                out.append(DesiredFile(path, pem, 0o600, opendkim.USER, secret=True))
    return out


def _file_change(desired: DesiredFile) -> FileChange:
    try:
        info = Path(desired.path).stat()
    except FileNotFoundError:
        return FileChange(desired, None)
    return FileChange(desired, _read(desired.path), stat.S_IMODE(info.st_mode), (info.st_uid, info.st_gid))


def _alias_names(text: str) -> set[str]:
    from mecsa.harden.conffile import alias_key, split_entries

    return {e.key for e in split_entries(text, alias_key) if e.key is not None}


def check_alias_targets(settings: HardenSettings, layout: Layout) -> None:
    """ApplyError unless each local alias target is a user of this system or another alias.

    Postfix's local(8) looks users up in the system's passwd, whatever the configuration root;
    a target that is neither bounces the postmaster's mail (RFC 5321 §4.5.1 requires that box).
    """
    names = _alias_names(_text(str(layout.aliases)) or "") - set(postfix.aliases(settings))
    for setting, target in (
        ("postmaster", settings.postmaster),
        ("dmarc_reports_to", settings.dmarc_reports_to),
    ):
        if "@" in target or target in names:
            continue
        try:
            pwd.getpwnam(target)
        except KeyError:
            raise ApplyError(
                f"{setting}: {target!r} is neither a user of this system nor an alias in {layout.aliases};"
                " create it, or give a mail address"
            ) from None


def make_plan(settings: HardenSettings, layout: Layout, now: dt.datetime | None = None) -> Plan:
    """Read the current state under `layout.root` and work out every file apply would write."""
    check_alias_targets(settings, layout)
    keys, new = _dkim_keys(settings, layout)
    try:
        desired = desired_files(settings, layout, _text, {k: keys[k] for k in new})
    except MissingFileError as exc:
        raise ApplyError(str(exc)) from None
    except ListSyntaxError as exc:
        raise ApplyError(f"{layout.main_cf}: {exc}") from None
    desired.extend(_existing_keys(settings, layout, new))
    directories = () if layout.is_system else (str(layout.queue_directory), str(layout.data_directory))
    warnings: list[str] = []
    in_service = None
    if settings.certbot_hook:
        copy, in_service, copy_warnings = _deployed_copy(settings, layout, now)
        desired.append(copy)
        warnings.extend(copy_warnings)
    files = tuple(_file_change(d) for d in desired)
    existing = main_cf_values(_text(str(layout.main_cf)) or "")
    after = main_cf_values(next(f.desired.content for f in files if f.path == Path(layout.main_cf)).decode())
    warnings[:0] = [
        *postfix.milter_warnings(after),
        *certificate_warnings(load_tls(settings).leaf, settings.cert, now),
    ]
    notes = [
        f"main.cf: removes {name} = {value} (smtpd_tls_chain_files replaces it; Postfix would ignore it"
        " and warn on every connection)"
        for name, value in postfix.main_cf_removals(existing).items()
    ]
    return Plan(settings, layout, files, keys, new, directories, tuple(warnings), tuple(notes), in_service)


def _deployed_copy(
    settings: HardenSettings, layout: Layout, now: dt.datetime | None
) -> tuple[DesiredFile, x509.Certificate, list[str]]:
    """The key+chain copy Postfix serves, and the leaf in it.

    It is (re)made from the live certificate when there is none yet or when the key is the same
    (a renewal with --reuse-key cannot break DANE). A copy with another key is the deploy
    hook's refusal of a renewal: apply keeps it too, and says what to do.
    """
    from mecsa.harden.certbot import deployed_pem
    from mecsa.harden.settings import SettingsError, load_chain

    path = layout.tls_deployed(settings.mx_host)
    live = load_tls(settings)
    fresh = DesiredFile(str(path), deployed_pem(live), 0o600, secret=True)
    current = _read(str(path))
    if current is None:
        return fresh, live.leaf, []
    try:
        served = load_chain(Path(path))[0]
    except SettingsError:
        return fresh, live.leaf, [f"{path} holds no certificate: it is made again from {settings.cert}"]
    if spki_sha256(served) == spki_sha256(live.leaf):
        return fresh, live.leaf, []
    hook = layout.certbot_hook(settings.mx_host)
    warning = (
        f"{path} (in service) has another key than {settings.cert}: publish the next-key TLSA below,"
        f" wait for its TTL, then run RENEWED_LINEAGE={settings.cert.parent} {hook}"
    )
    return (
        DesiredFile(str(path), current, 0o600, secret=True),
        served,
        [warning, *certificate_warnings(served, Path(path), now)],
    )


# --- running the services' own checks ------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CheckOutcome:
    """One configuration check: its command, whether it passed, and what it said."""

    name: str
    command: tuple[str, ...]
    ok: bool
    output: str
    skipped: bool = False


Runner = Callable[[Sequence[str]], tuple[int, str]]


def run_command(command: Sequence[str]) -> tuple[int, str]:
    """Run `command`; return its exit status and output.

    Postfix writes its errors to stderr only when stderr is a terminal (and otherwise to a
    syslog that may not exist), so stderr is a pseudo-terminal here, read back after exit.
    """
    primary, secondary = pty.openpty()
    try:
        proc = subprocess.run(
            list(command),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=secondary,
            timeout=CHECK_TIMEOUT,
            check=False,
        )
    finally:
        os.close(secondary)
    chunks = [proc.stdout]
    while True:
        try:
            chunk = os.read(primary, 65536)
        except OSError:  # EIO: the terminal is closed and drained
            break
        if not chunk:
            break
        chunks.append(chunk)
    os.close(primary)
    return proc.returncode, b"".join(chunks).decode("utf-8", "replace").replace("\r\n", "\n").strip()


def _checks(plan: Plan, written: set[str]) -> list[tuple[str, tuple[str, ...]]]:
    layout = plan.layout
    checks: list[tuple[str, tuple[str, ...]]] = [
        ("postfix", ("postfix", "-c", str(layout.postfix_dir), "check")),
        ("opendkim", ("opendkim", "-n", "-x", str(layout.opendkim_conf))),
        ("opendmarc", ("opendmarc", "-n", "-c", str(layout.opendmarc_conf))),
    ]
    if str(layout.unbound_conf) in written or Path(layout.unbound_conf).exists():
        checks.append(("unbound", ("unbound-checkconf", str(layout.unbound_conf))))
    return checks


def run_checks(plan: Plan, written: set[str], runner: Runner = run_command) -> list[CheckOutcome]:
    """Each service's own configuration check; one whose program is not installed is skipped."""
    outcomes = []
    for name, command in _checks(plan, written):
        if shutil.which(command[0]) is None:
            outcomes.append(CheckOutcome(name, command, True, f"{command[0]} is not installed", skipped=True))
            continue
        status, output = runner(command)
        outcomes.append(CheckOutcome(name, command, status == 0, output))
    return outcomes


# --- writing -------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ApplyResult:
    """What apply did: files written (with their backups), checks run, notes for the user."""

    written: tuple[str, ...]
    backups: Mapping[str, str]
    checks: tuple[CheckOutcome, ...]
    notes: tuple[str, ...] = field(default=())

    @property
    def changed(self) -> bool:
        return bool(self.written)


def _owner_ids(user: str | None) -> tuple[int, int] | None:
    if user is None or os.geteuid() != 0:
        return None
    try:
        entry = pwd.getpwnam(user)
    except KeyError:
        return None
    return entry.pw_uid, entry.pw_gid


def write_atomically(path: Path, content: bytes, mode: int, owner: tuple[int, int] | None) -> None:
    """Write through a temp file in the same directory, fsync, then rename over `path`."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temp = path.with_name(f".{path.name}.mecsa-tmp-{os.getpid()}")
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    try:
        os.fchmod(fd, mode)  # the umask must not loosen or tighten what was asked
        if owner is not None:
            os.fchown(fd, *owner)
        os.write(fd, content)
        os.fsync(fd)
    finally:
        os.close(fd)
    temp.replace(path)  # atomic: readers see the old file or the new one, never half


def _make_directories(plan: Plan) -> None:
    """The queue and data directories of a non-system root; Postfix wants data_directory as its own."""
    owner = _owner_ids("postfix")
    for directory in plan.directories:
        path = Path(directory)
        if path.is_dir():
            continue
        path.mkdir(parents=True)
        if owner is not None and path == Path(plan.layout.data_directory):
            os.chown(path, *owner)


def _backup(path: Path, stamp: str) -> Path:
    target = path.with_name(f"{path.name}{BACKUP_MARK}{stamp}")
    serial = 1
    while target.exists():  # two runs within one second keep both backups
        serial += 1
        target = path.with_name(f"{path.name}{BACKUP_MARK}{stamp}.{serial}")
    shutil.copy2(path, target)  # keeps mode and times; owner is kept below where we can
    stat = path.stat()
    if os.geteuid() == 0:
        os.chown(target, stat.st_uid, stat.st_gid)
    return target


def _restore(written: list[FileChange], backups: Mapping[str, str]) -> None:
    for change in reversed(written):
        backup = backups.get(str(change.path))
        if backup is None:
            change.path.unlink(missing_ok=True)
        else:
            Path(backup).replace(change.path)  # the backup is a byte-for-byte copy; it becomes the file


def apply_plan(
    plan: Plan,
    *,
    reload: bool = False,
    now: dt.datetime | None = None,
    runner: Runner | None = None,
) -> ApplyResult:
    """Write the plan's changed files, check them, and roll back on a failed check (ApplyError)."""
    runner = runner or run_command
    _make_directories(plan)
    pending = plan.pending
    if not pending:
        return ApplyResult((), {}, ())  # the caller says "nothing changed", once
    notes: list[str] = []
    written, backups = write_checked(
        pending, lambda paths: run_checks(plan, paths, runner), now=now, notes=notes
    )
    outcomes = written.outcomes
    notes.extend(_rebuild_aliases(plan, list(written.changes), runner))
    if reload:
        notes.extend(_reload(plan, runner))
    return ApplyResult(tuple(str(c.path) for c in written.changes), backups, outcomes, tuple(notes))


@dataclass(frozen=True, slots=True)
class Written:
    """The files `write_checked` wrote and the checks they passed."""

    changes: tuple[FileChange, ...]
    outcomes: tuple[CheckOutcome, ...]


def write_checked(
    pending: Sequence[FileChange],
    check: Callable[[set[str]], list[CheckOutcome]],
    *,
    now: dt.datetime | None = None,
    notes: list[str] | None = None,
) -> tuple[Written, dict[str, str]]:
    """Write each change (backup first, atomically), run `check(paths written)`, and on a failed
    check or any error put every file back byte for byte (ApplyError). Returns what was written
    and the backups (path -> backup path)."""
    stamp = (now or dt.datetime.now()).strftime("%Y%m%dT%H%M%S")
    backups: dict[str, str] = {}
    written: list[FileChange] = []
    try:
        for change in pending:
            if change.old is not None:
                backups[str(change.path)] = str(_backup(change.path, stamp))
            owner = _owner_for(change)
            if (
                change.old is None
                and change.desired.owner is not None
                and owner is None
                and notes is not None
            ):
                notes.append(f"{change.path}: could not give it to user {change.desired.owner}; chown it")
            written.append(change)
            write_atomically(change.path, change.desired.content, change.mode, owner)
            _secure_key_directory(change, owner)
        outcomes = check({str(c.path) for c in written})
    except BaseException:
        _restore(written, backups)
        raise
    failed = [o for o in outcomes if not o.ok]
    if failed:
        _restore(written, backups)
        reasons = "; ".join(f"{o.name}: {o.output or 'exit status non-zero'}" for o in failed)
        raise ApplyError(f"configuration check failed, every file was put back: {reasons}")
    return Written(tuple(written), tuple(outcomes)), backups


def file_change(desired: DesiredFile) -> FileChange:
    """A desired file beside its current bytes, mode and owner."""
    return _file_change(desired)


def read_text(path: str) -> str | None:
    """The current text of `path` (None when it does not exist)."""
    return _text(path)


def _owner_for(change: FileChange) -> tuple[int, int] | None:
    """An existing file keeps its owner and group (e.g. root:postfix); a new one, and a private key,
    get the desired user (OpenDKIM runs as `opendkim` and must read its key)."""
    if change.old_owner is not None and not (change.desired.secret and change.desired.owner):
        return change.old_owner if os.geteuid() == 0 else None
    return _owner_ids(change.desired.owner)


def _secure_key_directory(change: FileChange, owner: tuple[int, int] | None) -> None:
    if not change.desired.secret:
        return
    directory = change.path.parent
    directory.chmod(0o750)
    if owner is not None:
        os.chown(directory, *owner)


def _rebuild_aliases(plan: Plan, written: list[FileChange], runner: Runner) -> list[str]:
    aliases = str(plan.layout.aliases)
    if aliases not in {str(c.path) for c in written} and Path(f"{aliases}.db").exists():
        return []
    if shutil.which("postalias") is None:
        return [f"postalias is not installed: run `newaliases` to index {aliases}"]
    status, output = runner(("postalias", "-c", str(plan.layout.postfix_dir), f"hash:{aliases}"))
    return [] if status == 0 else [f"postalias failed ({output}); run `newaliases` by hand"]


def _reload(plan: Plan, runner: Runner) -> list[str]:
    notes = []
    commands: list[tuple[str, ...]] = [("postfix", "-c", str(plan.layout.postfix_dir), "reload")]
    if plan.layout.is_system and shutil.which("systemctl"):
        commands.append(("systemctl", "restart", "opendkim", "opendmarc"))
    for command in commands:
        status, output = runner(command)
        notes.append(f"{' '.join(command)}: {'done' if status == 0 else f'failed: {output}'}")
    return notes


# --- rollover helpers ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class NewKey:
    """A key made (or found) by a rollover helper, and where it is."""

    path: Path
    public_key: Any
    created: bool


def write_new_key(path: Path, pem: bytes, owner: str | None) -> bool:
    """Write a private key once, mode 0600; an existing file is kept (rerunning is safe). True if written."""
    if path.exists():
        return False
    write_atomically(path, pem, 0o600, _owner_ids(owner))
    return True


def rotate_dkim(settings: HardenSettings, layout: Layout, new_selector: str) -> NewKey:
    """Make the RSA key of `new_selector` beside the current one (the current stays in use)."""
    if new_selector == settings.selector:
        raise ApplyError(f"the new selector {new_selector!r} is the one in use; pick another")
    path = Path(layout.dkim_key(settings.domain, new_selector))
    if path.exists():
        key = opendkim.load_key(path.read_bytes())
        return NewKey(path, key.public_key(), created=False)
    key = opendkim.generate_rsa_key()
    write_new_key(path, opendkim.key_pem(key), opendkim.USER)
    return NewKey(path, key.public_key(), created=True)


def next_tls_key(settings: HardenSettings, out: Path) -> NewKey:
    """Make the next TLS key at `out` (same algorithm as the current one), or read the one there."""
    from cryptography.hazmat.primitives.asymmetric import ec, rsa
    from cryptography.hazmat.primitives.serialization import (
        Encoding,
        NoEncryption,
        PrivateFormat,
        load_pem_private_key,
    )

    if out.exists():
        return NewKey(out, load_public_key(out), created=False)
    current = load_pem_private_key(load_tls(settings).key_pem, password=None)
    key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey
    if isinstance(current, ec.EllipticCurvePrivateKey):
        key = ec.generate_private_key(current.curve)
    else:
        key = rsa.generate_private_key(
            public_exponent=65537, key_size=max(2048, getattr(current, "key_size", 0))
        )
    write_new_key(out, key.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption()), None)
    return NewKey(out, key.public_key(), created=True)
