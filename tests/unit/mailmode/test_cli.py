"""`mecsa mailmode serve | report | zone | probe`, driven as a user would (subprocess and CliRunner)."""

from __future__ import annotations

import json
import os
import signal
import smtplib
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from mecsa.cli import app
from mecsa.cli.mailmode import parse_listen
from mecsa.dns.zoneserver import ThreadedZoneServer, ZoneData
from tests.unit.mailmode.certs import write_self_signed
from tests.unit.mailmode.signing import message, sign_rsa
from tests.unit.mailmode.zones import zones

TOKEN = "cli12345cli67890"


@pytest.fixture(scope="module")
def dns_server() -> Iterator[str]:
    with ThreadedZoneServer(ZoneData.from_texts(zones())) as running:
        yield running.address


def _invoke(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, list(args))
    return result.exit_code, result.output


def test_parse_listen_forms() -> None:
    assert parse_listen("127.0.0.1") == ("127.0.0.1", 25)
    assert parse_listen("127.0.0.1:2525") == ("127.0.0.1", 2525)
    assert parse_listen("[::1]:26") == ("::1", 26)
    assert parse_listen(":0") == ("0.0.0.0", 0)


def test_serve_rejects_half_a_tls_pair(tmp_path: Path) -> None:
    code, out = _invoke(
        "mailmode", "serve", "--domain", "r.test", "--listen", "127.0.0.1:0", "--tls-cert", "x"
    )
    assert code == 2 and "--tls-cert and --tls-key go together" in out


def test_serve_then_report_json_and_html(tmp_path: Path, dns_server: str) -> None:
    store = tmp_path / "store"
    store.mkdir()
    cert, key, _ = write_self_signed(tmp_path, "mx.receiver.test")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    args = [
        "mailmode",
        "serve",
        "--domain",
        "receiver.test",
        "--listen",
        "127.0.0.1:0",
        "--store",
        str(store),
    ]
    args += ["--resolver", dns_server, "--no-assess", "--tls-cert", cert, "--tls-key", key]
    proc = subprocess.Popen(
        [sys.executable, "-m", "mecsa", *args], stderr=subprocess.PIPE, text=True, env=env, cwd=tmp_path
    )
    try:
        assert proc.stderr is not None
        banner = proc.stderr.readline()
        assert "receiving for receiver.test on 127.0.0.1:" in banner and "STARTTLS on" in banner
        port = int(banner.split("127.0.0.1:")[1].split()[0])
        raw = sign_rsa(message(to=f"{TOKEN}@receiver.test"), "s1", "sender.test", "good")
        with smtplib.SMTP("127.0.0.1", port, local_hostname="mail.sender.test", timeout=5) as smtp:
            smtp.starttls()
            smtp.sendmail("bounce@sender.test", [f"{TOKEN}@receiver.test"], raw)
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(10)
    html = tmp_path / "report.html"
    code, out = _invoke("mailmode", "report", TOKEN, "--store", str(store), "--json", "--html", str(html))
    assert code == 0, out
    report = json.loads(out)
    (msg,) = report["messages"]
    assert msg["connection"]["tls"]["version"] == "TLSv1.3"
    # the analysis ran in the background before the receiver stopped (stop drains it)
    assert report["outbound"]["verdicts"]["starttls"]["status"] == "pass"
    assert report["outbound"]["verdicts"]["dkim"]["status"] == "pass"
    assert "Mail-mode report" in html.read_text()
    code, text = _invoke("mailmode", "report", TOKEN, "--store", str(store))
    assert code == 0 and "starttls  pass" in text


def test_report_of_unknown_token_is_a_usage_error(tmp_path: Path) -> None:
    code, out = _invoke("mailmode", "report", "nosuchtoken1", "--store", str(tmp_path / "none.sqlite3"))
    assert code == 2 and "no mail-mode store" in out


def test_zone_prints_the_trap_records(tmp_path: Path) -> None:
    cert, _, _ = write_self_signed(tmp_path, "mx.receiver.test")
    code, out = _invoke(
        "mailmode", "zone", "--domain", "receiver.test", "--cert", cert, "--ipv4", "127.0.0.20"
    )
    assert code == 0, out
    assert "_25._tcp.mx.dane-trap.receiver.test. 3600 IN TLSA 3 1 1 " in out
    assert "_mta-sts.sts-trap.receiver.test. 3600 IN TXT" in out
    code, out = _invoke(
        "mailmode", "zone", "--domain", "receiver.test", "--cert", cert, "--ipv4", "1.2.3.4", "--json"
    )
    assert code == 0 and "mta-sts.sts-trap.receiver.test" in json.loads(out)["sts_trap_policy"]["url"]


def test_probe_of_a_domain_without_mx_says_so(tmp_path: Path, dns_server: str) -> None:
    store = tmp_path / "p.sqlite3"
    code, out = _invoke(
        "mailmode", "probe", "someone@soft.test", "--from", "check@receiver.test",
        "--resolver", dns_server, "--store", str(store), "--json",
    )  # fmt: skip
    assert code == 0, out
    data = json.loads(out)
    assert data["delivered"] is False and data["attempts"] == []
    assert data["mx_error"] == "soft.test has no usable MX host"
    code, text = _invoke("mailmode", "report", data["token"], "--store", str(store))
    assert code == 0 and "someone@soft.test" in text
