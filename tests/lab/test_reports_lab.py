"""Report ingestion in the lab (issue 22): real mail, real receiver, real re-probes.

Two scenario domains publish `rua=mailto:` the mail-mode receiver's report address:
`hardened.test` (the top-score setup) and `expired.test` (its MX certificate expired). The test
builds DMARC aggregate and TLS reports about them, the lab's DANE sender mails them to the
address the domain publishes, and the receiver ingests them on arrival. Then `mecsa reports show
--join`, run in the lab's client namespace, re-probes the lab MX hosts and SPF:

- a TLS report of an expired certificate at hardened.test's MX: fixed since the report;
- the same at expired.test's MX: still failing, with the certificate fix;
- a DKIM-aligned source that hardened.test's SPF (`mx`) now lists: fixed since the report;
- a DKIM-aligned source outside it: still failing, with the SPF record to publish.
"""

from __future__ import annotations

import datetime as dt
import gzip
import json
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from email.message import EmailMessage
from pathlib import Path

import pytest

from tests.lab.helpers import lab_dir, require_lab
from tests.unit.reports.samples import Aggregate, Row, aggregate_xml, tls_report

pytestmark = pytest.mark.lab

HARDENED = "hardened.test"
EXPIRED = "expired.test"
OUTSIDER = "192.0.2.77"  # a DKIM-aligned source that no SPF of the lab lists
SPOOFER = "203.0.113.66"


def _scenario(directory: Path, name: str, domain: str, extra: str, expect_fail: str) -> Path:
    from mecsa.lab.receiver import REPORT_ADDRESS

    path = directory / f"{name}.toml"
    path.write_text(
        f'name = "{name}"\ndescription = "reports lab: {name}"\ndomain = "{domain}"\n{extra}\n'
        f'[hardening]\ndmarc_rua = "{REPORT_ADDRESS}"\n\n[expect]\nfail = {expect_fail}\nerror = []\n'
    )
    return path


@pytest.fixture(scope="module")
def reports_lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    require_lab()
    from mecsa.lab import netns
    from mecsa.lab.plan import namespace_prefix
    from mecsa.lab.runner import down, up

    files = tmp_path_factory.mktemp("scenarios")
    scenarios = [
        _scenario(files, "reports-hardened", HARDENED, "", "[]"),
        _scenario(
            files, "reports-expired", EXPIRED, '[[mx]]\nname = "mx1"\ncertificate = "expired"\n', '["x509"]'
        ),
    ]
    directory = lab_dir("reports")
    try:
        up(scenarios, directory, mailmode=True)
    except BaseException:
        down(directory)
        raise
    yield directory
    assert down(directory).leftovers == ()
    assert netns.list_namespaces(namespace_prefix(directory) + "-") == []


def _in_client(directory: Path, argv: list[str], timeout: float = 120) -> subprocess.CompletedProcess[str]:
    from mecsa.lab.plan import CLIENT_NODE
    from mecsa.lab.runner import load_state, run_in

    return run_in(load_state(directory), CLIENT_NODE, argv, capture=True, timeout=timeout)


def _published_rua(directory: Path, domain: str, owner: str) -> str:
    done = _in_client(directory, ["dig", "+short", "TXT", f"{owner}.{domain}"])
    text = done.stdout.replace('" "', "").strip().strip('"')
    rua = next(t.strip() for t in text.split(";") if t.strip().startswith("rua="))
    return rua.removeprefix("rua=mailto:")


def _mail(to: str, domain: str, attachment: tuple[str, str, bytes]) -> tuple[str, str]:
    from mecsa.lab.plan import HARDENED as SENDER

    message = EmailMessage()
    message["From"] = f"reports <{SENDER.from_address}>"
    message["To"] = to
    message["Subject"] = f"Report Domain: {domain} Submitter: {SENDER.domain}"
    message_id = f"<{time.time_ns()}@{SENDER.domain}>"
    message["Message-ID"] = message_id
    message.set_content("Reports built by the mecsa lab test.")
    filename, content_type, data = attachment
    main, _, sub = content_type.partition("/")
    message.add_attachment(data, maintype=main, subtype=sub, filename=filename)
    return message_id, message.as_string()


