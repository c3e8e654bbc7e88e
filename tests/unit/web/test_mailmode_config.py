"""`mecsa serve --mailmode FILE`: the TOML file is checked up front; every problem is one line, exit 2."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from mecsa.cli import app
from mecsa.web.mailmode_config import MailModeConfigError, load_mailmode_config

runner = CliRunner()


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "mailmode.toml"
    path.write_text(text)
    return path


def test_a_full_file_is_read_with_paths_from_its_directory(tmp_path: Path) -> None:
    (tmp_path / "dkim.pem").write_text("key")
    path = _write(
        tmp_path,
        'domain = "MailMode.Example"\nstore = "mm.sqlite3"\nlisten = "[::1]:2525"\n'
        'dkim_key = "dkim.pem"\npublic_url = "https://mecsa.example/"\nprobes_per_client = 2\n'
        'window_minutes = 5\nreport_addresses = ["Dmarc@Example.org"]\n',
    )
    config = load_mailmode_config(path)
    assert config.domain == "mailmode.example"
    assert config.store == str(tmp_path / "mm.sqlite3") and config.dkim_key == str(tmp_path / "dkim.pem")
    assert config.listen == ("::1", 2525)
    assert config.report_url == "https://mecsa.example/mail/{token}"
    assert (config.probes_per_client, config.window_minutes) == (2, 5.0)
    assert config.report_addresses == ("dmarc@example.org",)
    assert load_mailmode_config(path, public_url="http://10.0.0.1:8080").report_url == (
        "http://10.0.0.1:8080/mail/{token}"
    )


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('store = "s"\n', "'domain' is required"),
        ('domain = "d.example"\n', "'store' is required"),
        ('domain = "d.example"\nstore = "s"\nlisten = "nowhere"\n', "listen 'nowhere'"),
        ('domain = "d.example"\nstore = "s"\nlisten = "127.0.0.1:99999"\n', "bad port"),
        ('domain = "d.example"\nstore = "s"\ntls_cert = "c.pem"\n', "go together"),
        ('domain = "d.example"\nstore = "s"\ndkim_key = "missing.pem"\n', "no such file"),
        ('domain = "d.example"\nstore = "s"\npublic_url = "ftp://x"\n', "public_url"),
        ('domain = "d.example"\nstore = "s"\nprobes_per_client = 0\n', "positive integer"),
        ('domain = "d.example"\nstore = "s"\nautoreply = "yes"\n', "true or false"),
        ('domain = "d.example"\nstore = "s"\nlisen = "1.2.3.4:25"\n', "unknown key(s) lisen"),
        ('domain = "not a domain!"\nstore = "s"\n', "domain 'not a domain!'"),
        ("domain = \n", "not TOML"),
    ],
)
def test_bad_files_are_refused_with_one_line(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(MailModeConfigError) as raised:
        load_mailmode_config(_write(tmp_path, text))
    assert message in str(raised.value) and "\n" not in str(raised.value)


def test_serve_refuses_a_bad_file_and_public_url_without_mail_mode(tmp_path: Path) -> None:
    store = str(tmp_path / "s.sqlite")
    bad_domain = str(_write(tmp_path, 'domain = 1\nstore = "s"\n'))
    for args, message in (
        (["serve", "--mailmode", str(tmp_path / "none.toml"), "--store", store], "none.toml"),
        (["serve", "--mailmode", bad_domain, "--store", store], "domain must be"),
        (["serve", "--public-url", "https://x.example", "--store", store], "--public-url is for mail mode"),
    ):
        result = runner.invoke(app, args)
        assert result.exit_code == 2, (args, result.output)
        errors = [line for line in result.output.splitlines() if line.startswith("mecsa: error:")]
        assert len(errors) == 1 and message in errors[0], (args, result.output)
