"""`mecsa harden ...` through the CLI: records, plan/apply round trip, rollover helpers, bad input."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from mecsa.cli import app

from .conftest import FIXTURES

FLAGS = [
    "--domain", "example.test", "--mx-host", "mx.example.test", "--ipv4", "127.0.0.25",
    "--cert", str(FIXTURES / "tls-cert.pem"), "--key", str(FIXTURES / "tls-key.pem"),
    "--postmaster", "root", "--selector", "s202611",
]  # fmt: skip


@pytest.fixture
def root(tmp_path: Path) -> Path:
    (tmp_path / "etc/postfix").mkdir(parents=True)
    shutil.copy(FIXTURES / "debian-master.cf", tmp_path / "etc/postfix/master.cf")
    dkim = tmp_path / "etc/opendkim/keys/example.test/s202611.private"
    dkim.parent.mkdir(parents=True)
    dkim.write_bytes((FIXTURES / "dkim-rsa.pem").read_bytes())
    return tmp_path


def _run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, list(args))
    return result.exit_code, result.stdout, result.stderr


def test_records_json_lists_the_records_from_the_key_on_disk(root: Path) -> None:
    code, out, _ = _run("harden", "records", *FLAGS, "--root", str(root), "--json")
    assert code == 0
    data = json.loads(out)
    by_name = {(r["name"], r["type"]): r for r in data["records"]}
    assert by_name[("example.test", "TXT")]["value"] == "v=spf1 mx -all"
    assert by_name[("s202611._domainkey.example.test", "TXT")]["value"].endswith("QIDAQAB")
    assert data["mta_sts_policy"]["url"] == "https://mta-sts.example.test/.well-known/mta-sts.txt"


def test_records_from_a_toml_file_as_zone_lines(root: Path, tmp_path: Path) -> None:
    config = tmp_path / "h.toml"
    config.write_text(
        'domain = "example.test"\nmx_host = "mx.example.test"\nipv4 = "127.0.0.25"\n'
        f'cert = "{FIXTURES / "tls-cert.pem"}"\nkey = "{FIXTURES / "tls-key.pem"}"\n'
        'postmaster = "root"\nselector = "s202611"\n'
    )
    code, out, _ = _run("harden", "records", "--config", str(config), "--root", str(root))
    assert code == 0
    assert 'example.test. 3600 IN TXT "v=spf1 mx -all"\n' in out
    assert "_25._tcp.mx.example.test. 3600 IN TLSA 3 1 1 e30cbd3b" in out


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--ipv4", "1.2.3.x"], "ipv4: '1.2.3.x' is not an IP address"),
        (["--domain", "bad..name"], "domain: "),
        (["--mynetworks", "10.0.0.1/8"], "mynetworks: "),
    ],
)
def test_bad_input_is_one_line_and_exit_2(root: Path, args: list[str], message: str) -> None:
    code, out, err = _run("harden", "plan", *FLAGS, *args, "--root", str(root))
    assert code == 2 and out == ""
    assert err.startswith("mecsa: error: ") and message in err and err.count("\n") == 1


def test_records_without_a_dkim_key_says_to_apply_first(tmp_path: Path) -> None:
    (tmp_path / "etc/postfix").mkdir(parents=True)
    shutil.copy(FIXTURES / "debian-master.cf", tmp_path / "etc/postfix/master.cf")
    code, _, err = _run("harden", "records", *FLAGS, "--root", str(tmp_path))
    assert code == 2 and "run `mecsa harden apply` first" in err


def test_plan_shows_a_diff_and_the_records(root: Path) -> None:
    code, out, _ = _run("harden", "plan", *FLAGS, "--root", str(root))
    assert code == 0
    assert "+smtp_dns_support_level = dnssec\n" in out
    assert "; DNS records to publish" in out and "options trust-ad" in out


def test_dkim_rotate_makes_a_second_key_and_prints_publish_then_switch(root: Path) -> None:
    code, out, _ = _run("harden", "dkim-rotate", *FLAGS, "--root", str(root), "--new-selector", "s202612")
    assert code == 0
    new_key = root / "etc/opendkim/keys/example.test/s202612.private"
    assert new_key.exists() and (new_key.stat().st_mode & 0o777) == 0o600
    assert 's202612._domainkey.example.test. 3600 IN TXT "v=DKIM1; k=rsa; p=' in out
    assert "3600 s" in out and 'selector = "s202612"' in out
    code, _, err = _run("harden", "dkim-rotate", *FLAGS, "--root", str(root), "--new-selector", "s202611")
    assert code == 2 and "is the one in use" in err


def test_tlsa_next_writes_a_key_once_and_prints_both_tlsa(tmp_path: Path) -> None:
    out_key = tmp_path / "next.pem"
    code, out, _ = _run("harden", "tlsa-next", *FLAGS, "--out", str(out_key))
    assert code == 0 and (out_key.stat().st_mode & 0o777) == 0o600
    lines = [line for line in out.splitlines() if " TLSA 3 1 1 " in line]
    assert len(lines) == 2 and lines[0] != lines[1]
    assert lines[0].endswith("e30cbd3b290762ac89ab12aed9fc6c8e81df3dff0e61ae377d7c312e17072466")
    before = out_key.read_bytes()
    code, again, _ = _run("harden", "tlsa-next", *FLAGS, "--out", str(out_key))
    assert code == 0 and out_key.read_bytes() == before and lines[1] in again
