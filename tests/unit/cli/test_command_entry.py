"""The `mecsa` entry point (mecsa.command): no collector runs while the CLI is imported."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import tomllib
from pathlib import Path

_FRESH = textwrap.dedent(
    """
    import atexit, gc, sys
    import mecsa.command
    before = sum(s["collections"] for s in gc.get_stats())
    atexit.register(lambda: print(sum(s["collections"] for s in gc.get_stats()) - before, "collections"))
    sys.argv = ["mecsa", "--version"]
    mecsa.command.main()
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
    version, collections = done.stdout.splitlines()
    assert version.startswith("mecsa ")
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
