"""The lab at real latency (issue 20): a client namespace that reaches the lab through a delaying link.

The kernel here has no netem, so the delay is made by `mecsa.lab.delay`: a TAP device in a new
namespace (`<prefix>-dcli`, address `DELAYED_CLIENT_IP`) and a TAP device that is a port of the lab's
bridge, joined by a socket pair; each relay holds every frame `delay / 2`, so every round trip
between the client and any lab node (resolver, MX hosts, MTA-STS web server) costs `delay`. Traffic
between the lab's servers (Unbound and Knot) is not delayed: after a warm-up run the resolver
answers from its cache, as a resolver near its users does.

`compare()` runs the cold-CLI comparison of bench_cli.py from that namespace, interleaved, and
reports the medians, the ratio, the critical path of a full mecsa run (`critical_path_rtts`,
round trip by round trip in benchmarks/README.md) and mecsa / critical path; it returns the
targets missed. Network: only the lab's namespaces, which have no route out.
"""

from __future__ import annotations

import contextlib
import json
import os
import resource
import signal
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence

from mecsa.lab import netns
from mecsa.lab.plan import NET
from mecsa.lab.runner import run_in
from mecsa.lab.state import LabState

DELAYED_NODE = "dcli"
DELAYED_CLIENT_IP = f"{NET}.200"  # no lab node has it (MX hosts are .10 and up, .250 is SPF's)
TARGET_PATH_RATIO = 1.3


def critical_path_rtts() -> list[tuple[str, int]]:
    """The round trips on the longest dependent chain of `mecsa assess top.test` (one MX, one address).

    Every frame is delayed, so TCP connects and TLS handshakes cost round trips too. Per address
    two sessions may run at once (`PER_ADDRESS_CONNECTIONS`). Slot 1: the main session, then the
    weak-class offer (refused: 5). Slot 2, from the A answer: the TLSv1+TLSv1.1 offer (refused:
    5), then the TLSv1.2 offer (accepted: 6, a TLS 1.2 handshake is two round trips), which ends
    at 2 + 5 + 6 = 13, one before slot 1's 2 + 7 + 5 = 14.
    """
    return [
        ("MX question", 1),
        ("A/AAAA of the MX host, asked beside the chain walk's DS/DNSKEY that validate the MX answer", 1),
        ("main session: TCP connect + 220 banner", 2),
        ("main session: EHLO, STARTTLS, TLS 1.3 handshake", 3),
        ("main session: EHLO after TLS; Postfix's reply waits (Nagle) for the ACK of its TLS 1.3 tickets", 2),
        (
            "slot 1 after the main session: the weak-class offer (connect+banner 2, EHLO, STARTTLS, refusal)",
            5,
        ),
    ]
    # Beside the sessions: MTA-STS (TXT, A, connect, handshake, GET = 5), DANE's TLSA, the DMARC
    # walk, the guessed DKIM selectors (sent once the other questions are answered).


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


class DelayedClient:
    """The client namespace behind the delaying link; `down()` (or the lab's own down) removes it."""

    def __init__(self, state: LabState, delay: float) -> None:
        self.state = state
        self.delay = delay
        self.namespace = state.ns(DELAYED_NODE)  # the lab's prefix: `runner.down` cleans it up too
        self.pids: list[int] = []

    def up(self) -> DelayedClient:
        netns.create_namespace(self.namespace)
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        halves = (
            (self.state.ns("br"), ours, ["--name", "dlyb", "--bridge", netns.BRIDGE]),
            (
                self.namespace,
                theirs,
                ["--name", "dly0", "--address", f"{DELAYED_CLIENT_IP}/{netns.PREFIX_LEN}"],
            ),
        )
        started = []
        for namespace, end, where in halves:
            argv = [sys.executable, "-m", "mecsa.lab.delay", "--fd", str(end.fileno()), *where]
            argv += ["--delay", str(self.delay / 2)]
            proc = subprocess.Popen(
                ["ip", "netns", "exec", namespace, *argv], pass_fds=(end.fileno(),), stdout=subprocess.PIPE
            )
            self.pids.append(proc.pid)
            started.append(proc)
        ours.close()
        theirs.close()
        for proc in started:
            assert proc.stdout is not None
            if proc.stdout.readline().strip() != b"ready":
                self.down()
                raise RuntimeError("the delaying link did not come up")
        return self

    def run(self, argv: Sequence[str]) -> tuple[float, int, float, str]:
        """Wall seconds, exit status, CPU seconds (children) and stdout of `argv` in the namespace."""
        cpu = _children_cpu()
        started = time.perf_counter()
        done = run_in(self.state, DELAYED_NODE, argv, capture=True, timeout=300)
        return time.perf_counter() - started, done.returncode, _children_cpu() - cpu, done.stdout

    def down(self) -> None:
        for pid in self.pids:
            try:
                os.kill(pid, signal.SIGTERM)
                os.waitpid(pid, 0)
            except (ProcessLookupError, ChildProcessError):
                pass
        self.pids.clear()
        if self.namespace in netns.list_namespaces(self.namespace):
            netns.delete_namespace(self.namespace)


