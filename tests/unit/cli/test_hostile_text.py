"""Hostile text from DNS, SMTP and mail never reaches the terminal or the HTML report raw: one test
per command (assess, spf check, spf audit, starttls, mailmode report, harden plan, the HTML reports)."""

from __future__ import annotations

import asyncio
import json
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from mecsa.cli import app
from mecsa.dns.zoneserver import ThreadedZoneServer, ZoneData
from tests.unit.hostile import HOSTILE, assert_escaped, raw_controls, zone_text_string

HEAD = "@ 300 IN SOA ns hostmaster 1 300 300 300 300\n@ IN NS ns\nns IN A 127.0.0.1\n"
# ESC, DEL and the rest fit in an SPF record: it is parsed, fails, and is shown as evidence.
SPF = zone_text_string(f"v=spf1 ip4:127.0.0.1 {HOSTILE} -all")
ZONE = (
    HEAD
    + f"@ IN TXT {SPF}\n"
    + f"_dmarc IN TXT {zone_text_string(f'v=DMARC1; p=reject; rua=mailto:{HOSTILE}@example.test')}\n"
)


@pytest.fixture(scope="module")
def dns_server() -> Iterator[str]:
    # The TLD too: DMARC discovery (RFC 9989 tree walk) asks _dmarc.test when the domain has none.
    zones = {"example.test.": ZONE, "test.": HEAD}
    with ThreadedZoneServer(ZoneData.from_texts(zones)) as running:
        yield running.address


def _invoke(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, list(args))
    return result.exit_code, result.stdout


def test_assess_text_and_html(dns_server: str, tmp_path: Path) -> None:
    html = tmp_path / "report.html"
    args = ["assess", "example.test", "--resolver", dns_server, "--only", "spf", "--only", "dmarc"]
    code, out = _invoke(*args, "--html", str(html))
    assert code == 0, out
    assert_escaped(out)
    assert_escaped(html.read_text(encoding="utf-8"), allow="\n")


def test_assess_json(dns_server: str) -> None:
    args = ["assess", "example.test", "--resolver", dns_server, "--only", "spf", "--only", "dmarc", "--json"]
    code, out = _invoke(*args)
    assert code == 0, out
    assert raw_controls(out) == []
    lookups = json.loads(out)["checks"]["dmarc"]["lookups"]
    assert any(HOSTILE in record for lookup in lookups for record in lookup["records"])


def test_spf_check(dns_server: str) -> None:
    # The SPF grammar keeps controls out of explanations (RFC 7208 §6.2), and the reason names a
    # bad character by its escape; the renderer escapes whatever a reason or explanation holds.
    from mecsa.cli.spf import _check_text
    from mecsa.spf.evaluator import SpfOutcome, SpfResult

    code, out = _invoke(
        "spf", "check", "--ip", "127.0.0.99", "--sender", "a@example.test", "--resolver", dns_server
    )
    assert code == 0 and "result: permerror" in out
    assert raw_controls(out) == []
    assert_escaped(_check_text(SpfOutcome(SpfResult.FAIL, f"dns said {HOSTILE}", HOSTILE)))


def test_spf_audit(dns_server: str) -> None:
    code, out = _invoke("spf", "audit", "example.test", "--resolver", dns_server)
    assert code == 0, out
    assert_escaped(out)


async def _hostile_smtp(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    writer.write(f"220 mx.example.test {HOSTILE}\r\n".encode())
    while line := await reader.readline():
        if line.upper().startswith(b"EHLO"):
            writer.write(f"250-mx.example.test hi\r\n250 X-{HOSTILE}\r\n".encode())
        elif line.upper().startswith(b"QUIT"):
            writer.write(b"221 bye\r\n")
            await writer.drain()
            break
        await writer.drain()
    writer.close()


async def test_starttls(dns_server: str) -> None:
    server = await asyncio.start_server(_hostile_smtp, "127.0.0.2", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        args = ["starttls", f"127.0.0.2:{port}", "--resolver", dns_server, "--smtp-timeout", "1"]
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "mecsa", *args, stdout=asyncio.subprocess.PIPE
        )
        out, _ = await asyncio.wait_for(proc.communicate(), 30)
    finally:
        server.close()
    assert proc.returncode == 0
    text = out.decode("utf-8")
    assert "banner: 220" in text
    assert_escaped(text)


def test_mailmode_report_text_and_html(tmp_path: Path) -> None:
    from mecsa.mailmode.store import MailStore

    token = "hostile12345abcd"
    store = tmp_path / "store.sqlite3"
    probe = {
        "recipient": f"user@{HOSTILE}",
        "delivered": False,
        "mx_error": HOSTILE,
        "attempts": [],
    }

    async def fill() -> None:
        opened = await MailStore.open(store)
        try:
            await opened.add(token, "probe", probe)
            await opened.add(token, "error", {"stage": "analysis", "error": HOSTILE})
        finally:
            await opened.close()

    asyncio.run(fill())
    html = tmp_path / "report.html"
    code, out = _invoke("mailmode", "report", token, "--store", str(store), "--html", str(html))
    assert code == 0, out
    assert_escaped(out)
    assert_escaped(html.read_text(encoding="utf-8"), allow="\n")


def test_harden_plan(tmp_path: Path) -> None:
    fixtures = Path(__file__).parents[1] / "harden" / "fixtures"
    (tmp_path / "etc/postfix").mkdir(parents=True)
    shutil.copy(fixtures / "debian-master.cf", tmp_path / "etc/postfix/master.cf")
    # An existing main.cf that someone else wrote: its lines appear in the diff.
    (tmp_path / "etc/postfix/main.cf").write_text(f"# {HOSTILE}\nmyhostname = old.example.test\n")
    dkim = tmp_path / "etc/opendkim/keys/example.test/s202611.private"
    dkim.parent.mkdir(parents=True)
    dkim.write_bytes((fixtures / "dkim-rsa.pem").read_bytes())
    flags = [
        "--domain", "example.test", "--mx-host", "mx.example.test", "--ipv4", "127.0.0.25",
        "--cert", str(fixtures / "tls-cert.pem"), "--key", str(fixtures / "tls-key.pem"),
        "--postmaster", "root", "--selector", "s202611",
    ]  # fmt: skip
    code, out = _invoke("harden", "plan", *flags, "--root", str(tmp_path))
    assert code == 0, out
    assert_escaped(out, allow="\n\t")
