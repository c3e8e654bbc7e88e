"""`lab up` / `lab down` leave nothing behind: no process, namespace, mount or directory."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.lab.helpers import lab_dir, require_lab

pytestmark = pytest.mark.lab


def _mounts() -> list[str]:
    return Path("/proc/self/mountinfo").read_text().splitlines()


def _traces(prefix: str, directory: Path) -> list[str]:
    """Everything of one lab still visible on the host."""
    from mecsa.lab import netns

    found = [f"namespace {n}" for n in netns.list_namespaces(prefix)]
    found += [f"mount {m}" for m in _mounts() if prefix in m or str(directory) in m]
    for pid_dir in Path("/proc").iterdir():
        if not pid_dir.name.isdigit() or not netns.is_alive(int(pid_dir.name)):
            continue
        try:
            cmdline = (pid_dir / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if str(directory) in cmdline:
            found.append(f"process {pid_dir.name}: {cmdline[:120]}")
    if directory.exists():
        found.append(f"directory {directory}")
    return found


def test_up_down_repeated_leaves_nothing_behind() -> None:
    require_lab()
    from mecsa.lab import netns
    from mecsa.lab.plan import namespace_prefix
    from mecsa.lab.runner import down, up

    directory = lab_dir("cycle")
    prefix = namespace_prefix(directory)
    ups, downs = [], []
    for _ in range(3):
        result = up([], directory)
        ups.append(result.seconds)
        assert result.domains == ("top.test",)
        assert len(netns.list_namespaces(prefix)) == 7
        gone = down(directory)
        downs.append(gone.seconds)
        assert gone.leftovers == ()
        assert gone.killed > 0
        assert _traces(prefix, directory) == []
    print(f"\nlab up: {ups} s; down: {downs} s")
    assert max(ups) < 30


def test_failed_up_cleans_up_after_itself(monkeypatch: pytest.MonkeyPatch) -> None:
    require_lab()
    from mecsa.lab import runner
    from mecsa.lab.plan import namespace_prefix
    from mecsa.lab.state import LabError

    def broken(*args: object) -> None:  # Knot is running by now: up must stop it again
        raise LabError("injected failure after Knot started")

    monkeypatch.setattr(runner, "_wait_zones", broken)
    directory = lab_dir("fail")
    with pytest.raises(LabError, match="injected"):
        runner.up([], directory)
    prefix = namespace_prefix(directory)
    left = [t for t in _traces(prefix, directory) if not t.startswith("directory")]
    assert left == []
    assert (directory / "logs" / "knot.log").exists()  # logs are kept for the post-mortem
    assert runner.down(directory).leftovers == ()
    assert _traces(prefix, directory) == []


def test_second_up_on_a_running_lab_is_refused() -> None:
    require_lab()
    from mecsa.lab.runner import down, up
    from mecsa.lab.state import LabError

    directory = lab_dir("twice")
    up([], directory)
    try:
        with pytest.raises(LabError, match="already up"):
            up([], directory)
    finally:
        assert down(directory).leftovers == ()


@pytest.mark.parametrize(
    "command", [["up"], ["down"], ["status"], ["assess", "top.test"], ["exec", "--", "true"]]
)
def test_cli_without_root_says_so_and_exits_2(monkeypatch: pytest.MonkeyPatch, command: list[str]) -> None:
    from click.testing import CliRunner

    from mecsa.cli import app

    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    result = CliRunner().invoke(app, ["lab", *command])
    assert result.exit_code == 2
    assert "the lab needs root" in result.output
