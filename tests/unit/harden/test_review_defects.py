"""One test per defect the administrator's review of `mecsa harden` found (issue 13)."""

from __future__ import annotations

import datetime as dt
import os
import pwd
import shutil
import stat
from collections.abc import Sequence
from pathlib import Path

import pytest
from click.testing import CliRunner

from mecsa.cli import app
from mecsa.harden.apply import ApplyError, apply_plan, make_plan
from mecsa.harden.conffile import main_cf_values
from mecsa.harden.layout import Layout
from mecsa.harden.settings import SettingsError, settings_from_mapping

from .conftest import FIXTURES, base_settings, make_settings, write_tls_pair

DEBIAN_TLS = (
    "# TLS parameters\n"
    "smtpd_tls_cert_file=/etc/ssl/certs/ssl-cert-snakeoil.pem\n"
    "smtpd_tls_key_file=/etc/ssl/private/ssl-cert-snakeoil.key\n"
    "smtpd_tls_security_level=may\n"
)


def _seed(root: Path, main_cf: str | None = None) -> Layout:
    (root / "etc/postfix").mkdir(parents=True)
    (root / "etc/postfix/main.cf").write_text(main_cf or (FIXTURES / "debian-main.cf").read_text())
    shutil.copy(FIXTURES / "debian-master.cf", root / "etc/postfix/master.cf")
    return Layout.under(root)


def _passing(command: Sequence[str]) -> tuple[int, str]:
    return 0, ""


def _written(layout: Layout, relative: str) -> str:
    return Path(layout.path(relative)).read_text()


# --- merge, never replace --------------------------------------------------------------------------


def test_another_domains_keytable_and_signingtable_entries_survive(tmp_path: Path) -> None:
    layout = _seed(tmp_path)
    tables = Path(layout.opendkim_dir)
    tables.mkdir(parents=True)
    other_key = "mail._domainkey.other.test other.test:mail:/etc/opendkim/keys/other.test/mail.private\n"
    (tables / "KeyTable").write_text(f"# keys\n{other_key}")
    (tables / "SigningTable").write_text("*@other.test mail._domainkey.other.test\n")
    (tables / "TrustedHosts").write_text("127.0.0.1\n10.1.0.0/16\n")
    apply_plan(make_plan(make_settings(), layout), runner=_passing)
    key_table = _written(layout, "/etc/opendkim/KeyTable")
    assert key_table.startswith(f"# keys\n{other_key}")
    assert "s202611._domainkey.example.test example.test:s202611:" in key_table
    signing = _written(layout, "/etc/opendkim/SigningTable")
    assert signing.startswith("*@other.test mail._domainkey.other.test\n")
    assert "*@example.test s202611._domainkey.example.test\n" in signing
    assert _written(layout, "/etc/opendkim/TrustedHosts").startswith("127.0.0.1\n10.1.0.0/16\n")


def test_opendkim_conf_keeps_logwhy_and_other_settings(tmp_path: Path) -> None:
    layout = _seed(tmp_path)
    Path(layout.opendkim_conf).write_text(
        "# my opendkim\nLogWhy\t\t\tyes\nSocket\t\t\tlocal:/run/opendkim/opendkim.sock\nSubDomains\tno\n"
    )
    Path(layout.opendmarc_conf).write_text("HistoryFile /run/opendmarc/opendmarc.dat\n")
    apply_plan(make_plan(make_settings(), layout), runner=_passing)
    conf = _written(layout, "/etc/opendkim.conf")
    assert conf.startswith(
        "# my opendkim\nLogWhy\t\t\tyes\nSocket\t\t\tinet:8891@127.0.0.1\nSubDomains\tno\n"
    )
    assert "\nKeyTable\t\t" in conf and conf.count("Socket") == 1
    assert _written(layout, "/etc/opendmarc.conf").startswith("HistoryFile /run/opendmarc/opendmarc.dat\n")
    assert make_plan(make_settings(), layout).pending == ()  # and a second run changes nothing


