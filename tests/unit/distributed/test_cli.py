"""`mecsa scan --engine celery`, `mecsa scan status` and `mecsa worker` from the command line."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from mecsa.distributed.codec import config_from_json, config_to_json, target_from_json, target_to_json
from mecsa.dns.zoneserver import ThreadedZoneServer, ZoneData
from mecsa.observe import AssessOptions
from mecsa.observe.dmarc import DiscoveryMethod
from mecsa.scan.assessor import ScanConfig
from mecsa.scan.inputs import Target
from mecsa.store import open_store
from tests.unit.distributed.redisserver import RedisServer
from tests.unit.scan.scanning import ORIGIN, TLD, write_list, zone

DNS_ONLY = ["--only", "mx", "--only", "spf", "--only", "dmarc"]


def invoke(args: list[str]) -> Any:
    from click.testing import CliRunner

    from mecsa.cli import app

    return CliRunner().invoke(app, args)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--engine", "celery"], "--engine celery needs --broker"),
        (["--engine", "celery", "--broker", "amqp://127.0.0.1"], "give a Redis URL"),
        (["--engine", "spark"], "--engine 'spark': local or celery"),
    ],
)
def test_bad_engine_options_are_usage_errors(tmp_path: Path, args: list[str], message: str) -> None:
    listing = write_list(tmp_path, ["a.test"])
    result = invoke(["scan", listing, "--store", str(tmp_path / "s.sqlite"), *args])
    assert result.exit_code == 2
    assert message in result.output


def test_status_of_a_scan_the_store_lacks_is_a_usage_error(tmp_path: Path) -> None:
    result = invoke(["scan", "status", "999", "--store", str(tmp_path / "s.sqlite")])
    assert result.exit_code == 2
    assert "the store has no scan 999" in result.output
    assert invoke(["scan", "status", "--store", str(tmp_path / "s.sqlite")]).exit_code == 2


def test_worker_refuses_a_broker_that_is_not_redis(tmp_path: Path) -> None:
    result = invoke(["worker", "--broker", "amqp://127.0.0.1", "--store", str(tmp_path / "s.sqlite")])
    assert result.exit_code == 2
    assert "give a Redis URL" in result.output


def test_a_scan_config_crosses_the_broker_as_json_unchanged() -> None:
    config = ScanConfig(
        options=AssessOptions(
            dkim_selectors=("s1", "s2"), ca_file="/ca.pem", smtp_timeout=3.5, tls_versions=False,
            smtp_port=2525, https_port=8443, only=frozenset({"mx", "spf"}), skip=frozenset({"dane"}),
            check_deadline=12.0, revocation=False, dmarc_discovery=DiscoveryMethod.PSL,
        ),
        profile="mecsa-st", resolvers=("127.0.0.1:53",), dns_timeout=1.5, concurrency=7,
        per_ip_connections=1, per_ip_rate=0.5,
    )  # fmt: skip
    assert config_from_json(json.loads(json.dumps(config_to_json(config)))) == config
    entry = Target(3, "x,y", None, "line 3 has no 'domain' column")
    assert target_from_json(json.loads(json.dumps(target_to_json(entry)))) == entry


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """The one store of workers and submitter: a SQLite file (one host) or PostgreSQL (several)."""
    if request.param == "sqlite":
        yield str(tmp_path / "s.sqlite")
        return
    from tests.pgcluster import PostgresCluster

    with PostgresCluster() as pg:
        yield pg.create_database("celery")


@pytest.mark.slow
def test_a_celery_scan_from_the_command_line_stores_and_writes_every_domain(
    tmp_path: Path, store_url: str
) -> None:
    names = [f"d{i}.{ORIGIN}" for i in range(12)]
    listing = write_list(tmp_path, [*names, "not a domain", names[0]])
    store = store_url
    with (
        RedisServer() as redis,
        ThreadedZoneServer(ZoneData.from_texts({**TLD, ORIGIN: zone(n.split(".")[0] for n in names)})) as dns,
    ):
        worker = subprocess.Popen(
            [sys.executable, "-m", "mecsa", "worker", "--broker", redis.url(), "--store", str(store),
             "--concurrency", "2"],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        )  # fmt: skip
        try:
            done = subprocess.run(
                [sys.executable, "-m", "mecsa", "scan", listing, "--engine", "celery",
                 "--broker", redis.url(), "--chunk-size", "3", "--store", str(store),
                 "--out", str(tmp_path / "out.jsonl"),
                 "--resolver", dns.address, "--progress-every", "0.2", *DNS_ONLY],
                capture_output=True, text=True, timeout=120, check=False,
            )  # fmt: skip
            assert done.returncode == 0, done.stderr
            status = subprocess.run(
                [sys.executable, "-m", "mecsa", "scan", "status", "1", "--store", str(store),
                 "--broker", redis.url()],
                capture_output=True, text=True, timeout=60, check=False,
            )  # fmt: skip
        finally:
            worker.send_signal(signal.SIGTERM)
            _, worker_log = worker.communicate(timeout=60)
    records = [json.loads(line) for line in (tmp_path / "out.jsonl").read_text().splitlines()]
    assert sorted(r["domain"] for r in records) == sorted([*names, "not a domain"])
    by_domain = {r["domain"]: r for r in records}
    assert by_domain["not a domain"]["status"] == "error"
    assert all(by_domain[n]["protocols"]["dmarc"]["status"] == "pass" for n in names)
    # the closing line, as a local scan prints it: the repeated line counts as skipped
    assert "scan 1 finished: 13 done (1 errors), 1 skipped" in done.stderr
    assert status.returncode == 0, status.stderr
    assert status.stdout.startswith("scan 1 finished: 13/14 domains stored (1 errors), engine celery")
    assert "0 chunks queued or running" in status.stdout
    with open_store(store) as s:
        assert s.count_results(1) == 13
    assert b"Traceback" not in worker_log


@pytest.mark.slow
def test_ctrl_c_interrupts_a_celery_scan_and_resume_finishes_it(tmp_path: Path) -> None:
    import time

    names = [f"r{i}.{ORIGIN}" for i in range(6)]
    listing = write_list(tmp_path, names)
    store = tmp_path / "s.sqlite"
    with (
        RedisServer() as redis,
        ThreadedZoneServer(ZoneData.from_texts({**TLD, ORIGIN: zone(n.split(".")[0] for n in names)})) as dns,
    ):
        argv = [sys.executable, "-m", "mecsa", "scan", listing, "--engine", "celery", "--broker", redis.url(),
                "--chunk-size", "2", "--store", str(store), "--out", str(tmp_path / "out.jsonl"),
                "--resolver", dns.address, "--progress-every", "0.2", *DNS_ONLY]  # fmt: skip
        # no worker yet: the chunks wait in the queue
        submitter = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        assert submitter.stderr is not None
        assert submitter.stderr.readline().startswith("scan: 0/6 done")
        submitter.send_signal(signal.SIGINT)
        _, err = submitter.communicate(timeout=60)
        assert submitter.returncode == 130, err
        assert "interrupted after 0 domains; continue with --resume --scan 1" in err
        with open_store(store) as s:
            scan = s.get_scan(1)
            assert scan is not None and scan.state == "interrupted"
        worker = subprocess.Popen(
            [sys.executable, "-m", "mecsa", "worker", "--broker", redis.url(), "--store", str(store),
             "--concurrency", "1"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        try:
            started = time.monotonic()
            done = subprocess.run([*argv, "--resume", "--scan", "1"], capture_output=True, text=True,
                                  timeout=120, check=False)  # fmt: skip
            assert done.returncode == 0, done.stderr
            assert time.monotonic() - started < 60
        finally:
            worker.send_signal(signal.SIGTERM)
            worker.wait(60)
    records = [json.loads(line) for line in (tmp_path / "out.jsonl").read_text().splitlines()]
    assert sorted(r["domain"] for r in records) == sorted(names)
    with open_store(store) as s:
        scan = s.get_scan(1)
        assert scan is not None and (scan.state, scan.domains_done) == ("finished", 6)
