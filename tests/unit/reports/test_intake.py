"""Ingestion: containers, bombs, limits, duplicates, mails and mailboxes, bad reports among good ones."""

from __future__ import annotations

import gzip
import mailbox
import subprocess
import sys
import time
import zlib
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest

from mecsa.reports.intake import IngestItem, Intake, ItemStatus
from mecsa.reports.limits import Limits
from mecsa.reports.storage import ReportStore
from tests.unit.reports.samples import (
    RFC8460_EXAMPLE,
    Aggregate,
    Row,
    aggregate_chunks,
    aggregate_xml,
    gzipped,
    json_bytes,
    report_mail,
    tls_report,
    write,
    zipped,
)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[ReportStore]:
    opened = ReportStore.open(tmp_path / "reports.sqlite3")
    yield opened
    opened.close()


def statuses(items: Sequence[IngestItem]) -> list[str]:
    return [i.status.value for i in items]


@pytest.mark.parametrize(
    ("filename", "encode"),
    [
        ("a.xml", lambda d: d),
        ("a.xml.gz", gzipped),
        ("a.zip", lambda d: zipped({"a.xml": d})),
    ],
)
def test_aggregate_report_in_every_container(
    store: ReportStore, tmp_path: Path, filename: str, encode: object
) -> None:
    path = write(tmp_path / filename, encode(aggregate_xml(Aggregate(rows=(Row(count=4), Row(count=6))))))  # type: ignore[operator]
    items = list(Intake(store).path(path))
    assert statuses(items) == ["stored"]
    assert items[0].records == 2 and items[0].domain == "example.test"
    assert store.counts()["dmarc_records"] == 2


@pytest.mark.parametrize(("filename", "encode"), [("t.json", lambda d: d), ("t.json.gz", gzipped)])
def test_tls_report_plain_and_gzipped(
    store: ReportStore, tmp_path: Path, filename: str, encode: object
) -> None:
    path = write(tmp_path / filename, encode(json_bytes(RFC8460_EXAMPLE)))  # type: ignore[operator]
    items = list(Intake(store).path(path))
    assert statuses(items) == ["stored"]
    assert items[0].records == 3  # three failure details
    assert store.counts()["tls_failures"] == 3


def test_gzip_bomb_stops_at_the_decompressed_limit(store: ReportStore, tmp_path: Path) -> None:
    # 64 MiB of spaces after an XML start: about 64 KiB compressed.
    compressor = zlib.compressobj(9, zlib.DEFLATED, 31)
    chunk = b" " * (1024 * 1024)
    bomb = compressor.compress(b"<feedback>") + b"".join(compressor.compress(chunk) for _ in range(64))
    bomb += compressor.flush()
    assert len(bomb) < 200_000
    path = write(tmp_path / "bomb.xml.gz", bomb)
    started = time.monotonic()
    items = list(Intake(store, Limits(max_decompressed=4 * 1024 * 1024)).path(path))
    assert statuses(items) == ["error"]
    assert "more than 4194304 bytes after decompression" in (items[0].error or "")
    assert time.monotonic() - started < 5
    assert store.counts()["dmarc_reports"] == 0


def test_zip_bomb_is_bounded_across_members(store: ReportStore, tmp_path: Path) -> None:
    padding = b" " * (3 * 1024 * 1024)  # XML allows white space after the root element
    first = aggregate_xml(Aggregate(report_id="1")) + padding
    second = aggregate_xml(Aggregate(report_id="2", begin=1)) + padding
    path = write(tmp_path / "b.zip", zipped({"1.xml": first, "2.xml": second}))
    items = list(Intake(store, Limits(max_decompressed=4 * 1024 * 1024)).path(path))
    # 3 MiB for the first member leave 1 MiB of the archive's 4 MiB budget for the second.
    assert statuses(items) == ["stored", "error"]
    assert "after decompression" in (items[1].error or "")


def test_zip_with_too_many_members_is_refused(store: ReportStore, tmp_path: Path) -> None:
    members = {f"{i}.xml": aggregate_xml(Aggregate(report_id=f"r{i}", begin=i)) for i in range(17)}
    items = list(Intake(store).path(write(tmp_path / "many.zip", zipped(members))))
    assert statuses(items) == ["error"]
    assert "17 files: more than 16 refused" in (items[0].error or "")
    assert store.counts()["dmarc_reports"] == 0


def test_zip_members_within_limit_are_each_ingested(store: ReportStore, tmp_path: Path) -> None:
    members = {f"{i}.xml": aggregate_xml(Aggregate(report_id=f"r{i}", begin=i)) for i in range(3)}
    members["nested.zip"] = zipped({"x.xml": b"<feedback/>"})
    items = list(Intake(store).path(write(tmp_path / "three.zip", zipped(members))))
    assert statuses(items) == ["stored", "stored", "stored", "error"]
    assert "archive inside an archive" in (items[3].error or "")


def test_duplicates_by_report_id_and_by_org_and_date_range(store: ReportStore, tmp_path: Path) -> None:
    intake = Intake(store)
    first = write(tmp_path / "1.xml", aggregate_xml(Aggregate(report_id="same")))
    again = write(tmp_path / "2.xml.gz", gzipped(aggregate_xml(Aggregate(report_id="same", begin=5))))
    renamed = write(tmp_path / "3.xml", aggregate_xml(Aggregate(report_id="other-id")))  # same org+range
    other_org = write(tmp_path / "4.xml", aggregate_xml(Aggregate(org="Another", report_id="same")))
    tls = write(tmp_path / "5.json", json_bytes(tls_report("t1")))
    tls_again = write(tmp_path / "6.json", json_bytes(tls_report("t2")))  # same org, domain, range
    results = [next(iter(intake.path(p))).status for p in (first, again, renamed, other_org, tls, tls_again)]
    assert [r.value for r in results] == ["stored", "duplicate", "duplicate", "stored", "stored", "duplicate"]
    assert store.counts()["dmarc_reports"] == 2 and store.counts()["dmarc_records"] == 2


