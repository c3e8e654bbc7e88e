"""`mecsa scan` and `mecsa scan report` from the command line: bad input, reports, Ctrl-C and --resume."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from mecsa.cli import app
from mecsa.dns.zoneserver import Fault, ThreadedZoneServer, ZoneData
from mecsa.store import NewResult, open_store
from tests.unit.scan.scanning import ORIGIN, TLD, write_list, zone
from tests.unit.store.documents import document

RESOLVER = ["--resolver", "127.0.0.1:9", "--timeout", "0.2"]
DNS_ONLY = ["--only", "mx", "--only", "spf", "--only", "dmarc"]


def _bad(tmp: Path) -> list[list[str]]:
    good = write_list(tmp, ["a.test"])
    store = ["--store", str(tmp / "s.sqlite")]
    return [
        ["scan", str(tmp / "missing.txt"), *RESOLVER, *store],
        ["scan", good, "--format", "xml", *RESOLVER, *store],
        ["scan", good, "--only", "nosuchcheck", *RESOLVER, *store],
        ["scan", good, "--store", "mysql://u@127.0.0.1/db", *RESOLVER],
        ["scan", good, "--store", "postgresql://postgres@127.0.0.1:9/none", *RESOLVER],
        ["scan", good, "--out", str(tmp / "no-dir" / "out.jsonl"), *RESOLVER, *store],
        ["scan", good, "--scan", "3", *RESOLVER, *store],
        ["scan", good, "--resume", "--scan", "999", *RESOLVER, *store],
        ["scan", good, "extra", *RESOLVER, *store],
        ["scan", "report", *store],
        ["scan", "report", "12", *store],
        ["scan", "report", "1", "--format", "pdf", *store],
        ["scan", good, "--resolver", "not-an-address", *store],
    ]


@pytest.mark.parametrize("index", range(13))
def test_bad_input_is_one_line_and_exit_2(index: int, tmp_path: Path) -> None:
    args = _bad(tmp_path)[index]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 2, (args, result.output)
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("mecsa: error: "), (args, result.stderr)


def _stored_scan(path: Path) -> int:
    with open_store(path) as store:
        scan_id = store.create_scan(options={}, profile="mecsa", mecsa_version="0.1.0", input_name="list.txt")
        store.add_results(
            scan_id,
            [
                NewResult.from_document(document("a.test", (10, 10, 10), mx=("mx.big.test",))),
                NewResult.from_document(
                    document(
                        "b.test",
                        (4, 0, 0),
                        mx=("mx.<script>alert(1)</script>.test",),
                        failing=("dane.no_match",),
                    )
                ),
                NewResult.failed("x..y", "empty label", {"domain": "x..y", "status": "error"}),
            ],
        )
        store.finish_scan(scan_id)
    return scan_id


def test_report_as_text_json_and_html(tmp_path: Path) -> None:
    path = tmp_path / "s.sqlite"
    scan_id = _stored_scan(path)
    store = ["--store", str(path)]
    text = CliRunner().invoke(app, ["scan", "report", str(scan_id), *store])
    assert text.exit_code == 0, text.output
    assert "3 domains: 2 assessed, 1 errors" in text.stdout
    assert "dane.no_match" in text.stdout
    as_json = CliRunner().invoke(app, ["scan", "report", str(scan_id), "--format", "json", *store])
    summary = json.loads(as_json.stdout)
    assert summary["levels"]["confidentiality"] == {"4": 1, "10": 1}
    assert summary["failing_findings"][0] == {"id": "dane.no_match", "protocol": "dane", "domains": 1}
    page = tmp_path / "report.html"
    html = CliRunner().invoke(
        app, ["scan", "report", str(scan_id), "--format", "html", "--out", str(page), *store]
    )
    assert html.exit_code == 0, html.output
    body = page.read_text(encoding="utf-8")
    assert body.count("<svg") >= 3 + 2  # a chart per area, a bar per protocol
    assert "<script>" not in body and "&lt;script&gt;" in body  # network text is escaped
    # self-contained: no external stylesheets, scripts, images or fonts
    assert "src=" not in body and "<link" not in body and "url(" not in body


def test_ctrl_c_exits_130_and_resume_finishes(tmp_path: Path) -> None:
    """Ctrl-C on a terminal signals the whole process group: the parent and its 2 workers."""
    names = [f"slow{i}" for i in range(8)]
    faults = {f"_dmarc.{n}.{ORIGIN}": Fault.TIMEOUT for n in names}
    source = write_list(tmp_path, [f"{n}.{ORIGIN}" for n in names])
    out = tmp_path / "out.jsonl"
    with ThreadedZoneServer(ZoneData.from_texts({**TLD, ORIGIN: zone(names)}, faults=faults)) as server:
        command = [
            sys.executable, "-m", "mecsa", "scan", source, "--out", str(out),
            "--store", str(tmp_path / "s.sqlite"),
            "--resolver", server.address, "--timeout", "0.2", "--concurrency", "2", "--workers", "2",
            "--progress-every", "0.2", *DNS_ONLY,
        ]  # fmt: skip
        # its own process group, which Ctrl-C on a terminal signals as a whole (workers included)
        process = subprocess.Popen(command, stderr=subprocess.PIPE, text=True, start_new_session=True)
        seen = _wait_for_progress(process)  # some domains done (each takes 3 x 0.2 s), others in flight
        os.killpg(process.pid, signal.SIGINT)
        _, rest = process.communicate(timeout=30)
        stderr = seen + rest
        assert process.returncode == 130, stderr
        assert "interrupted" in stderr and "--resume --scan 1" in stderr
        assert "scan: " in stderr  # plain progress lines: stderr is not a terminal
        done = [json.loads(line) for line in out.read_text().splitlines()]
        assert 0 < len(done) < len(names)
        with open_store(tmp_path / "s.sqlite") as store:
            scan = store.get_scan(1)
            assert scan is not None and scan.state == "interrupted"
            assert store.count_results(1) == len(done)
        resumed = subprocess.run(
            [*command, "--resume", "--quiet"], capture_output=True, text=True, timeout=60
        )
        assert resumed.returncode == 0, resumed.stderr
        assert resumed.stderr == ""  # --quiet
    records = [json.loads(line) for line in out.read_text().splitlines()]
    assert sorted(r["domain"] for r in records) == sorted(f"{n}.{ORIGIN}" for n in names)


def _wait_for_progress(process: subprocess.Popen[str], deadline_s: float = 60.0) -> str:
    """stderr up to the first progress line that counts a finished domain."""
    assert process.stderr is not None
    seen = []
    ends = time.monotonic() + deadline_s
    while time.monotonic() < ends:
        line = process.stderr.readline()
        seen.append(line)
        if re.match(r"scan: [1-9]\d*/", line):
            return "".join(seen)
        if not line and process.poll() is not None:
            break
    raise AssertionError("no progress: " + "".join(seen))


def test_scan_reads_stdin_and_writes_jsonl_to_stdout(tmp_path: Path) -> None:
    names = ["one", "two"]
    with ThreadedZoneServer(ZoneData.from_texts({**TLD, ORIGIN: zone(names)})) as server:
        result = subprocess.run(
            [sys.executable, "-m", "mecsa", "scan", "-", "--store", str(tmp_path / "s.sqlite"), "--quiet",
             "--resolver", server.address, "--workers", "1", *DNS_ONLY],
            input=f"one.{ORIGIN}\n# comment\ntwo.{ORIGIN}\n",
            capture_output=True, text=True, timeout=60, env={**os.environ, "COLUMNS": "100"},
        )  # fmt: skip
    assert result.returncode == 0, result.stderr
    records = [json.loads(line) for line in result.stdout.splitlines()]
    assert sorted(r["domain"] for r in records) == [f"one.{ORIGIN}", f"two.{ORIGIN}"]
    assert {r["scan_id"] for r in records} == {1}
