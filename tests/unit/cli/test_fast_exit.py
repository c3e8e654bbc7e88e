"""The CLI's exit without the interpreter's teardown (issue 20): output, hooks and exit codes are kept."""

from __future__ import annotations

import json
import subprocess
import sys

_CHILD = """
import atexit, sys
sys.argv = ["mecsa", *sys.argv[1:]]

class Teardown:
    def __del__(self):
        sys.stderr.write("TEARDOWN\\\\n")

kept = Teardown()  # a module global: finalised only by the interpreter's teardown
atexit.register(lambda: sys.stderr.write("ATEXIT\\\\n"))
from mecsa.cli import main
main()
"""


def _mecsa(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", _CHILD, *args], capture_output=True, text=True, timeout=60, check=False
    )


def test_version_skips_teardown_but_runs_exit_hooks() -> None:
    done = _mecsa("--version")
    assert done.returncode == 0
    assert done.stdout.startswith("mecsa ")
    assert "ATEXIT" in done.stderr
    assert "TEARDOWN" not in done.stderr  # the fast exit was taken


def test_large_output_through_a_pipe_arrives_whole() -> None:
    done = _mecsa("checks", "--json")
    assert done.returncode == 0
    assert "mx" in json.loads(done.stdout)  # parses: nothing was cut off by the early exit
    assert "TEARDOWN" not in done.stderr


def test_bad_usage_keeps_exit_status_2_and_its_one_line() -> None:
    done = _mecsa("assess", "not a domain")
    assert done.returncode == 2
    assert [line for line in done.stderr.splitlines() if line.startswith("mecsa: error:")]


def test_other_commands_exit_the_ordinary_way() -> None:
    done = _mecsa("lab", "--help")
    assert done.returncode == 0
    assert "TEARDOWN" in done.stderr and "ATEXIT" in done.stderr
