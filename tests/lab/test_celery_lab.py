"""`mecsa scan --engine celery` in the lab: real redis-server, two `mecsa worker` processes, real MX hosts.

Everything runs in the lab's client namespace (its own loopback holds Redis); the store is a SQLite
file both workers and the submitter share, as processes of one host would.

- the celery scan of every shipped scenario equals a local `mecsa scan` of the same list, verdict
  for verdict;
- two scans of the whole list at once, one chunk each, so that both workers assess every domain
  at the same time: the MX hosts' Postfix logs never show more than 2 connections to one address;
- a worker killed with SIGKILL mid-chunk: its chunk is delivered again, every domain stored once;
- redis-server restarted mid-scan (with its append-only file): the scan carries on to its end.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from mecsa.lab.scenario import load_scenario, shipped_scenarios
from tests.unit.distributed.redisserver import RedisServer

pytestmark = [pytest.mark.lab, pytest.mark.slow]
SCENARIOS = [load_scenario(p) for p in shipped_scenarios()]
DOMAINS = [s.domain for s in SCENARIOS]


class Cluster:
    """Redis and `mecsa worker`s in the lab's client namespace, sharing one SQLite store."""

    def __init__(
        self, lab: Path, folder: Path, *, visibility_timeout: int = 3600, persist: bool = False
    ) -> None:
        from mecsa.lab import netns
        from mecsa.lab.plan import CLIENT_NODE
        from mecsa.lab.runner import load_state

        self.state = load_state(lab)
        self.folder = folder
        self.prefix = netns.exec_argv(
            self.state.ns(CLIENT_NODE), [], resolv_conf=self.state.directory / "resolv.conf"
        )
        self.redis = RedisServer(prefix=self.prefix, persist=persist)
        self.store = folder / "celery.sqlite"
        self.visibility_timeout = visibility_timeout
        self.workers: list[subprocess.Popen[bytes]] = []

    @property
    def broker(self) -> str:
        return self.redis.url()

    def start(self, workers: int = 2) -> Cluster:
        from mecsa.store import open_store

        self.redis.start()
        open_store(self.store).close()
        for n in range(workers):
            self.start_worker(n)
        return self

    def start_worker(self, n: int) -> subprocess.Popen[bytes]:
        argv = [
            sys.executable, "-m", "mecsa", "worker", "--broker", self.broker, "--store", str(self.store),
            "--concurrency", "1", "--visibility-timeout", str(self.visibility_timeout),
        ]  # fmt: skip
        with (self.folder / f"worker{n}.log").open("ab") as log:
            # a session of its own: SIGKILL to the group takes the pool process too, as a host crash
            worker = subprocess.Popen(
                [*self.prefix, *argv],
                stdout=log,
                stderr=log,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        self.workers.append(worker)
        return worker

    def log(self, n: int) -> str:
        return (self.folder / f"worker{n}.log").read_text(errors="replace")

    def scan_argv(self, listing: Path, out: Path, *extra: str) -> list[str]:
        return [
            *self.prefix, *scan_args(self.state, listing, out, self.store),
            "--engine", "celery", "--broker", self.broker, *extra,
        ]  # fmt: skip

    def stop(self) -> None:
        for worker in self.workers:
            if worker.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(worker.pid, signal.SIGTERM)
        for worker in self.workers:
            try:
                worker.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(worker.pid, signal.SIGKILL)
                worker.wait(10)
        self.redis.stop()


def scan_args(state: Any, listing: Path, out: Path, store: Path) -> list[str]:
    return [
        sys.executable, "-m", "mecsa", "scan", str(listing), "--out", str(out), "--store", str(store),
        "--quiet", "--resolver", str(state.data.get("resolver", "10.53.0.3")),
        "--ca-file", str(state.data["ca_file"]), "--dkim-selector", "lab", "--timeout", "5",
    ]  # fmt: skip


@pytest.fixture
def cluster(full_lab: Path, tmp_path: Path) -> Iterator[Cluster]:
    c = Cluster(full_lab, tmp_path, visibility_timeout=20).start()
    yield c
    c.stop()


def listing(folder: Path) -> Path:
    path = folder / "scenarios.txt"
    path.write_text("".join(f"{d}\n" for d in DOMAINS) + "not a domain\n")
    return path


def verdicts(record: dict[str, Any]) -> Any:
    """What a scan concluded about a domain: levels, each protocol's status, each finding's status."""
    if "scores" not in record:
        return ("error", record["reason"])
    return (
        record["scores"],
        {p: v["status"] for p, v in record["protocols"].items()},
        sorted((f["id"], f["status"], str(f.get("subject"))) for f in record["findings"]),
    )


def records(path: Path) -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = {}
    for record in map(json.loads, path.read_text().splitlines()):
        assert record["domain"] not in found, f"{record['domain']} written twice"
        found[record["domain"]] = record
    return found


def stored_once(store_path: Path, scan_id: int | None = None) -> dict[str, int]:
    """Results per domain of the store's (only, or given) scan."""
    from mecsa.store import open_store

    with open_store(store_path) as store:
        scans = store.list_scans()
        scan = scans[0] if scan_id is None else next(s for s in scans if s.id == scan_id)
        counts: dict[str, int] = {}
        for stored in store.scan_assessments(scan.id):
            counts[stored.domain] = counts.get(stored.domain, 0) + 1
        missing = {*DOMAINS, "not a domain"} - set(counts)
        assert (scan.state, missing) == ("finished", set())
        assert scan.domains_done == len(DOMAINS) + 1
    return counts


def test_celery_scan_of_every_scenario_equals_the_local_scan(cluster: Cluster, tmp_path: Path) -> None:
    from mecsa.lab.plan import CLIENT_NODE
    from mecsa.lab.runner import run_in

    names = listing(tmp_path)
    local = run_in(cluster.state, CLIENT_NODE, [*scan_args(cluster.state, names, tmp_path / "local.jsonl",
                   tmp_path / "local.sqlite"), "--workers", "2"], capture=True, timeout=300)  # fmt: skip
    assert local.returncode == 0, local.stderr
    done = subprocess.run(cluster.scan_argv(names, tmp_path / "celery.jsonl", "--chunk-size", "4"),
                          capture_output=True, text=True, timeout=300, check=False)  # fmt: skip
    assert done.returncode == 0, done.stderr + cluster.log(0) + cluster.log(1)
    mine, theirs = records(tmp_path / "celery.jsonl"), records(tmp_path / "local.jsonl")
    assert set(mine) == set(theirs) == {*DOMAINS, "not a domain"}
    differing = {
        d: (verdicts(mine[d]), verdicts(theirs[d])) for d in mine if verdicts(mine[d]) != verdicts(theirs[d])
    }
    assert differing == {}
    assert set(stored_once(cluster.store).values()) == {1}
    # both workers took part
    assert all("succeeded" in cluster.log(n) for n in (0, 1))


_CONNECT = re.compile(r"postfix/smtpd\[(\d+)\]: (connect|disconnect) from ")


def peak_connections(log: str) -> int:
    """The most simultaneous SMTP sessions a Postfix log shows (one smtpd process per session)."""
    open_now: set[str] = set()
    peak = 0
    for line in log.splitlines():
        match = _CONNECT.search(line)
        if match is None:
            continue
        if match.group(2) == "connect":
            open_now.add(match.group(1))
            peak = max(peak, len(open_now))
        else:
            open_now.discard(match.group(1))
    return peak


def test_two_workers_together_never_hold_more_than_two_connections_to_one_mx(
    cluster: Cluster, tmp_path: Path
) -> None:
    logs = sorted(
        p for p in (cluster.state.directory / "logs").glob("*.postfix.log") if "sender" not in p.name
    )
    assert logs
    names = listing(tmp_path)
    # Whether the two workers' sessions overlap is timing: on a loaded machine one round can see
    # them one after the other (a peak of 1, once in about five full-suite runs). The limit is
    # asserted on every round; that it was reached (so that a third would have been seen) on one
    # of up to three rounds.
    reached = []
    for attempt in range(3):
        peaks, sessions = _two_scans_at_once(cluster, logs, names, tmp_path / str(attempt))
        assert max(peaks.values()) <= 2, peaks
        assert sessions > 2 * len(logs)
        reached.append(max(peaks.values()))
        if reached[-1] == 2:
            break
    assert reached[-1] == 2, reached  # the limit was reached: the test could have seen a third


def _two_scans_at_once(
    cluster: Cluster, logs: list[Path], names: Path, out: Path
) -> tuple[dict[str, int], int]:
    """Peak simultaneous sessions per MX log, and the sessions in all, over two scans run at once."""
    out.mkdir()
    before = {p: p.stat().st_size for p in logs}
    # Two scans (two observation caches), one chunk each, queued at once: each worker takes one and
    # assesses every domain, so both want each MX address at the same time.
    scans = [
        subprocess.Popen(
            cluster.scan_argv(names, out / f"both{n}.jsonl", "--chunk-size", "100"),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        for n in range(2)
    ]
    for scan in scans:
        _, err = scan.communicate(timeout=300)
        assert scan.returncode == 0, err.decode()
    peaks = {}
    sessions = 0
    for path in logs:
        with path.open("rb") as f:
            f.seek(before[path])
            tail = f.read().decode(errors="replace")
        peaks[path.name] = peak_connections(tail)
        sessions += tail.count("]: connect from ")
    return peaks, sessions
    assert all("succeeded" in cluster.log(n) for n in (0, 1))


def test_a_worker_killed_mid_chunk_loses_nothing_and_stores_each_domain_once(
    cluster: Cluster, tmp_path: Path
) -> None:
    names = listing(tmp_path)
    scan = subprocess.Popen(cluster.scan_argv(names, tmp_path / "killed.jsonl", "--chunk-size", "4"),
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)  # fmt: skip
    victim = cluster.workers[0]
    deadline = time.monotonic() + 120
    # Kill it while it holds a chunk (received, not yet succeeded), once the scan is under way. The
    # worker is frozen (SIGSTOP) before its log is read again, so the state seen is the state the
    # kill meets; a chunk finished in between (a race that once made this test fail) thaws it, and
    # the wait goes on for the next chunk.
    while True:
        assert time.monotonic() < deadline, cluster.log(0)
        if _holding(cluster.log(0)) and _stored(cluster.store) >= 2:
            os.killpg(victim.pid, signal.SIGSTOP)
            if _holding(cluster.log(0)):
                break
            os.killpg(victim.pid, signal.SIGCONT)
        time.sleep(0.05)
    os.killpg(victim.pid, signal.SIGKILL)
    victim.wait(10)
    received, succeeded = cluster.log(0).count(" received"), cluster.log(0).count(" succeeded")
    assert received > succeeded  # it died holding a chunk
    err = finish(scan, cluster)
    assert scan.returncode == 0, err + cluster.log(1)
    assert set(stored_once(cluster.store).values()) == {1}
    assert set(records(tmp_path / "killed.jsonl")) == {*DOMAINS, "not a domain"}


def test_the_scan_carries_on_when_redis_restarts(full_lab: Path, tmp_path: Path) -> None:
    cluster = Cluster(full_lab, tmp_path, persist=True).start()
    try:
        names = listing(tmp_path)
        scan = subprocess.Popen(cluster.scan_argv(names, tmp_path / "restart.jsonl", "--chunk-size", "2"),
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)  # fmt: skip
        deadline = time.monotonic() + 120
        while _stored(cluster.store) < 2:
            assert time.monotonic() < deadline
            time.sleep(0.1)
        cluster.redis.restart(down_s=2.0)
        err = finish(scan, cluster)
        assert scan.returncode == 0, err + cluster.log(0) + cluster.log(1)
        assert set(stored_once(cluster.store).values()) == {1}
        assert set(records(tmp_path / "restart.jsonl")) == {*DOMAINS, "not a domain"}
    finally:
        cluster.stop()


def finish(scan: subprocess.Popen[bytes], cluster: Cluster, timeout: float = 300) -> str:
    """The scan's stderr once it has ended; a scan still running after `timeout` is killed and the
    test fails with what the scan and the workers said (a CI run once saw only the timeout)."""
    try:
        _, err = scan.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        scan.kill()
        _, err = scan.communicate()
        logs = "".join(f"--- worker {n}:\n{cluster.log(n)[-6000:]}\n" for n in range(len(cluster.workers)))
        pytest.fail(f"the scan was still running after {timeout} s; its stderr:\n{err.decode()}\n{logs}")
    return err.decode(errors="replace")


def _holding(log: str) -> bool:
    return log.count(" received") > log.count(" succeeded")


def _stored(store_path: Path) -> int:
    from mecsa.store import open_store

    with open_store(store_path) as store:
        scans = store.list_scans()
        return store.count_results(scans[0].id) if scans else 0
