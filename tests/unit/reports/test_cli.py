"""`mecsa reports ingest | show`, driven as a user would, and IMAP over TLS against a loopback server."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from mecsa.cli import app
from mecsa.cli.reports import parse_since
from mecsa.reports.imap import parse_imap_url
from tests.unit.mailmode.certs import write_self_signed
from tests.unit.reports.imapserver import ImapServer
from tests.unit.reports.samples import (
    RFC8460_EXAMPLE,
    Aggregate,
    Row,
    aggregate_xml,
    gzipped,
    json_bytes,
    report_mail,
    tls_report,
    write,
)


def invoke(*args: str, env: dict[str, str] | None = None) -> tuple[int, str]:
    result = CliRunner().invoke(app, list(args), env=env)
    return result.exit_code, result.output


def test_ingest_then_show_text_json_and_html(tmp_path: Path) -> None:
    store = str(tmp_path / "s.sqlite3")
    report = write(tmp_path / "a.xml.gz", gzipped(aggregate_xml(Aggregate(rows=(Row(count=3),)))))
    tls = write(tmp_path / "t.json", json_bytes(RFC8460_EXAMPLE))
    code, out = invoke("reports", "ingest", str(report), str(tls), str(report), "--store", store)
    assert code == 0, out
    assert out.splitlines()[-1] == "2 stored, 1 duplicates, 0 errors"
    code, out = invoke("reports", "ingest", str(report), "--store", store, "--json")
    assert code == 0 and json.loads(out)["counts"] == {"stored": 0, "duplicate": 1, "error": 0}
    html = tmp_path / "r.html"
    code, out = invoke("reports", "show", "--store", store, "--no-dns", "--html", str(html))
    assert code == 0, out
    assert "DMARC example.test: 1 reports, 3 messages, 3 passed (100.0%), 0 failed" in out
    assert "failure starttls-not-supported on mx2.mail.company-y.example: 200 sessions" in out
    assert "<svg" in html.read_text()
    code, out = invoke(
        "reports", "show", "--store", store, "--no-dns", "--json", "--domain", "company-y.example"
    )
    data = json.loads(out)
    assert code == 0 and data["dmarc"] == [] and data["tls"][0]["failed"] == 303


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["reports", "ingest"], "give at least one PATH or --imap URL"),
        (["reports", "ingest", "/nonexistent/x.xml"], "no such file or directory"),
        (["reports", "ingest", "--imap", "https://x.test/"], "must start with imaps://"),
        (["reports", "ingest", "--imap", "imaps://u:secret@x.test/INBOX"], "no password in the URL"),
        (["reports", "ingest", "--imap", "imaps://u@x.test/INBOX"], "needs a password"),
        (["reports", "show", "--store", "/nonexistent/s.sqlite3"], "no store there"),
        (["reports", "show", "--since", "soon"], "--since 'soon'"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(args: list[str], message: str) -> None:
    code, out = invoke(*args)
    assert code == 2
    assert message in out and len(out.strip().splitlines()) == 1


def test_parse_since_forms() -> None:
    import datetime as dt

    now = dt.datetime(2026, 12, 1, tzinfo=dt.UTC)
    assert parse_since("7d", now) == dt.datetime(2026, 11, 24, tzinfo=dt.UTC)
    assert parse_since("2026-11-30", now) == dt.datetime(2026, 11, 30, tzinfo=dt.UTC)


def test_imap_url_forms() -> None:
    source = parse_imap_url("imaps://reports%40example.test@imap.example.test/Reports%2FDMARC")
    assert (source.user, source.host, source.port, source.mailbox) == (
        "reports@example.test",
        "imap.example.test",
        993,
        "Reports/DMARC",
    )
    assert (
        parse_imap_url("imap://u@h.test").port == 143 and not parse_imap_url("imap://u@h.test").implicit_tls
    )


def test_ingest_over_imap_with_tls_read_only(tmp_path: Path) -> None:
    cert, key, _ = write_self_signed(tmp_path, "localhost")
    mails = [
        report_mail([("r.xml.gz", "application/gzip", gzipped(aggregate_xml(Aggregate())))]),
        report_mail([("t.json", "application/tlsrpt+json", json_bytes(tls_report()))]),
        report_mail([], subject="not a report"),
    ]
    store = str(tmp_path / "s.sqlite3")
    with ImapServer(mails, cert, key, "reports", "s3cret") as server:
        url = f"imaps://reports@localhost:{server.port}/INBOX"
        env = {"MECSA_IMAP_PASSWORD": "s3cret"}
        code, out = invoke("reports", "ingest", "--imap", url, "--ca-file", cert, "--store", store, env=env)
        assert code == 0, out
        assert out.splitlines()[-1] == "2 stored, 0 duplicates, 1 errors"
        # Read-only: EXAMINE, and BODY.PEEK so that nothing is marked \Seen.
        assert any(c.startswith("EXAMINE") for c in server.commands)
        assert all("BODY[]" not in c or "PEEK" in c for c in server.commands)
        code, out = invoke("reports", "ingest", "--imap", url, "--ca-file", cert, "--store", store, env=env)
        assert out.splitlines()[-1] == "0 stored, 2 duplicates, 1 errors"
        bad = {"MECSA_IMAP_PASSWORD": "wrong"}
        code, out = invoke("reports", "ingest", "--imap", url, "--ca-file", cert, "--store", store, env=bad)
        assert code == 2 and "login refused" in out
        # Without the test CA, the certificate is not trusted: no login in clear or to an unknown peer.
        code, out = invoke("reports", "ingest", "--imap", url, "--store", store, env=env)
        assert code == 2 and "cannot connect over TLS" in out


def test_imap_starttls_and_a_server_without_tls_is_refused(tmp_path: Path) -> None:
    cert, key, _ = write_self_signed(tmp_path, "localhost")
    mails = [report_mail([("r.xml", "text/xml", aggregate_xml(Aggregate()))])]
    store = str(tmp_path / "s.sqlite3")
    env = {"MECSA_IMAP_PASSWORD": "pw"}
    with ImapServer(mails, cert, key, "u", "pw", mode="starttls") as server:
        url = f"imap://u@localhost:{server.port}/INBOX"
        code, out = invoke("reports", "ingest", "--imap", url, "--ca-file", cert, "--store", store, env=env)
        assert code == 0 and out.splitlines()[-1] == "1 stored, 0 duplicates, 0 errors", out
        assert server.commands.index("STARTTLS") < next(
            i for i, c in enumerate(server.commands) if c.startswith("LOGIN")
        )
    with ImapServer(mails, cert, key, "u", "pw", mode="plain") as server:
        url = f"imap://u@localhost:{server.port}/INBOX"
        code, out = invoke("reports", "ingest", "--imap", url, "--ca-file", cert, "--store", store, env=env)
        assert code == 2 and "refusing to log in in clear" in out
        assert not any(c.startswith("LOGIN") for c in server.commands)  # the password never went out
