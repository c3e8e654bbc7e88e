"""Every command answers bad input with one line on stderr and exit status 2, before doing any work."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
from click.testing import CliRunner

from mecsa.cli import app

# 127.0.0.1:9 (discard) is never asked: each case must stop while checking its arguments.
RESOLVER = ["--resolver", "127.0.0.1:9", "--timeout", "0.2"]


def _bad_bundles(tmp: Path) -> list[str]:
    """Readable files that are not PEM certificate bundles."""
    files = {
        "text.pem": "hello, this is not a certificate\n",
        "empty.pem": "",
        "broken.pem": "-----BEGIN CERTIFICATE-----\nnot base64 at all!\n-----END CERTIFICATE-----\n",
        "key-only.pem": "-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEIA==\n-----END PRIVATE KEY-----\n",
    }
    for name, text in files.items():
        (tmp / name).write_text(text)
    return [str(tmp / name) for name in files]


def _cases(tmp: Path) -> list[list[str]]:
    missing = str(tmp / "missing.pem")
    no_dir = str(tmp / "no-such-dir" / "report.html")
    bad = _bad_bundles(tmp)
    return [
        *(["assess", "example.test", *RESOLVER, "--ca-file", b] for b in bad),
        *(["starttls", "mx.example.test", *RESOLVER, "--ca-file", b] for b in bad),
        ["mailmode", "probe", "u@example.test", "--from", "t@recv.test", *RESOLVER, "--ca-file", bad[0]],
        ["assess", "example.test", *RESOLVER, "--ca-file", missing],
        ["assess", "example.test", *RESOLVER, "--ca-file", str(tmp)],
        ["assess", "example.test", *RESOLVER, "--html", no_dir],
        ["assess", "example.test", *RESOLVER, "--html", str(tmp)],
        ["starttls", "mx.example.test", *RESOLVER, "--ca-file", missing],
        ["starttls", "mx.example.test:0", *RESOLVER],
        ["starttls", "mx.example.test:99999", *RESOLVER],
        ["demo", "--html", no_dir],
    ]


@pytest.mark.parametrize("index", range(17))
def test_bad_input_is_one_line_and_exit_2(index: int, tmp_path: Path) -> None:
    args = _cases(tmp_path)[index]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 2, (args, result.output)
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("mecsa: error: "), (args, result.stderr)


def test_bad_ca_file_message_names_the_file(tmp_path: Path) -> None:
    bad = _bad_bundles(tmp_path)[0]
    result = CliRunner().invoke(app, ["assess", "example.test", *RESOLVER, "--ca-file", bad])
    assert result.exit_code == 2
    assert result.stderr.strip() == f"mecsa: error: --ca-file {bad}: not a PEM certificate bundle"


def test_a_crashed_check_logs_its_traceback_to_the_debug_log(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    import asyncio
    import logging

    from mecsa.assess import run_check
    from mecsa.checks import tls_rpt
    from mecsa.dns.resolver import DnsClient, Nameserver, Resolver
    from mecsa.observe import Context

    async def broken(ctx: Context) -> tls_rpt.TlsRptObservation:
        raise RuntimeError("boom in observe")

    spec = dataclasses.replace(tls_rpt.CHECK, observe=broken)
    ctx = Context("example.test", Resolver(DnsClient([Nameserver("127.0.0.1", 9)])))
    with caplog.at_level(logging.DEBUG, logger="mecsa"):
        result = asyncio.run(run_check(spec, ctx))
    assert [f.id for f in result.findings] == ["tls-rpt.check_error"]
    assert "RuntimeError: boom in observe" in result.findings[0].message
    records = [r for r in caplog.records if r.name == "mecsa.assess"]
    assert records and records[0].exc_info is not None
    assert "boom in observe" in caplog.text and "Traceback" in caplog.text


def test_mecsa_debug_env_turns_on_the_debug_log(monkeypatch: pytest.MonkeyPatch) -> None:
    from mecsa.cli import debug_wanted

    monkeypatch.setenv("MECSA_DEBUG", "1")
    assert debug_wanted()
    monkeypatch.setenv("MECSA_DEBUG", "0")
    assert not debug_wanted()
