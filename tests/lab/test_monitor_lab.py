"""`mecsa monitor run` against real servers: the DANE break and DMARC p=none, told once, then resolved.

Then the reports (issue 22): DMARC and TLS reports built by the test are ingested into the
monitor's store (`mecsa reports ingest`), the watch list turns on `reports = true`, and the next
run tells an unknown sending source and the TLS failure rate, whose tlsa-invalid failures the
live assessment confirms (the DANE break still holds: "still failing", with the fix); the run
after it tells nothing more.

The lab's top-score domain is watched. Between the passes the test swaps the MX certificate for one
with a new key (from a second CA the monitor also trusts, as a renewal with a new key would be; the
TLSA still names the old key) and edits DMARC to p=none. The alerts go to an SMTP sink (STARTTLS
required) and a webhook receiver, both on the loopback of the lab's client namespace, where the
monitor runs. The lab's Unbound is restarted after each zone edit: its cache would hide the edit
for the zone's TTL (300 s), and its remote control is off.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from tests.lab.helpers import lab_dir, require_lab
from tests.monitor_sinks import parse_mail

pytestmark = pytest.mark.lab
REPO = Path(__file__).resolve().parents[2]
SCENARIO = REPO / "src" / "mecsa" / "lab" / "scenarios" / "top-score.toml"
HOST, ADDRESS = "mx1.top.test", "10.53.0.10"
SPOOFER = "203.0.113.66"  # TEST-NET-3: in no SPF of the lab


def test_monitor_run_twice_tells_the_dane_break_and_dmarc_p_none_once_then_resolved(tmp_path: Path) -> None:
    require_lab()
    from mecsa.lab.ca import LabCa
    from mecsa.lab.plan import CLIENT_NODE
    from mecsa.lab.runner import down, load_state, up

    directory = lab_dir("monitor")
    up([SCENARIO], directory)
    try:
        state = load_state(directory)
        sinks = _start_sinks(state, CLIENT_NODE, tmp_path / "sinks")
        renewal_ca = LabCa()  # the "new" certificate's issuer: trusted by the monitor as well
        trust = tmp_path / "trust.pem"
        trust.write_bytes((directory / "ca" / "ca.pem").read_bytes() + renewal_ca.pem())
        watch = tmp_path / "watch.toml"
        watch.write_text(_watchlist(state.data.get("resolver", "10.53.0.3"), trust, sinks))
        store = tmp_path / "monitor.sqlite"

        def monitor_run() -> subprocess.CompletedProcess[str]:
            from mecsa.lab.runner import run_in

            argv = [
                sys.executable,
                "-m",
                "mecsa",
                "monitor",
                "run",
                "--watch",
                str(watch),
                "--store",
                str(store),
                "--all",
            ]
            return run_in(state, CLIENT_NODE, argv, capture=True, timeout=180)

        first = monitor_run()
        assert first.returncode == 0, first.stderr
        assert _received(sinks.directory) == ([], [])

        # the break: a renewal with a new key (TLSA not updated), and DMARC edited to p=none
        renewed = renewal_ca.issue([HOST])
        renewed.write(directory / "hosts" / HOST / "tls")
        _postfix_reload(state, HOST)
        _edit_zone(directory, "p=reject; sp=reject", "p=none; sp=none")
        _restart_unbound(state)

        second = monitor_run()
        assert second.returncode == 1, second.stderr
        mails, posts = _received(sinks.directory)
        assert len(mails) == 1 and len(posts) == 1
        expected = {
            ("event", "level_dropped confidentiality"),
            ("event", "level_dropped phishing"),
            ("event", "level_dropped integrity"),
            ("event", "protocol_regressed dane"),
            ("event", "protocol_regressed dmarc_policy"),
            ("new", f"finding dane.no_match {HOST} {ADDRESS}"),
            ("new", "finding dmarc_policy.none"),
            ("new", f"dane_key_changed {HOST} {ADDRESS}"),
        }
        alerts = json.loads(posts[0]["body"])["alerts"]
        assert {(a["change"], a["key"]) for a in alerts} == expected
        [broke] = [a for a in alerts if a["rule"] == "dane_key_changed"]
        tlsa = f"_25._tcp.{HOST}. 3600 IN TLSA 3 1 1 {renewed.spki_sha256}"
        assert broke["fixes"][0]["snippets"][0]["text"] == tlsa  # the exact record for the new key
        mail = parse_mail(mails[0].encode())
        assert mail["Subject"] == "[mecsa monitor] top.test: 3 new, 5 event"
        body = mail.get_body(("plain",))
        assert body is not None and tlsa in body.get_content()

        # nothing changed: nothing is sent, the alerts still hold
        third = monitor_run()
        assert third.returncode == 1, third.stderr
        mails, posts = _received(sinks.directory)
        assert (len(mails), len(posts)) == (1, 1)

        # DMARC fixed: its finding is resolved, the DANE break still holds (and is not resent)
        _edit_zone(directory, "p=none; sp=none", "p=reject; sp=reject")
        _restart_unbound(state)
        fourth = monitor_run()
        assert fourth.returncode == 1, fourth.stderr
        mails, posts = _received(sinks.directory)
        assert len(mails) == 2 and len(posts) == 2
        assert {(a["change"], a["key"]) for a in json.loads(posts[1]["body"])["alerts"]} == {
            ("resolved", "finding dmarc_policy.none")
        }

        # the reports: ingested into the monitor's store, then read by the monitor
        _ingest_reports(tmp_path / "reports", store)
        watch.write_text("reports = true\ntls_failure_threshold = 0.05\n" + watch.read_text())
        fifth = monitor_run()
        assert fifth.returncode == 1, fifth.stderr
        mails, posts = _received(sinks.directory)
        assert len(mails) == 3 and len(posts) == 3
        told = {(a["change"], a["key"]): a for a in json.loads(posts[2]["body"])["alerts"]}
        assert set(told) == {
            ("new", f"report_unknown_source {SPOOFER}"),
            ("new", "report_tls_failure_rate top.test"),
        }
        spoof = told["new", f"report_unknown_source {SPOOFER}"]
        assert f"{SPOOFER} sent 25 message(s) as top.test that failed DMARC" in spoof["message"]
        assert f"ip4:{SPOOFER}" in spoof["fixes"][0]["snippets"][0]["text"]
        rate = told["new", "report_tls_failure_rate top.test"]
        assert rate["message"].startswith("12 of 100 TLS sessions towards top.test failed (12.0%")
        assert f"tlsa-invalid (tlsa) on {HOST}: still failing" in rate["message"]
        assert rate["severity"] == "critical" and rate["fixes"]  # the DANE fix of the live finding
        assert parse_mail(mails[2].encode())["Subject"] == "[mecsa monitor] top.test: 2 new"
        sixth = monitor_run()
        assert sixth.returncode == 1, sixth.stderr
        mails, posts = _received(sinks.directory)
        assert (len(mails), len(posts)) == (3, 3)  # nothing more
    finally:
        result = down(directory)
    assert result.leftovers == ()


def _ingest_reports(directory: Path, store: Path) -> None:
    """A DMARC report with a spoofing source and an aligned one, a TLS report with 12% tlsa-invalid."""
    import datetime as dt

    from tests.unit.reports.samples import Aggregate, Row, aggregate_xml, json_bytes, tls_report

    directory.mkdir()
    now = int(time.time())
    rows = (
        Row(source_ip=SPOOFER, count=25, dkim="fail", spf="fail", header_from="top.test"),
        Row(source_ip=ADDRESS, count=60, header_from="top.test"),
    )
    report = Aggregate(
        org="Lab Receiver", domain="top.test", begin=now - 2 * 86400, end=now - 86400, rows=rows
    )
    (directory / "dmarc.xml").write_bytes(aggregate_xml(report))
    day = (dt.datetime.now(dt.UTC) - dt.timedelta(days=1)).strftime("%Y-%m-%d")
    tls = tls_report(
        "lab-tls-1",
        "Lab Sender",
        domain="top.test",
        start=f"{day}T00:00:00Z",
        end=f"{day}T23:59:59Z",
        success=88,
        failures=(("tlsa-invalid", HOST, 12),),
        policy_type="tlsa",
    )
    (directory / "tls.json").write_bytes(json_bytes(tls))
    argv = [sys.executable, "-m", "mecsa", "reports", "ingest", "--store", str(store)]
    files = [str(directory / "dmarc.xml"), str(directory / "tls.json")]
    done = subprocess.run([*argv, *files], capture_output=True, text=True, check=False, timeout=120)
    assert done.returncode == 0 and "2 stored" in done.stdout, done.stdout + done.stderr


class _Sinks:
    def __init__(self, directory: Path, ports: dict[str, Any]) -> None:
        self.directory = directory
        self.smtp_port = int(ports["smtp"])
        self.webhook_port = int(ports["webhook"])
        self.ca_file = str(ports["ca_file"])


def _start_sinks(state: Any, node: str, directory: Path) -> _Sinks:
    """The receivers in the client namespace, registered as a lab daemon so that `down` stops them."""
    from mecsa.lab import netns

    directory.mkdir()
    argv = netns.exec_argv(
        state.ns(node), [sys.executable, "-m", "tests.monitor_sinks", str(directory)],
        resolv_conf=state.directory / "resolv.conf",
    )  # fmt: skip
    log = (directory / "sinks.log").open("ab")
    proc = subprocess.Popen(
        argv, cwd=REPO, stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True
    )
    state.add_daemon("monitor-sinks", node, proc.pid)
    deadline = time.monotonic() + 20
    while not (directory / "ports.json").exists():
        assert proc.poll() is None, (directory / "sinks.log").read_text()
        assert time.monotonic() < deadline, "the sinks did not start"
        time.sleep(0.05)
    return _Sinks(directory, json.loads((directory / "ports.json").read_text()))


def _watchlist(resolver: str, trust: Path, sinks: _Sinks) -> str:
    return f"""
