"""Every command answers bad input with one line on stderr and exit status 2, before doing any work."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from mecsa.cli import app

# 127.0.0.1:9 (discard) is never asked: each case must stop while checking its arguments.
RESOLVER = ["--resolver", "127.0.0.1:9", "--timeout", "0.2"]


def _cases(tmp: Path) -> list[list[str]]:
    missing = str(tmp / "missing.pem")
    no_dir = str(tmp / "no-such-dir" / "report.html")
    return [
        ["assess", "example.test", *RESOLVER, "--ca-file", missing],
        ["assess", "example.test", *RESOLVER, "--ca-file", str(tmp)],
        ["assess", "example.test", *RESOLVER, "--html", no_dir],
        ["assess", "example.test", *RESOLVER, "--html", str(tmp)],
        ["starttls", "mx.example.test", *RESOLVER, "--ca-file", missing],
        ["starttls", "mx.example.test:0", *RESOLVER],
        ["starttls", "mx.example.test:99999", *RESOLVER],
        ["demo", "--html", no_dir],
    ]


@pytest.mark.parametrize("index", range(8))
def test_bad_input_is_one_line_and_exit_2(index: int, tmp_path: Path) -> None:
    args = _cases(tmp_path)[index]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 2, (args, result.output)
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("mecsa: error: "), (args, result.stderr)
