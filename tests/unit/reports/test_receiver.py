"""Reports arriving at the mail-mode receiver's report address are ingested before the 250."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import aiosmtplib
import pytest

from mecsa.mailmode.receiver import Receiver, ReceiverSettings
from mecsa.mailmode.store import MailStore
from mecsa.reports.receive import report_handler
from mecsa.reports.storage import ReportStore
from tests.unit.reports.samples import Aggregate, aggregate_xml, gzipped, json_bytes, report_mail, tls_report

REPORT_ADDRESS = "dmarc_reports@hardened.test"


@pytest.fixture
async def receiver(tmp_path: Path) -> AsyncIterator[tuple[Receiver, ReportStore]]:
    reports = ReportStore.open(tmp_path / "reports.sqlite3")
    store = await MailStore.open(tmp_path / "mail.sqlite3")
    settings = ReceiverSettings(
        "receiver.test",
        port=0,
        analyse=False,
        assess_sender=False,
        report_addresses=frozenset({REPORT_ADDRESS}),
    )
    running = await Receiver(settings, store, None, None, report_handler(reports)).start()
    yield running, reports
    await running.stop()
    await store.close()
    reports.close()


async def _send(port: int, rcpt: str, data: bytes) -> tuple[int, str]:
    smtp = aiosmtplib.SMTP(
        hostname="127.0.0.1", port=port, start_tls=False, local_hostname="mx.receiver-org.test"
    )
    await smtp.connect()
    try:
        await smtp.ehlo()
        await smtp.mail("noreply@receiver-org.test")
        code, message = await smtp.rcpt(rcpt)
        if code != 250:
            return code, message
        reply = await smtp.data(data)
        return reply.code, reply.message
    except aiosmtplib.SMTPResponseException as exc:
        return exc.code, exc.message
    finally:
        await smtp.quit()


async def test_report_mail_is_ingested_before_the_reply(receiver: tuple[Receiver, ReportStore]) -> None:
    running, reports = receiver
    dmarc = report_mail(
        [("r.xml.gz", "application/gzip", gzipped(aggregate_xml(Aggregate())))], to=REPORT_ADDRESS
    )
    code, message = await _send(running.port, REPORT_ADDRESS, dmarc)
    assert (code, message) == (250, "2.0.0 Report mail: 1 stored, 0 duplicates, 0 errors")
    tls = report_mail([("t.json.gz", "application/tlsrpt+gzip", gzipped(json_bytes(tls_report())))])
    assert (await _send(running.port, REPORT_ADDRESS.upper(), tls))[0] == 250
    code, message = await _send(running.port, REPORT_ADDRESS, dmarc)
    assert message.endswith("0 stored, 1 duplicates, 0 errors")
    assert reports.counts()["dmarc_reports"] == 1 and reports.counts()["tls_reports"] == 1


async def test_other_addresses_of_the_report_domain_are_not_relayed(
    receiver: tuple[Receiver, ReportStore],
) -> None:
    running, _ = receiver
    code, _ = await _send(running.port, "someone@hardened.test", b"Subject: x\r\n\r\nx\r\n")
    assert code == 550


def _break(reports: ReportStore) -> None:
    """Replace the database file by a directory: every later write fails."""
    reports.engine.dispose()
    path = Path(str(reports.engine.url.database))
    path.unlink()
    path.mkdir()


async def test_a_store_failure_is_451_so_the_sender_retries(receiver: tuple[Receiver, ReportStore]) -> None:
    running, reports = receiver
    _break(reports)
    dmarc = report_mail([("r.xml", "text/xml", aggregate_xml(Aggregate()))])
    code, message = await _send(running.port, REPORT_ADDRESS, dmarc)
    assert code == 451 and "try again later" in message