def test_malformed_report_is_an_error_and_the_rest_is_kept(store: ReportStore, tmp_path: Path) -> None:
    good = aggregate_xml(Aggregate(report_id="good"))
    bad_late = aggregate_xml(
        Aggregate(report_id="bad", begin=7, rows=(Row(), Row(), Row(source_ip="999.1.1.1")))
    )
    write(tmp_path / "a-good.xml", good)
    write(tmp_path / "b-bad.xml", bad_late)
    write(tmp_path / "c-junk.json", b"{not json")
    write(tmp_path / "d-tls.json", json_bytes(tls_report()))
    items = list(Intake(store).path(tmp_path))
    by_name = {Path(i.source).name: i for i in items if i.source.endswith((".xml", ".json"))}
    assert by_name["a-good.xml"].status is ItemStatus.STORED
    assert by_name["b-bad.xml"].status is ItemStatus.ERROR
    assert "record 3: source_ip '999.1.1.1' is not an IP address" in (by_name["b-bad.xml"].error or "")
    assert by_name["c-junk.json"].status is ItemStatus.ERROR
    assert by_name["d-tls.json"].status is ItemStatus.STORED
    # The bad report's first two records were rolled back with it.
    assert store.counts()["dmarc_reports"] == 1 and store.counts()["dmarc_records"] == 1


def test_report_mails_in_maildir_mbox_and_eml(store: ReportStore, tmp_path: Path) -> None:
    dmarc_mail = report_mail(
        [("receiver.test!example.test!1!2.xml.gz", "application/gzip", gzipped(aggregate_xml(Aggregate())))]
    )
    tls_mail = report_mail(
        [
            (
                "sender.test!example.test!1!2.json.gz",
                "application/tlsrpt+gzip",
                gzipped(json_bytes(tls_report())),
            )
        ]
    )
    box = mailbox.Maildir(tmp_path / "Maildir", create=True)
    box.add(dmarc_mail)
    box.add(report_mail([], subject="hello"))  # a mail without a report
    box.close()
    mbox = mailbox.mbox(tmp_path / "reports.mbox")
    mbox.add(tls_mail)
    mbox.close()
    eml = write(
        tmp_path / "one.eml",
        report_mail(
            [
                (
                    "r.zip",
                    "application/zip",
                    zipped({"r.xml": aggregate_xml(Aggregate(report_id="z", begin=9))}),
                )
            ]
        ),
    )
    intake = Intake(store)
    maildir_items = list(intake.path(tmp_path / "Maildir"))
    assert sorted(statuses(maildir_items)) == ["error", "stored"]
    assert any(i.error == "mail without a report attachment" for i in maildir_items)
    assert statuses(list(intake.path(tmp_path / "reports.mbox"))) == ["stored"]
    assert statuses(list(intake.path(eml))) == ["stored"]
    counts = store.counts()
    assert counts["dmarc_reports"] == 2 and counts["tls_reports"] == 1


def test_unknown_file_is_an_error(store: ReportStore, tmp_path: Path) -> None:
    items = list(Intake(store).path(write(tmp_path / "x.bin", b"\x00\x01binary")))
    assert statuses(items) == ["error"]


_MEASURE = """
import resource, sys
from pathlib import Path
from mecsa.reports.intake import Intake
from mecsa.reports.storage import ReportStore
store = ReportStore.open(sys.argv[2])
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
items = list(Intake(store).path(Path(sys.argv[1])))
after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(items[0].status.value, items[0].records, store.counts()["dmarc_records"], (after - before) * 1024)
"""


def test_100000_records_stream_in_bounded_memory(tmp_path: Path) -> None:
    rows = (
        Row(source_ip=f"10.{i >> 16 & 255}.{i >> 8 & 255}.{i & 255}", count=1 + i % 5) for i in range(100_000)
    )
    path = tmp_path / "big.xml.gz"
    with gzip.open(path, "wb", compresslevel=1) as out:
        for chunk in aggregate_chunks(Aggregate(report_id="big"), rows):
            out.write(chunk)
    # A fresh process, so that its peak resident size is this ingestion's and nothing else's.
    done = subprocess.run(
        [sys.executable, "-c", _MEASURE, str(path), str(tmp_path / "big.sqlite3")],
        capture_output=True,
        text=True,
        check=True,
        timeout=300,
    )
    status, records, stored, grown = done.stdout.split()
    assert (status, records, stored) == ("stored", "100000", "100000")
    # The XML is ~48 MB and the records as objects would be several times more: streaming keeps
    # the growth of the peak resident size well under the size of the document.
    assert int(grown) < 40 * 1024 * 1024, grown


def test_truncated_gzip_is_an_error_and_nothing_is_stored(store: ReportStore, tmp_path: Path) -> None:
    rows = tuple(Row(source_ip=f"192.0.2.{i}") for i in range(1, 200))
    data = gzipped(aggregate_xml(Aggregate(rows=rows)))
    items = list(Intake(store).path(write(tmp_path / "cut.xml.gz", data[: len(data) // 2])))
    assert statuses(items) == ["error"]
    assert items[0].error == "EOFError: Compressed file ended before the end-of-stream marker was reached"
    assert store.counts()["dmarc_records"] == 0
