"""The click CLI (issue 20): sub-commands load lazily, and the registry's summaries match the commands."""

from __future__ import annotations

import json
import subprocess
import sys

import click
import pytest

from mecsa.cli import _COMMANDS, app

_CHILD = """
import json, sys
sys.argv = ["mecsa", *json.loads(sys.argv[1])]
from mecsa.cli import app
try:
    app()
except SystemExit:
    pass
sys.stderr.write("LOADED " + json.dumps(sorted(m for m in sys.modules if m.startswith("mecsa.cli."))) + "\\n")
"""


def _cli_modules(*args: str) -> list[str]:
    done = subprocess.run(
        [sys.executable, "-c", _CHILD, json.dumps(list(args))],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    marker = [line for line in done.stderr.splitlines() if line.startswith("LOADED ")]
    assert marker, done.stderr
    found: list[str] = json.loads(marker[-1].removeprefix("LOADED "))
    return found


def test_top_level_help_imports_no_sub_command_module() -> None:
    assert _cli_modules("--help") == ["mecsa.cli.lazy"]
    assert _cli_modules("--version") == ["mecsa.cli.lazy"]


def test_a_command_imports_its_own_module_alone() -> None:
    assert _cli_modules("assess", "--help") == ["mecsa.cli.assess", "mecsa.cli.common", "mecsa.cli.lazy"]
    assert "mecsa.cli.harden" in _cli_modules("harden", "plan", "--help")


@pytest.mark.parametrize("name", list(_COMMANDS))
def test_registry_summary_is_the_commands_own(name: str) -> None:
    command = _COMMANDS[name].load()
    assert command.name == name
    stand_in = click.Command(name, help=_COMMANDS[name].summary)
    for limit in (45, 70, 1000):  # what `mecsa --help` shows at any terminal width
        assert stand_in.get_short_help_str(limit) == command.get_short_help_str(limit)


def test_help_lists_every_command_with_its_summary() -> None:
    from click.testing import CliRunner

    result = CliRunner().invoke(app, ["--help"], terminal_width=200)
    assert result.exit_code == 0
    listed = result.stdout.split("Commands:\n", 1)[1].splitlines()
    assert [line.split()[0] for line in listed if line.strip()] == list(_COMMANDS)
    assert "  assess    Assess a domain's receiving side: DNS records, and the transport" in result.stdout


def test_unknown_command_and_option_are_usage_errors() -> None:
    from click.testing import CliRunner

    for args in (["nosuch"], ["assess", "--bogus", "x.test"], ["assess", "x.test", "--timeout", "0"]):
        result = CliRunner().invoke(app, args)
        assert result.exit_code == 2, (args, result.output)
        assert "Error:" in result.stderr and result.stdout == ""


def test_repeatable_options_not_given_are_none_and_given_are_lists() -> None:
    # harden's settings flags: None means "take it from --config"; an empty list would override it.
    plan = _COMMANDS["harden"].load()
    assert isinstance(plan, click.Group)
    command = plan.commands["plan"]
    bare = command.make_context("plan", [])
    assert bare.params["ipv4"] is None and bare.params["dkim_ed25519"] is None
    given = command.make_context("plan", ["--ipv4", "192.0.2.1", "--ipv4", "192.0.2.2", "--no-dkim-ed25519"])
    assert given.params["ipv4"] == ["192.0.2.1", "192.0.2.2"] and given.params["dkim_ed25519"] is False


def test_main_exit_statuses() -> None:
    def status(*args: str) -> int:
        done = subprocess.run(
            [sys.executable, "-m", "mecsa", *args], capture_output=True, text=True, timeout=60, check=False
        )
        return done.returncode

    assert status("--version") == 0
    assert status("assess", "--bogus") == 2
    assert status() == 2  # no command: the help, as a usage error
    assert status("assess", "not a domain") == 2


def test_the_cli_keeps_httpx_own_command_line_out() -> None:
    code = (
        "import sys\n"
        "from mecsa.probes.httpx_guard import block_httpx_cli\n"
        "block_httpx_cli()\n"
        "import httpx\n"
        "with httpx.Client() as client:\n"
        "    assert client.timeout.connect == 5.0\n"
        "print(sorted(m for m in ('rich', 'pygments', 'httpx._main') if sys.modules.get(m) is not None))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    assert done.stdout.strip() == "[]"


def test_one_shot_commands_run_without_the_cyclic_collector() -> None:
    code = (
        "import atexit, gc, sys\n"
        "sys.argv = ['mecsa', *sys.argv[1:]]\n"
        "atexit.register(lambda: sys.stderr.write(f'GC {gc.isenabled()}\\n'))\n"
        "from mecsa.cli import main\n"
        "main()\n"
    )

    def collector(*args: str) -> str:
        done = subprocess.run(
            [sys.executable, "-c", code, *args], capture_output=True, text=True, timeout=60, check=False
        )
        return [line for line in done.stderr.splitlines() if line.startswith("GC ")][-1]

    assert collector("--version") == "GC False"
    assert collector("lab", "--help") == "GC True"  # servers and long commands keep it
