"""The `mecsa` entry point (mecsa.command): no collector runs while the CLI is imported."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import tomllib
from pathlib import Path

import mecsa

_FRESH = textwrap.dedent(
    """
    import atexit, gc, sys
    import mecsa.command
    before = sum(s["collections"] for s in gc.get_stats())
    atexit.register(lambda: print(sum(s["collections"] for s in gc.get_stats()) - before, "collections"))
    sys.argv = ["mecsa", "--help"]
    try:
        mecsa.command.main()
    except SystemExit:
        pass
    """
)


def test_the_console_script_and_python_m_mecsa_enter_through_mecsa_command() -> None:
    pyproject = tomllib.loads((Path(__file__).parents[3] / "pyproject.toml").read_text(encoding="utf-8"))
    assert pyproject["project"]["scripts"]["mecsa"] == "mecsa.command:main"
    done = subprocess.run(
        [sys.executable, "-m", "mecsa", "--version"], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0 and done.stdout.startswith("mecsa "), done


def test_no_collection_runs_while_the_cli_is_imported() -> None:
    done = subprocess.run(
        [sys.executable, "-c", _FRESH], capture_output=True, text=True, timeout=60, check=True
    )
    *usage, collections = done.stdout.splitlines()
    assert usage[0].startswith("Usage: ")  # the whole CLI imported, and its help written
    assert collections == "0 collections"  # the CLI's import set off ~30 before (issue 20)


_STATE = textwrap.dedent(
    """
    import atexit, gc, sys
    import mecsa.command
    atexit.register(lambda: print("collector", "on" if gc.isenabled() else "off"))
    sys.argv = ["mecsa", *sys.argv[1:]]
    mecsa.command.main()
    """
)


def test_the_collector_stays_off_for_a_one_shot_command_and_is_on_again_for_the_others() -> None:
    def state(*argv: str) -> str:
        command = [sys.executable, "-c", _STATE, *argv]
        done = subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)
        return done.stdout.splitlines()[-1]

    assert state("--version") == "collector off"
    assert state("lab", "--help") == "collector on"  # a long-running command's group


_VERSION = textwrap.dedent(
    """
    import atexit, json, sys
    import mecsa.command
    # An exit hook: the CLI's one-shot commands leave with os._exit once the hooks have run.
    modules = lambda: sorted(m for m in sys.modules if m.split(".")[0] == "click")
    atexit.register(lambda: sys.stderr.write(json.dumps(modules()) + "\\n"))
    sys.argv = ["mecsa", *sys.argv[1:]]
    mecsa.command.main()
    """
)


def _version_run(*argv: str) -> tuple[str, int, list[str]]:
    command = [sys.executable, "-c", _VERSION, *argv]
    done = subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)
    click_modules: list[str] = json.loads(done.stderr.splitlines()[-1])
    return done.stdout, done.returncode, click_modules


def test_version_alone_is_answered_without_click_and_says_what_the_cli_says() -> None:
    fast, fast_code, fast_click = _version_run("--version")
    through_cli, cli_code, cli_click = _version_run("--version", "--debug")  # the CLI's own option
    assert fast_click == [] and cli_click != []  # the control: the CLI's path imports click
    assert fast == through_cli == f"mecsa {mecsa.__version__}\n"
    assert fast_code == cli_code == 0


def test_version_to_a_reader_that_left_exits_1_quietly() -> None:
    read, write = os.pipe()
    os.close(read)
    done = subprocess.run(
        [sys.executable, "-m", "mecsa", "--version"],
        stdout=write,
        stderr=subprocess.PIPE,
        timeout=60,
        check=False,
    )
    os.close(write)
    assert done.returncode == 1
    assert done.stderr == b""
