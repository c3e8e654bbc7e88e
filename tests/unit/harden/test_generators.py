"""Golden files for every generated file, from fixed keys and the Debian package's own files."""

from __future__ import annotations

from pathlib import PurePosixPath

import pytest

from mecsa.harden.files import MissingFileError, desired_files
from mecsa.harden.layout import Layout
from mecsa.harden.settings import HardenSettings

from .conftest import FIXTURES, check_golden, fixed_dkim_keys

DEBIAN = {
    "/etc/postfix/main.cf": (FIXTURES / "debian-main.cf").read_text(),
    "/etc/postfix/master.cf": (FIXTURES / "debian-master.cf").read_text(),
    "/etc/default/opendkim": (FIXTURES / "debian-default-opendkim").read_text(),
}


def _golden_name(path: str) -> str:
    return PurePosixPath(path).as_posix().lstrip("/").replace("/", "__")


def _files(settings: HardenSettings, existing: dict[str, str]) -> dict[str, bytes]:
    files = desired_files(settings, Layout(), existing.get, fixed_dkim_keys())
    return {f.path: f.content for f in files}


def test_every_generated_file_matches_its_golden_file(settings: HardenSettings) -> None:
    files = _files(settings, DEBIAN)
    expected = {
        "/etc/postfix/main.cf",
        "/etc/postfix/master.cf",
        "/etc/aliases",
        "/etc/opendkim.conf",
        "/etc/opendkim/KeyTable",
        "/etc/opendkim/SigningTable",
        "/etc/opendkim/TrustedHosts",
        "/etc/default/opendkim",
        "/etc/opendmarc.conf",
        "/etc/opendmarc/ignore.hosts",
        "/etc/default/opendmarc",
        "/etc/postfix-policyd-spf-python/policyd-spf.conf",
        "/etc/unbound/unbound.conf.d/mecsa-dane.conf",
        "/etc/opendkim/keys/example.test/s202611.private",
        "/etc/opendkim/keys/example.test/s202611-ed25519.private",
        "/var/www/mta-sts/example.test/.well-known/mta-sts.txt",
        "/etc/nginx/sites-available/mta-sts.example.test.conf",
    }
    assert set(files) == expected
    for path, content in files.items():
        if path.endswith(".private"):
            assert (
                content
                == (FIXTURES / ("dkim-rsa.pem" if "-ed" not in path else "dkim-ed25519.pem")).read_bytes()
            )
            continue
        check_golden(_golden_name(path), content)


def test_the_key_files_are_0600_and_owned_by_opendkim(settings: HardenSettings) -> None:
    files = desired_files(settings, Layout(), DEBIAN.get, fixed_dkim_keys())
    keys = [f for f in files if f.path.endswith(".private")]
    assert keys and all(f.mode == 0o600 and f.owner == "opendkim" and f.secret for f in keys)


def test_main_cf_keeps_every_unmanaged_line_of_the_debian_file(settings: HardenSettings) -> None:
    main = _files(settings, DEBIAN)["/etc/postfix/main.cf"].decode()
    managed: tuple[str, ...] = ("myhostname", "alias_maps", "alias_database", "mydestination", "mynetworks")
    managed += (
        "smtpd_tls_cert_file",
        "smtpd_tls_key_file",
        "smtpd_tls_security_level",
        "smtp_tls_security_level",
    )
    for line in DEBIAN["/etc/postfix/main.cf"].splitlines():
        if not line.startswith(managed):
            assert line in main.splitlines()


def test_the_generated_files_are_stable_when_generated_again_from_themselves(
    settings: HardenSettings,
) -> None:
    first = _files(settings, DEBIAN)
    again = _files(settings, {p: c.decode() for p, c in first.items()})
    assert again == first


def test_a_non_system_root_gets_its_own_queue_and_paths_inside_the_root(settings: HardenSettings) -> None:
    layout = Layout(PurePosixPath("/srv/mx1"))
    existing = {f"/srv/mx1{p}": text for p, text in DEBIAN.items()}
    files = {f.path: f.content.decode() for f in desired_files(settings, layout, existing.get, {})}
    main = files["/srv/mx1/etc/postfix/main.cf"]
    assert "queue_directory = /srv/mx1/var/spool/postfix\n" in main
    assert "data_directory = /srv/mx1/var/lib/postfix\n" in main
    assert "alias_maps = hash:/srv/mx1/etc/aliases\n" in main
    assert "KeyTable\t\t/srv/mx1/etc/opendkim/KeyTable\n" in files["/srv/mx1/etc/opendkim.conf"]
    assert (
        "argv=/usr/bin/policyd-spf /srv/mx1/etc/postfix-policyd-spf-python/policyd-spf.conf"
        in (files["/srv/mx1/etc/postfix/master.cf"])
    )


def test_without_master_cf_there_is_nothing_to_harden(settings: HardenSettings) -> None:
    with pytest.raises(MissingFileError, match=r"master\.cf does not exist"):
        nothing: dict[str, str] = {}
        desired_files(settings, Layout(), nothing.get, {})


def test_resolver_existing_writes_no_unbound_file(settings: HardenSettings) -> None:
    from .conftest import make_settings

    files = _files(make_settings(resolver="existing"), DEBIAN)
    assert not any("unbound" in p for p in files)