def round_trip(client: DelayedClient, resolver: str) -> float:
    """One measured round trip through the link: a DNS question to the lab resolver (cached answer)."""
    code = (
        "import time,dns.message,dns.query;q=dns.message.make_query('top.test','SOA');"
        f"dns.query.udp(q,'{resolver}',timeout=5);t=time.perf_counter();dns.query.udp(q,'{resolver}',timeout=5);"
        "print(time.perf_counter()-t)"
    )
    _, _, _, out = client.run([sys.executable, "-c", code])
    return float(out.strip() or "nan")


def compare(state: LabState, argvs: Mapping[str, list[str]], runs: int, delay: float) -> list[str]:
    """The interleaved cold-CLI comparison at `delay` per round trip; prints it, returns targets missed."""
    client = DelayedClient(state, delay).up()
    try:
        rtt = round_trip(client, str(state.data["resolver"]))
        print(
            f"\n--- {delay * 1000:.0f} ms per round trip (measured: {rtt * 1000:.1f} ms, DNS to the resolver)"
        )
        times: dict[str, list[float]] = {name: [] for name in argvs}
        cpus: dict[str, list[float]] = {name: [] for name in argvs}
        in_process: list[float] = []
        floor: list[float] = []
        incomplete = 0
        for name, argv in argvs.items():  # warm-up: the resolver's cache, the servers' first sessions
            seconds, code, _, _ = client.run(argv)
            print(f"warm-up {name}: {seconds:.3f} s, exit {code}")
        for _ in range(runs):
            floor.append(client.run(["true"])[0])  # `ip netns exec` + mount, subtracted as bench_cli does
            for name, argv in argvs.items():
                seconds, code, cpu, out = client.run(argv)
                times[name].append(seconds)
                cpus[name].append(cpu)
                if name == "mecsa":
                    with contextlib.suppress(ValueError, KeyError, TypeError):
                        doc = json.loads(out)
                        in_process.append(float(doc["duration_s"]))
                        if code == 0 and all(level == 10 for level in doc["scores"].values()):
                            continue
                    # a run that failed checks (a timeout at this latency) is not the run to time
                    incomplete += 1
                    print(f"mecsa exited {code} without the top score", file=sys.stderr)
    finally:
        client.down()
    path = critical_path_rtts()
    rtts = sum(n for _, n in path)
    # The path at the round trip measured through the link (the relays add a little to `delay`).
    ideal = rtts * (rtt if rtt == rtt and rtt > 0 else delay)
    netns_s = statistics.median(floor)
    print(f"`ip netns exec` + mount + `true` (subtracted): {netns_s * 1000:.0f} ms median")
    med = {name: statistics.median(ts) - netns_s for name, ts in times.items()}
    for name, ts in times.items():
        print(
            f"{name:<11} median {med[name] * 1000:6.0f} ms   min {(min(ts) - netns_s) * 1000:6.0f} ms   "
            f"CPU median {statistics.median(cpus[name]) * 1000:5.0f} ms   n={len(ts)}"
        )
    ratio = med["checkdmarc"] / med["mecsa"]
    print(f"checkdmarc / mecsa: {ratio:.2f}x")
    print(
        f"critical path of a full mecsa run: {rtts} round trips = {ideal * 1000:.0f} ms at the measured"
        f" round trip ({rtts * delay * 1000:.0f} ms at {delay * 1000:.0f} ms)"
    )
    for what, n in path:
        print(f"  {n}  {what}")
    if in_process:
        inside = statistics.median(in_process)
        print(
            f"mecsa in-process (the document's duration_s): median {inside * 1000:.0f} ms"
            f" = {inside / ideal:.2f}x the path"
        )
    path_ratio = med["mecsa"] / ideal
    print(f"mecsa (whole CLI) / critical path: {path_ratio:.2f}x (target at most {TARGET_PATH_RATIO})")
    for name in med.keys() - {"mecsa", "checkdmarc"}:  # another install timed beside (bench_cli --before)
        print(f"{name} (whole CLI) / critical path: {med[name] / ideal:.2f}x")
    missed = (
        [f"{incomplete} mecsa run(s) at {delay * 1000:.0f} ms without the top score"] if incomplete else []
    )
    if path_ratio > TARGET_PATH_RATIO:
        missed.append(
            f"at {delay * 1000:.0f} ms per round trip, mecsa / critical path"
            f" {path_ratio:.2f} > {TARGET_PATH_RATIO}"
        )
    return missed
