"""CLI start-up: wall time of `mecsa --version` and `python -m mecsa --help`, and the import profile.

    .venv/bin/python benchmarks/bench_startup.py [--runs 20] [--top 15]

Each command runs `--runs` times in a fresh interpreter (the first run is a warm-up and is not
counted). Then `python -X importtime -m mecsa --help` lists the slowest imports (cumulative).
Also reported: every module that `mecsa --help` imports from a list of known heavy ones.
"""

from __future__ import annotations

import argparse
import os
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


def timed(command: list[str], runs: int) -> list[float]:
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "0"}
    subprocess.run(command, capture_output=True, env=env, check=True, timeout=60)  # warm-up
    walls = []
    for _ in range(runs):
        started = time.perf_counter()
        subprocess.run(command, capture_output=True, env=env, check=True, timeout=60)
        walls.append(time.perf_counter() - started)
    return walls


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
    }
    for label, command in commands.items():
        walls = timed(command, args.runs)
        print(
            f"{label:36s} median {statistics.median(walls) * 1000:6.1f} ms  "
            f"min {min(walls) * 1000:6.1f}  max {max(walls) * 1000:6.1f}  ({args.runs} runs)"
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
    return 0


if __name__ == "__main__":
    sys.exit(main())
