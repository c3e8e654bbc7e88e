"""When a cold `mecsa assess top.test` does what, in the lab (issue 20): imports against packets.

Runs the same command as bench_cli.py (a regular install: `--mecsa`), each run a fresh process in
the lab's client namespace, with an audit hook (PEP 578: the interpreter's own `import` and
`socket.*` events, no change to mecsa) that notes, on the monotonic clock shared by all processes:
the first import of each big package, the first DNS question, the first SMTP and HTTPS
connections, the last import and the exit. Prints the median of each milestone, in milliseconds
from the process's start (the `exec` by the parent), so that the closing note can say what the
start-up costs and what overlaps the network.

    python benchmarks/cold_timeline.py --mecsa /tmp/mecsa-venv/bin/mecsa [--runs 9]

Needs root (the lab's namespaces). Network: only the lab's namespaces, which have no route out.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import time
from collections import defaultdict
from pathlib import Path

from bench_cli import DOMAIN, mecsa_argv, top_score

from mecsa.lab.plan import CLIENT_NODE
from mecsa.lab.runner import default_scenarios, down, load_state, run_in, up

# Run in the measured process before mecsa: notes each milestone once, prints them at exit.
_HOOK = r"""
import os, sys, time, json
_clock = time.monotonic
_seen = {}
_PACKAGES = ("asyncio", "dns", "cryptography", "httpx", "httpcore", "publicsuffixlist", "click",
             "mecsa.cli", "mecsa.assess", "mecsa.checks", "mecsa.report", "jinja2")
def _note(what):
    if what not in _seen:
        _seen[what] = _clock()
def _hook(event, args):
    if event == "import":
        name = args[0]
        for package in _PACKAGES:
            if name == package or name.startswith(package + "."):
                _note("import " + package)
        _seen["last import"] = _clock()
    elif event in ("socket.sendto", "socket.sendmsg", "socket.connect"):
        address = args[1] if len(args) > 1 else None
        port = address[1] if isinstance(address, tuple) and len(address) > 1 else None
        name = {53: "first DNS question", 25: "first SMTP connect", 443: "first HTTPS connect"}.get(port)
        if name:
            _note(name)
        _seen["last packet"] = _clock()
sys.addaudithook(_hook)
def _report():
    _seen["exit"] = _clock()
    sys.stderr.write("TIMELINE " + json.dumps(_seen) + "\n")
    sys.stderr.flush()
_real_exit = os._exit
def _exit(code):
    _report()
    _real_exit(code)
os._exit = _exit
import atexit
atexit.register(lambda: None if "exit" in _seen else _report())
sys.argv = ["mecsa", *sys.argv[1:]]
from mecsa.cli import main
main()
"""


def python_of(mecsa: str) -> str:
    """The interpreter of a console script: its shebang."""
    first = Path(mecsa).read_text(encoding="utf-8").split("\n", 1)[0]
    if not first.startswith("#!"):
        raise SystemExit(f"{mecsa}: not a console script")
    return first[2:].strip()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--mecsa", default=shutil.which("mecsa") or "mecsa")
    parser.add_argument("--runs", type=int, default=9)
    parser.add_argument("--dir", type=Path, default=Path(f"/run/mecsa-lab-timeline-{os.getpid()}"))
    args = parser.parse_args()
    if os.geteuid() != 0:
        print("cold_timeline needs root (the lab's namespaces)", file=sys.stderr)
        return 2
    python = python_of(args.mecsa)
    up(default_scenarios(), args.dir)
    marks: dict[str, list[float]] = defaultdict(list)
    durations: list[float] = []
    try:
        state = load_state(args.dir)
        argv = [python, "-c", _HOOK, *mecsa_argv(args.mecsa, state)[1:]]
        for run in range(args.runs + 1):  # the first run warms the page cache and mecsa's code cache
            started = time.monotonic()
            done = run_in(state, CLIENT_NODE, argv, capture=True, timeout=120)
            if done.returncode != 0 or not top_score(done.stdout):
                print(f"run {run}: exit {done.returncode} without the top score", file=sys.stderr)
                return 2
            line = next(x for x in done.stderr.splitlines() if x.startswith("TIMELINE "))
            if run == 0:
                continue
            for what, when in json.loads(line.removeprefix("TIMELINE ")).items():
                marks[what].append((when - started) * 1000)
            durations.append(json.loads(done.stdout)["duration_s"] * 1000)
    finally:
        down(args.dir)
    print(f"cold `mecsa assess {DOMAIN}`: median ms from exec, n={args.runs}, load {os.getloadavg()[0]:.1f}")
    for what, values in sorted(marks.items(), key=lambda item: statistics.median(item[1])):
        print(f"  {statistics.median(values):6.0f}  {what}")
    print(f"  the assessment itself (the document's duration_s): {statistics.median(durations):.0f} ms")
    print("  (from the parent's exec of `ip netns exec`, about 6 ms before the interpreter starts)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