def test_a_second_domain_added_in_a_later_run_keeps_the_first(tmp_path: Path) -> None:
    layout = _seed(tmp_path)
    apply_plan(make_plan(make_settings(), layout), runner=_passing)
    apply_plan(make_plan(make_settings(domain="second.test"), layout), runner=_passing)
    signing = _written(layout, "/etc/opendkim/SigningTable")
    assert "*@example.test s202611._domainkey.example.test\n" in signing
    assert "*@second.test s202611._domainkey.second.test\n" in signing
    destinations = main_cf_values(_written(layout, "/etc/postfix/main.cf"))["mydestination"]
    assert "example.test" in destinations.split(", ") and "second.test" in destinations.split(", ")
    assert Path(layout.dkim_key("example.test", "s202611")).exists()


def test_domains_setting_serves_several_domains_with_a_key_and_records_each(tmp_path: Path) -> None:
    layout = _seed(tmp_path)
    settings = make_settings(domains=["second.test", "example.test"])
    assert settings.domains == ("example.test", "second.test")
    plan = make_plan(settings, layout)
    assert ("second.test", "s202611") in plan.new_keys
    apply_plan(plan, runner=_passing)
    key_table = _written(layout, "/etc/opendkim/KeyTable")
    assert key_table.count("._domainkey.second.test second.test:") == 2  # RSA and Ed25519
    sets = {s.domain: s for s in plan.record_sets()}
    second = {(r.owner, r.rtype) for r in sets["second.test"].records}
    assert ("second.test", "MX") in second and ("s202611._domainkey.second.test", "TXT") in second
    assert ("_25._tcp.mx.example.test", "TLSA") not in second  # the host's records once, with the primary
    assert ("_25._tcp.mx.example.test", "TLSA") in {(r.owner, r.rtype) for r in sets["example.test"].records}


def test_the_mode_and_owner_of_existing_files_are_kept(tmp_path: Path) -> None:
    layout = _seed(tmp_path)
    main_cf = Path(layout.main_cf)
    main_cf.chmod(0o640)
    if os.geteuid() == 0:
        os.chown(main_cf, 0, 7)
    apply_plan(make_plan(make_settings(), layout), runner=_passing)
    info = main_cf.stat()
    assert stat.S_IMODE(info.st_mode) == 0o640
    if os.geteuid() == 0:
        assert info.st_gid == 7
    assert stat.S_IMODE(Path(layout.opendkim_conf).stat().st_mode) == 0o644  # a new file: the default


@pytest.mark.skipif(os.geteuid() != 0, reason="giving a file to another user needs root")
def test_an_existing_dkim_key_opendkim_cannot_read_is_given_to_it_byte_for_byte(tmp_path: Path) -> None:
    # found by the lab: a key made as root left OpenDKIM failing every outgoing message with 4.7.1
    layout = _seed(tmp_path)
    key = Path(layout.dkim_key("example.test", "s202611"))
    key.parent.mkdir(parents=True)
    key.write_bytes((FIXTURES / "dkim-rsa.pem").read_bytes())
    key.chmod(0o644)
    plan = make_plan(make_settings(), layout)
    assert "(private key kept, now mode 0600 and owner opendkim, not shown)" in plan.diff()
    apply_plan(plan, runner=_passing)
    info = key.stat()
    assert stat.S_IMODE(info.st_mode) == 0o600 and info.st_uid == pwd.getpwnam("opendkim").pw_uid
    assert key.read_bytes() == (FIXTURES / "dkim-rsa.pem").read_bytes()
    assert make_plan(make_settings(), layout).pending == ()


# --- absolute paths, the legacy pair ---------------------------------------------------------------


