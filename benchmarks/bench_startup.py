"""CLI start-up: wall and CPU time of `mecsa --version`, `--help`, ..., the import profile, the breakdown.

    .venv/bin/python benchmarks/bench_startup.py [--runs 20] [--top 15]

Each command runs `--runs` times in a fresh interpreter (the first run is a warm-up and is not
counted); CPU is user + system of the child (the steadier figure on a shared machine). Then
`python -X importtime -m mecsa --help` lists the slowest imports (cumulative), and every module
that `mecsa --help` imports from a list of known heavy ones. Last, the start-up lines of issue 20's
breakdown, in CPU, each the median of `--runs` fresh interpreters (`BREAKDOWN`).
Time a regular install (`pip install .` into a venv: compiled bytecode), not an editable one.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
PYTHON = sys.executable
HEAVY = (
    "asyncio", "dns.asyncquery", "dns.zone", "httpx", "cryptography.x509", "ssl", "jinja2",
    "rich", "dkim", "nacl", "aiosmtpd", "aiosmtplib", "publicsuffixlist", "yaml", "jsonschema",
    "mecsa.assess", "mecsa.checks.registry", "mecsa.lab", "mecsa.harden", "mecsa.report.html",
)  # fmt: skip


# What a cold `mecsa assess` imports before its first DNS question, and what it imports on the way
# (httpx for MTA-STS, cryptography for x509); as the CLI's main() runs it (httpx's CLI kept out).
ASSESS_IMPORTS = """
import sys
sys.modules.setdefault("httpx._main", None)
import mecsa.cli.assess, mecsa.assess, mecsa.observe, mecsa.report.json, mecsa.dns.resolver
from mecsa.checks import registry
registry.CHECKS
import httpx, httpcore, cryptography.x509, dns.asyncquery
"""
# Each prints the CPU milliseconds of its part, measured inside the child.
BREAKDOWN = {
    "imports on the assess path": f"""
import time
t = time.process_time()
{ASSESS_IMPORTS}
print((time.process_time() - t) * 1000)
""",
    "CLI parsing `assess` (12 options)": """
import time
from mecsa.cli.assess import assess_command
t = time.process_time()
assess_command.make_context("assess", [
    "top.test", "--json", "--resolver", "10.53.0.3", "--ca-file", "/etc/ssl/certs/ca-certificates.crt",
    "--dkim-selector", "s1", "--timeout", "2", "--smtp-timeout", "10", "--only", "mx", "--skip", "dane",
    "--profile", "mecsa", "--dnssec-mode", "both", "--trust-anchor", "/dev/null", "--no-revocation",
])
print((time.process_time() - t) * 1000)
""",
    "import mecsa.cli": """
import time
t = time.process_time()
import mecsa.cli
print((time.process_time() - t) * 1000)
""",
    "suffix list (first use)": """
import time
from mecsa import orgdomain
t = time.process_time()
orgdomain._suffix_list()
print((time.process_time() - t) * 1000)
""",
}


def child_cpu(command: list[str], env: dict[str, str]) -> tuple[float, float, str]:
    """Wall seconds, CPU seconds (user + system) and stdout of one run of `command`."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, env=env, check=True, timeout=60)
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
    return wall, cpu, done.stdout


def timed(command: list[str], runs: int) -> tuple[list[float], list[float]]:
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "0"}
    child_cpu(command, env)  # warm-up
    walls, cpus = [], []
    for _ in range(runs):
        wall, cpu, _ = child_cpu(command, env)
        walls.append(wall)
        cpus.append(cpu)
    return walls, cpus


def breakdown(runs: int) -> dict[str, float]:
    """Median CPU ms of each line of `BREAKDOWN`, each child a fresh interpreter."""
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "0"}
    out: dict[str, float] = {}
    for label, code in BREAKDOWN.items():
        out[label] = statistics.median(
            float(child_cpu([PYTHON, "-c", code], env)[2].split()[-1]) for _ in range(runs)
        )
    out["interpreter teardown after the assess imports"] = teardown_cpu(runs, env)
    return out


def teardown_cpu(runs: int, env: dict[str, str]) -> float:
    """CPU ms of the interpreter's teardown after the assess imports: a normal exit less `os._exit`."""
    normal = f"{ASSESS_IMPORTS}\nraise SystemExit(0)\n"
    fast = f"{ASSESS_IMPORTS}\nimport os, sys\nsys.stdout.flush()\nos._exit(0)\n"
    cpu = {
        name: statistics.median(child_cpu([PYTHON, "-c", code], env)[1] for _ in range(runs))
        for name, code in (("normal", normal), ("fast", fast))
    }
    return (cpu["normal"] - cpu["fast"]) * 1000


def import_profile(command: list[str]) -> list[tuple[int, int, str]]:
    """(self µs, cumulative µs, module) from -X importtime."""
    done = subprocess.run(command, capture_output=True, text=True, check=True, timeout=60)
    rows = []
    for line in done.stderr.splitlines():
        if not line.startswith("import time:") or "self [us]" in line:
            continue
        self_us, cumulative_us, name = (p.strip() for p in line.removeprefix("import time:").split("|"))
        rows.append((int(self_us), int(cumulative_us), name))
    return rows


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--runs", type=int, default=20)
    p.add_argument("--top", type=int, default=15)
    args = p.parse_args()

    script = shutil.which("mecsa", path=str(Path(PYTHON).parent)) or "mecsa"
    commands = {
        "python -c pass (interpreter floor)": [PYTHON, "-c", "pass"],
        "mecsa --version": [script, "--version"],
        "python -m mecsa --help": [PYTHON, "-m", "mecsa", "--help"],
        "mecsa assess --help": [script, "assess", "--help"],
        "mecsa scoring table": [script, "scoring", "table"],
    }
    for label, command in commands.items():
        walls, cpus = timed(command, args.runs)
        print(
            f"{label:36s} wall median {statistics.median(walls) * 1000:6.1f} ms  "
            f"min {min(walls) * 1000:6.1f}  max {max(walls) * 1000:6.1f}   "
            f"CPU median {statistics.median(cpus) * 1000:6.1f} ms  min {min(cpus) * 1000:6.1f}"
            f"  ({args.runs} runs)"
        )

    rows = import_profile([PYTHON, "-X", "importtime", "-m", "mecsa", "--help"])
    total = sum(r[0] for r in rows)
    print(f"\n-X importtime -m mecsa --help: {len(rows)} modules, {total / 1000:.1f} ms of imports in all")
    print(f"top {args.top} by cumulative time (a package's time includes what it imports):")
    for self_us, cumulative_us, name in sorted(rows, key=lambda r: -r[1])[: args.top]:
        print(f"  {cumulative_us / 1000:7.1f} ms cum  {self_us / 1000:6.1f} ms self  {name}")
    loaded = {r[2].strip() for r in rows}
    heavy = [m for m in HEAVY if m in loaded]
    print("\nknown heavy modules imported by `--help`:", ", ".join(heavy) or "none")
    print(f"\nissue 20's start-up lines, CPU median of {args.runs} fresh interpreters:")
    for label, ms in breakdown(args.runs).items():
        print(f"  {label:48s} {ms:6.1f} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