def _send(directory: Path, to: str, text: str) -> None:
    from mecsa.lab.plan import HARDENED as SENDER
    from mecsa.lab.runner import load_state, run_in

    state = load_state(directory)
    config = state.directory / "hosts" / SENDER.host / "etc" / "postfix"
    done = run_in(
        state,
        SENDER.node,
        ["/usr/sbin/sendmail", "-C", str(config), "-f", SENDER.from_address, to],
        capture=True,
        input_text=text,
        timeout=30,
    )
    assert done.returncode == 0, done.stderr


def _delivered(directory: Path, message_id: str, to: str, timeout: float = 60) -> tuple[str, bool]:
    """The receiver's reply to one report mail (it answers after ingesting), and whether the
    sender delivered it over DANE-verified TLS."""
    from mecsa.lab.mailflow import attempt_lines, parse_attempt, verified_tls_for
    from mecsa.lab.plan import HARDENED as SENDER

    log = directory / "logs" / f"{SENDER.host}.postfix.log"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = attempt_lines(log, message_id, [to]).get(to)
        if line is not None:
            status, detail = parse_attempt(line)
            assert status == "sent", line
            return detail, verified_tls_for(log, line)
        time.sleep(0.2)
    raise AssertionError(f"no delivery of {message_id} logged")


def _counts(store: Path) -> dict[str, int]:
    tables = ("dmarc_reports", "dmarc_records", "tls_reports", "tls_failures")
    with sqlite3.connect(store) as db:
        return {t: db.execute(f"SELECT COUNT(*) FROM {t}").fetchone()[0] for t in tables}


def _mx_address(directory: Path, domain: str) -> str:
    from mecsa.lab.runner import load_state

    return str(load_state(directory).domains[domain]["hosts"][0]["address"])


