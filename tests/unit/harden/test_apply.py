"""apply into a temporary root: real `postfix check`, idempotence, backups, byte-for-byte rollback."""

from __future__ import annotations

import datetime as dt
import os
import pwd
import shutil
import stat
from collections.abc import Sequence
from pathlib import Path

import pytest

from mecsa.harden.apply import ApplyError, apply_plan, make_plan
from mecsa.harden.layout import Layout
from mecsa.harden.settings import HardenSettings

from .conftest import FIXTURES

REAL_POSTFIX = pytest.mark.skipif(
    shutil.which("postfix") is None or os.geteuid() != 0,
    reason="needs the real postfix package and root (postfix check inspects ownership)",
)


def _seed(root: Path, main_cf: str | None = None) -> Layout:
    (root / "etc/postfix").mkdir(parents=True)
    (root / "etc/postfix/main.cf").write_text(main_cf or (FIXTURES / "debian-main.cf").read_text())
    shutil.copy(FIXTURES / "debian-master.cf", root / "etc/postfix/master.cf")
    return Layout.under(root)


def _snapshot(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in root.rglob("*") if p.is_file()}


def _passing(command: Sequence[str]) -> tuple[int, str]:
    return 0, ""


@REAL_POSTFIX
@pytest.mark.slow
def test_apply_passes_the_real_postfix_check_and_a_second_run_changes_nothing(
    tmp_path: Path, settings: HardenSettings
) -> None:
    layout = _seed(tmp_path)
    result = apply_plan(make_plan(settings, layout))
    checks = {c.name: c for c in result.checks}
    assert checks["postfix"].ok and not checks["postfix"].skipped, checks["postfix"].output
    assert all(c.ok for c in result.checks), result.checks
    assert str(layout.main_cf) in result.written and str(layout.main_cf) in result.backups
    key = Path(layout.dkim_key("example.test", "s202611"))
    mode = key.stat()
    assert stat.S_IMODE(mode.st_mode) == 0o600
    assert pwd.getpwuid(mode.st_uid).pw_name == "opendkim"
    assert Path(f"{layout.aliases}.db").exists()  # postalias indexed the aliases

    before = _snapshot(tmp_path)
    plan = make_plan(settings, layout)
    assert plan.pending == () and plan.new_selectors == frozenset()
    again = apply_plan(plan)
    assert not again.changed and again.notes == ()  # the CLI says "Nothing changed" once
    assert _snapshot(tmp_path) == before


@REAL_POSTFIX
@pytest.mark.slow
def test_a_broken_existing_setting_fails_the_check_and_every_file_comes_back(
    tmp_path: Path, settings: HardenSettings
) -> None:
    broken = (FIXTURES / "debian-main.cf").read_text() + "default_process_limit = many\n"
    layout = _seed(tmp_path, broken)
    (tmp_path / "etc/aliases").write_text("root: alice\n")
    before = _snapshot(tmp_path)
    with pytest.raises(ApplyError, match="default_process_limit = many"):
        apply_plan(make_plan(settings, layout))
    assert _snapshot(tmp_path) == before  # same files, byte for byte; new ones removed, no backups left


def test_rollback_without_postfix_restores_bytes_and_removes_new_files(
    tmp_path: Path, settings: HardenSettings
) -> None:
    layout = _seed(tmp_path)
    before = _snapshot(tmp_path)

    def failing(command: Sequence[str]) -> tuple[int, str]:
        return (1, "fatal: no") if command[0] == "opendmarc" else (0, "")

    with pytest.raises(ApplyError, match="opendmarc: fatal: no"):
        apply_plan(make_plan(settings, layout), runner=failing)
    assert _snapshot(tmp_path) == before


def test_backups_are_timestamped_copies_of_the_replaced_files(
    tmp_path: Path, settings: HardenSettings
) -> None:
    layout = _seed(tmp_path)
    original = Path(layout.main_cf).read_bytes()
    now = dt.datetime(2026, 11, 3, 12, 0, 0)
    result = apply_plan(make_plan(settings, layout), now=now, runner=_passing)
    backup = Path(result.backups[str(layout.main_cf)])
    assert backup.name == "main.cf.mecsa-bak-20261103T120000"
    assert backup.read_bytes() == original
    assert str(layout.opendkim_conf) not in result.backups  # it was new


def test_an_existing_dkim_key_is_reused_never_replaced(tmp_path: Path, settings: HardenSettings) -> None:
    layout = _seed(tmp_path)
    key = Path(layout.dkim_key("example.test", "s202611"))
    key.parent.mkdir(parents=True)
    key.write_bytes((FIXTURES / "dkim-rsa.pem").read_bytes())
    plan = make_plan(settings, layout)
    assert plan.new_selectors == frozenset({"s202611-ed25519"})
    apply_plan(plan, runner=_passing)
    assert key.read_bytes() == (FIXTURES / "dkim-rsa.pem").read_bytes()
    dkim = [r for r in plan.records().records if r.owner == "s202611._domainkey.example.test"]
    assert len(dkim) == 1 and dkim[0].value.endswith("QIDAQAB")


def test_plan_diff_shows_changes_but_never_a_private_key(tmp_path: Path, settings: HardenSettings) -> None:
    layout = _seed(tmp_path)
    diff = make_plan(settings, layout).diff()
    assert "+smtp_tls_security_level = dane\n" in diff
    assert "\n-myhostname = vm\n" in diff and "\n+myhostname = mx.example.test\n" in diff
    assert "(new private key, mode 0600, not shown)" in diff
    assert "PRIVATE KEY" not in diff