def test_a_relative_cert_path_is_written_absolute(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    shutil.copy(FIXTURES / "tls-cert.pem", tmp_path / "x.pem")
    shutil.copy(FIXTURES / "tls-key.pem", tmp_path / "x.key")
    monkeypatch.chdir(tmp_path)
    (tmp_path / "pki").mkdir()
    shutil.move(tmp_path / "x.pem", tmp_path / "pki/x.pem")
    settings = make_settings(cert="pki/x.pem", key="x.key")
    assert settings.cert == tmp_path / "pki/x.pem" and settings.key.is_absolute()
    layout = _seed(tmp_path / "root")
    plan = make_plan(settings, layout)
    main = next(f for f in plan.files if f.path == Path(layout.main_cf)).desired.content.decode()
    assert f"smtpd_tls_chain_files = {tmp_path}/x.key, {tmp_path}/pki/x.pem\n" in main


def test_a_symlinked_cert_path_is_not_resolved_to_its_target(tmp_path: Path) -> None:
    # Certbot's live/ names point into archive/, and renewal re-points them
    (tmp_path / "archive").mkdir()
    (tmp_path / "live").mkdir()
    shutil.copy(FIXTURES / "tls-cert.pem", tmp_path / "archive/cert1.pem")
    (tmp_path / "live/fullchain.pem").symlink_to(tmp_path / "archive/cert1.pem")
    assert make_settings(cert=str(tmp_path / "live/fullchain.pem")).cert == tmp_path / "live/fullchain.pem"


def test_the_legacy_cert_and_key_pair_is_removed_and_named_in_the_plan(tmp_path: Path) -> None:
    layout = _seed(tmp_path, (FIXTURES / "debian-main.cf").read_text() + DEBIAN_TLS)
    plan = make_plan(make_settings(), layout)
    assert any("smtpd_tls_cert_file = /etc/ssl/certs/ssl-cert-snakeoil.pem" in n for n in plan.notes)
    assert any("smtpd_tls_key_file = /etc/ssl/private/ssl-cert-snakeoil.key" in n for n in plan.notes)
    apply_plan(plan, runner=_passing)
    main = _written(layout, "/etc/postfix/main.cf")
    assert "smtpd_tls_cert_file" not in main and "smtpd_tls_key_file" not in main
    assert "# TLS parameters\nsmtpd_tls_security_level=may\n" in main
    assert "smtpd_tls_chain_files = " in main
    assert make_plan(make_settings(), layout).notes == ()


# --- milter lists ----------------------------------------------------------------------------------


def _merged_values(tmp_path: Path, milters: str) -> dict[str, str]:
    layout = _seed(tmp_path, (FIXTURES / "debian-main.cf").read_text() + milters)
    apply_plan(make_plan(make_settings(), layout), runner=_passing)
    return main_cf_values(_written(layout, "/etc/postfix/main.cf"))


def test_non_smtpd_milters_referring_to_smtpd_milters_gets_nothing_twice(tmp_path: Path) -> None:
    values = _merged_values(
        tmp_path, "smtpd_milters = unix:/run/clamav.ctl\nnon_smtpd_milters = $smtpd_milters\n"
    )
    assert values["smtpd_milters"] == "unix:/run/clamav.ctl, inet:127.0.0.1:8891, inet:127.0.0.1:8893"
    assert values["non_smtpd_milters"] == "$smtpd_milters"


def test_a_milter_group_is_written_back_as_postfix_reads_it(tmp_path: Path) -> None:
    values = _merged_values(tmp_path, "smtpd_milters = { inet:10.0.0.5:7357, connect_timeout=5s }\n")
    assert values["smtpd_milters"] == (
        "{ inet:10.0.0.5:7357, connect_timeout=5s }, inet:127.0.0.1:8891, inet:127.0.0.1:8893"
    )


def test_our_milter_inside_a_group_is_not_added_again(tmp_path: Path) -> None:
    values = _merged_values(
        tmp_path, "smtpd_milters = { inet:127.0.0.1:8891, default_action=accept }, inet:127.0.0.1:8893\n"
    )
    assert values["smtpd_milters"] == "{ inet:127.0.0.1:8891, default_action=accept }, inet:127.0.0.1:8893"


def _cli(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, list(args))
    return result.exit_code, result.stdout, result.stderr


def _flags(root: Path) -> list[str]:
    return [
        "--domain", "example.test", "--mx-host", "mx.example.test", "--ipv4", "127.0.0.25",
        "--cert", str(FIXTURES / "tls-cert.pem"), "--key", str(FIXTURES / "tls-key.pem"),
        "--postmaster", "root", "--selector", "s202611", "--root", str(root),
    ]  # fmt: skip


def test_plan_and_apply_print_the_same_warnings_for_both_milter_lists(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("mecsa.harden.apply.run_command", _passing)
    milters = "smtpd_milters = unix:/run/opendkim/opendkim.sock\nnon_smtpd_milters = $smtpd_milters\n"
    _seed(tmp_path, (FIXTURES / "debian-main.cf").read_text() + milters)
    _, plan_out, _ = _cli("harden", "plan", *_flags(tmp_path))
    warnings = [line for line in plan_out.splitlines() if line.startswith("warning: ")]
    assert any(w.startswith("warning: smtpd_milters also lists unix:/run/opendkim") for w in warnings)
    assert any(w.startswith("warning: non_smtpd_milters (references expanded) also lists") for w in warnings)
    code, apply_out, _ = _cli("harden", "apply", *_flags(tmp_path))
    assert code == 0
    assert [line for line in apply_out.splitlines() if line.startswith("warning: ")] == warnings


# --- certificates and the postmaster ---------------------------------------------------------------


def test_an_expired_certificate_is_refused(tmp_path: Path) -> None:
    now = dt.datetime.now(dt.UTC)
    cert, key = write_tls_pair(
        tmp_path, not_before=now - dt.timedelta(days=100), not_after=now - dt.timedelta(days=1)
    )
    with pytest.raises(SettingsError, match=r"cert: .* expired on "):
        make_settings(cert=str(cert), key=str(key))


def test_a_certificate_not_yet_valid_is_refused(tmp_path: Path) -> None:
    now = dt.datetime.now(dt.UTC)
    cert, key = write_tls_pair(
        tmp_path, not_before=now + dt.timedelta(days=2), not_after=now + dt.timedelta(days=90)
    )
    with pytest.raises(SettingsError, match=r"cert: .* is not valid before "):
        make_settings(cert=str(cert), key=str(key))


def test_a_certificate_with_under_21_days_left_is_warned_about(tmp_path: Path) -> None:
    now = dt.datetime.now(dt.UTC)
    cert, key = write_tls_pair(tmp_path / "tls", not_after=now + dt.timedelta(days=10, hours=1))
    plan = make_plan(make_settings(cert=str(cert), key=str(key)), _seed(tmp_path / "root"))
    assert [w for w in plan.warnings if "expires in 10 day(s)" in w]
    cert, key = write_tls_pair(tmp_path / "tls", not_after=now + dt.timedelta(days=22))
    plan = make_plan(make_settings(cert=str(cert), key=str(key)), _seed(tmp_path / "root2"))
    assert not [w for w in plan.warnings if "expires" in w]


def test_a_postmaster_that_does_not_exist_is_refused(tmp_path: Path) -> None:
    layout = _seed(tmp_path)
    with pytest.raises(
        ApplyError, match="postmaster: 'nosuchuser42' is neither a user of this system nor an alias"
    ):
        make_plan(make_settings(postmaster="nosuchuser42"), layout)
    code, _, err = _cli("harden", "plan", *_flags(tmp_path), "--postmaster", "nosuchuser42")
    assert code == 2 and "nosuchuser42" in err and err.count("\n") == 1


def test_a_postmaster_that_is_an_alias_or_an_address_is_accepted(tmp_path: Path) -> None:
    layout = _seed(tmp_path)
    Path(layout.aliases).write_text("admins: root, alice@example.org\n")
    assert make_plan(make_settings(postmaster="admins"), layout).settings.postmaster == "admins"
    assert make_plan(make_settings(postmaster="someone@example.org"), layout).settings.postmaster


# --- one message -----------------------------------------------------------------------------------


def test_apply_with_nothing_to_change_says_so_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("mecsa.harden.apply.run_command", _passing)
    _seed(tmp_path)
    assert _cli("harden", "apply", *_flags(tmp_path))[0] == 0
    code, out, _ = _cli("harden", "apply", *_flags(tmp_path))
    assert code == 0
    assert out.lower().count("nothing") == 1 and "Nothing changed: the setup is already in place." in out


def test_without_domain_the_first_of_domains_is_the_primary() -> None:
    raw = {k: v for k, v in base_settings(domains=["a.test", "b.test"]).items() if k != "domain"}
    assert settings_from_mapping(raw).domains == ("a.test", "b.test")


REAL_POSTFIX = pytest.mark.skipif(
    shutil.which("postconf") is None or shutil.which("opendkim") is None or os.geteuid() != 0,
    reason="needs the real postfix and opendkim packages and root",
)


@REAL_POSTFIX
def test_postfix_and_opendkim_read_the_merged_files_as_intended(tmp_path: Path) -> None:
    """The real checks pass on Debian's files with another domain's key, a group and a reference."""
    import subprocess

    milters = (
        "smtpd_milters = { inet:127.0.0.1:11332, connect_timeout=5s }\nnon_smtpd_milters = $smtpd_milters\n"
    )
    layout = _seed(tmp_path, (FIXTURES / "debian-main.cf").read_text() + DEBIAN_TLS + milters)
    other_key = Path(layout.dkim_key("other.test", "mail"))
    other_key.parent.mkdir(parents=True)
    shutil.copy(FIXTURES / "dkim-rsa.pem", other_key)
    other_key.chmod(0o600)
    Path(layout.opendkim_dir, "KeyTable").write_text(
        f"mail._domainkey.other.test other.test:mail:{other_key}\n"
    )
    Path(layout.opendkim_dir, "SigningTable").write_text("*@other.test mail._domainkey.other.test\n")
    if Path("/etc/opendkim.conf").exists():
        shutil.copy("/etc/opendkim.conf", layout.opendkim_conf)  # Debian's own, as installed here
    with Path(layout.opendkim_conf).open("a") as handle:
        handle.write("LogWhy\t\t\tyes\n")
    result = apply_plan(make_plan(make_settings(), layout))
    assert all(c.ok for c in result.checks), result.checks
    assert {c.name for c in result.checks if not c.skipped} >= {"postfix", "opendkim"}

    def postconf(*args: str) -> str:
        done = subprocess.run(
            ["postconf", "-c", str(layout.postfix_dir), *args], capture_output=True, text=True, check=True
        )
        return done.stdout.strip()

    expanded = postconf("-xh", "non_smtpd_milters")  # Postfix's own reading, references expanded
    assert (
        expanded == "{ inet:127.0.0.1:11332, connect_timeout=5s }, inet:127.0.0.1:8891, inet:127.0.0.1:8893"
    )
    assert postconf("-n", "smtpd_tls_cert_file", "smtpd_tls_key_file") == ""  # the legacy pair is gone
    conf = Path(layout.opendkim_conf).read_text()
    assert "LogWhy\t\t\tyes\n" in conf


def test_records_json_lists_every_domain_of_a_toml_with_domains(tmp_path: Path) -> None:
    root = tmp_path / "root"
    _seed(root)
    config = tmp_path / "h.toml"
    config.write_text(
        'domains = ["example.test", "second.test"]\nmx_host = "mx.example.test"\nipv4 = "127.0.0.25"\n'
        f'cert = "{FIXTURES / "tls-cert.pem"}"\nkey = "{FIXTURES / "tls-key.pem"}"\n'
        'postmaster = "root"\nselector = "s202611"\n'
    )
    assert _cli("harden", "apply", "--config", str(config), "--root", str(root))[0] == 0
    code, out, err = _cli("harden", "records", "--config", str(config), "--root", str(root), "--json")
    assert code == 0, err
    import json

    data = json.loads(out)
    assert data["domain"] == "example.test"
    (second,) = data["other_domains"]
    names = {(r["name"], r["type"]) for r in second["records"]}
    assert ("second.test", "MX") in names and ("s202611._domainkey.second.test", "TXT") in names


def test_under_a_staged_root_a_system_cert_path_found_only_there_is_used(tmp_path: Path) -> None:
    root = tmp_path / "staged"
    live = root / "etc/letsencrypt/live/mx.example.test"
    live.mkdir(parents=True)
    shutil.copy(FIXTURES / "tls-cert.pem", live / "fullchain.pem")
    shutil.copy(FIXTURES / "tls-key.pem", live / "privkey.pem")
    raw = base_settings(
        cert="/etc/letsencrypt/live/mx.example.test/fullchain.pem",
        key="/etc/letsencrypt/live/mx.example.test/privkey.pem",
    )
    settings = settings_from_mapping(raw, root=root)
    assert settings.cert == live / "fullchain.pem" and settings.key == live / "privkey.pem"
    with pytest.raises(SettingsError, match="cert: cannot read /etc/letsencrypt/live/"):
        settings_from_mapping(raw)  # without the root it is the system's path, which is not there