def test_reports_arrive_by_mail_and_the_join_reprobes_the_lab(reports_lab: Path) -> None:
    from mecsa.lab.receiver import REPORT_ADDRESS, reports_store_file
    from mecsa.lab.runner import load_state

    # The address each domain publishes for DMARC and TLS-RPT is the receiver's report address.
    for domain in (HARDENED, EXPIRED):
        assert _published_rua(reports_lab, domain, "_dmarc") == REPORT_ADDRESS
        assert _published_rua(reports_lab, domain, "_smtp._tls") == REPORT_ADDRESS

    now = int(dt.datetime.now(dt.UTC).timestamp())
    mx_ip = _mx_address(reports_lab, HARDENED)
    rows = (
        Row(
            source_ip=mx_ip,
            count=12,
            spf="fail",
            header_from=HARDENED,
            dkim_auth=((HARDENED, "lab", "pass"),),
        ),
        Row(
            source_ip=OUTSIDER,
            count=5,
            spf="fail",
            header_from=HARDENED,
            dkim_auth=((HARDENED, "lab", "pass"),),
        ),
        Row(source_ip=SPOOFER, count=3, dkim="fail", spf="fail", header_from=HARDENED, dkim_auth=()),
    )
    aggregate = Aggregate(
        org="Big Receiver", report_id="lab-1", domain=HARDENED, begin=now - 86400, end=now, rows=rows
    )
    day = dt.datetime.now(dt.UTC).date().isoformat()
    start, end = f"{day}T00:00:00Z", f"{day}T23:59:59Z"
    tls_hardened = tls_report(
        "tls-h",
        "Big Sender",
        HARDENED,
        start=start,
        end=end,
        success=40,
        failures=(("certificate-expired", f"mx1.{HARDENED}", 3),),
    )
    tls_expired = tls_report(
        "tls-e",
        "Big Sender",
        EXPIRED,
        start=start,
        end=end,
        success=0,
        failures=(("certificate-expired", f"mx1.{EXPIRED}", 9),),
    )
    mails = [
        _mail(
            REPORT_ADDRESS,
            HARDENED,
            (
                f"big.test!{HARDENED}!{now - 86400}!{now}.xml.gz",
                "application/gzip",
                gzip.compress(aggregate_xml(aggregate)),
            ),
        ),
        _mail(
            REPORT_ADDRESS,
            HARDENED,
            (
                "big.test!hardened.json.gz",
                "application/tlsrpt+gzip",
                gzip.compress(json.dumps(tls_hardened).encode()),
            ),
        ),
        _mail(
            REPORT_ADDRESS,
            EXPIRED,
            ("big.test!expired.json", "application/tlsrpt+json", json.dumps(tls_expired).encode()),
        ),
    ]
    replies = []
    for message_id, text in mails:
        _send(reports_lab, REPORT_ADDRESS, text)
        replies.append(_delivered(reports_lab, message_id, REPORT_ADDRESS))
    # The aggregate report again, in a new mail: a duplicate, stored once.
    again_id, again = _mail(REPORT_ADDRESS, HARDENED, ("again.xml", "text/xml", aggregate_xml(aggregate)))
    _send(reports_lab, REPORT_ADDRESS, again)
    replies.append(_delivered(reports_lab, again_id, REPORT_ADDRESS))
    assert [r for r, _ in replies] == [
        "250 2.0.0 Report mail: 1 stored, 0 duplicates, 0 errors",
        "250 2.0.0 Report mail: 1 stored, 0 duplicates, 0 errors",
        "250 2.0.0 Report mail: 1 stored, 0 duplicates, 0 errors",
        "250 2.0.0 Report mail: 0 stored, 1 duplicates, 0 errors",
    ], replies
    assert all(verified for _, verified in replies)  # the DANE sender verified the receiver's TLSA
    store = reports_store_file(reports_lab)
    assert _counts(store) == {"dmarc_reports": 1, "dmarc_records": 3, "tls_reports": 2, "tls_failures": 2}

    state = load_state(reports_lab)
    show = [
        sys.executable,
        "-m",
        "mecsa",
        "reports",
        "show",
        "--store",
        str(store),
        "--json",
        "--join",
        "--resolver",
        str(state.data["resolver"]),
        "--ca-file",
        str(state.data["ca_file"]),
        "--html",
        str(reports_lab / "reports.html"),
    ]
    done = _in_client(reports_lab, show, timeout=180)
    assert done.returncode == 0, done.stderr
    data = json.loads(done.stdout)

    (dmarc,) = data["dmarc"]
    groups = {g: [s["ip"] for s in sources] for g, sources in dmarc["groups"].items()}
    assert groups["failing_known"] == [] and SPOOFER in groups["unknown"]
    assert dmarc["messages"] == 20 and dmarc["passed"] == 17
    tls = {t["domain"]: t for t in data["tls"]}
    assert tls[HARDENED]["failed"] == 3 and tls[EXPIRED]["failed"] == 9

    joined = {(j["domain"], j["problem"]): j for j in data["join"]}
    fixed = joined[(HARDENED, f"certificate-expired on mx1.{HARDENED}")]
    assert fixed["status"] == "fixed_since_report", fixed
    live = joined[(EXPIRED, f"certificate-expired on mx1.{EXPIRED}")]
    assert live["status"] == "still_failing", live
    assert "x509.replace" in [f["key"] for f in live["fixes"]]
    spf_known = joined[(HARDENED, f"{mx_ip}: DKIM-aligned mail that SPF does not authorise")]
    assert spf_known["status"] == "fixed_since_report", spf_known
    spf_outside = joined[(HARDENED, f"{OUTSIDER}: DKIM-aligned mail that SPF does not authorise")]
    assert spf_outside["status"] == "still_failing", spf_outside
    assert f"ip4:{OUTSIDER}" in spf_outside["fixes"][0]["snippets"][0]["text"]
    html = (reports_lab / "reports.html").read_text()
    assert "<svg" in html and "fixed since the report" in html