interval = "1h"
notify = ["mail", "hook"]

[assess]
resolvers = ["{resolver}"]
ca_file = "{trust}"
dkim_selectors = ["lab"]
timeout = 5

[[domain]]
name = "top.test"

[notifier.mail]
type = "email"
host = "127.0.0.1"
port = {sinks.smtp_port}
from = "mecsa-monitor@top.test"
to = ["postmaster@top.test"]
ca_file = "{sinks.ca_file}"

[notifier.hook]
type = "webhook"
url = "http://127.0.0.1:{sinks.webhook_port}/alerts"
"""


def _received(directory: Path) -> tuple[list[str], list[dict[str, Any]]]:
    mails = [p.read_text() for p in sorted(directory.glob("mail-*.eml"))]
    posts = [json.loads(p.read_text()) for p in sorted(directory.glob("post-*.json"))]
    return mails, posts


def _postfix_reload(state: Any, host: str) -> None:
    from mecsa.lab.runner import run_in

    node = next(h["node"] for d in state.domains.values() for h in d["hosts"] if h["hostname"] == host)
    config = state.directory / "hosts" / host / "etc" / "postfix"
    done = run_in(state, node, ["postfix", "-c", str(config), "reload"], capture=True, timeout=30)
    assert done.returncode == 0, done.stderr


def _edit_zone(directory: Path, old: str, new: str) -> None:
    """Edit top.test's DMARC record and bump the SOA serial; Knot reloads and re-signs the zone."""
    zone = directory / "knot" / "zones" / "top.test.zone"
    text = zone.read_text()
    assert old in text
    serial = int(text.split(" SOA ", 1)[1].split()[2])
    text = text.replace(old, new).replace(
        f"hostmaster.ns.test. {serial} ", f"hostmaster.ns.test. {serial + 1} "
    )
    zone.write_text(text)
    conf = directory / "knot" / "knot.conf"
    done = subprocess.run(
        ["knotc", "-c", str(conf), "-b", "zone-reload", "top.test."],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    deadline = time.monotonic() + 20
    while True:  # the reload is done when Knot serves the new serial
        status = subprocess.run(
            ["knotc", "-c", str(conf), "zone-status", "top.test."],
            capture_output=True,
            text=True,
            check=False,
        )
        if f"serial: {serial + 1}" in status.stdout or f"serial: {serial + 2}" in status.stdout:
            return
        assert time.monotonic() < deadline, status.stdout + status.stderr
        time.sleep(0.1)


def _restart_unbound(state: Any) -> None:
    """Stop the lab's Unbound and start it again with the same configuration: an empty cache."""
    from mecsa.lab import netns
    from mecsa.lab.runner import listening

    entry = next(d for d in state.data["daemons"] if d["name"] == "unbound" and _alive(d["pid"]))
    os.kill(entry["pid"], signal.SIGTERM)
    deadline = time.monotonic() + 10
    while _alive(entry["pid"]):
        assert time.monotonic() < deadline, "unbound did not stop"
        time.sleep(0.05)
    conf = state.directory / "unbound" / "unbound.conf"
    argv = netns.exec_argv(
        state.ns(entry["node"]),
        ["unbound", "-d", "-c", str(conf)],
        resolv_conf=state.directory / "resolv.conf",
    )
    log = (state.directory / "logs" / "unbound.out").open("ab")
    proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True)
    state.add_daemon("unbound", entry["node"], proc.pid)
    resolver = state.data.get("resolver", "10.53.0.3")
    while not listening(state.ns(entry["node"]), "udp", resolver, 53):
        assert proc.poll() is None and time.monotonic() < deadline + 10, "unbound did not come back"
        time.sleep(0.05)


def _alive(pid: int) -> bool:
    try:
        with Path(f"/proc/{pid}/status").open() as f:
            return not any(line.startswith("State:") and "Z" in line.split()[1] for line in f)
    except FileNotFoundError:
        return False
