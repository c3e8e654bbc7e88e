"""The `mecsa` command. Thin: parses arguments, calls the library, picks a renderer.

Sub-command modules import nothing heavy at module level, so `mecsa --help` stays fast.
"""

from __future__ import annotations

import contextlib
import os
import sys

import typer

from mecsa.cli import (
    assess,
    checks,
    demo,
    harden,
    lab,
    mailmode,
    monitor,
    reports,
    scan,
    scoring,
    serve,
    spf,
    starttls,
    worker,
)

app = typer.Typer(
    name="mecsa",
    help="Assess, harden and prove the security of a mail domain (MECSA's three areas).",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    # Plain help text: rich's markup rendering doubles --help's start-up time (benchmarks/README.md).
    rich_markup_mode=None,
)
for _module in (
    assess,
    spf,
    starttls,
    harden,
    scoring,
    checks,
    lab,
    demo,
    mailmode,
    reports,
    scan,
    serve,
    monitor,
    worker,
):
    _module.register(app)


def _version(value: bool) -> None:
    if value:
        from mecsa import __version__

        typer.echo(f"mecsa {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Print the version."
    ),
    debug: bool = typer.Option(
        False, "--debug", help="Log debug detail to stderr, with the traceback of any check that crashed."
    ),
) -> None:
    """Assess, harden and prove the security of a mail domain."""
    if debug or debug_wanted():
        enable_debug_log()


def debug_wanted() -> bool:
    """MECSA_DEBUG=1 (or any value but 0/empty) asks for the debug log, as --debug does."""
    return os.environ.get("MECSA_DEBUG", "") not in ("", "0")


def enable_debug_log() -> None:
    """Send the `mecsa` loggers' debug records to stderr (crashed checks log their tracebacks there)."""
    import logging

    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("mecsa debug %(name)s: %(message)s"))
    logger = logging.getLogger("mecsa")
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)


# Commands whose work is over, every file and connection closed, when they return: these may skip
# the interpreter's teardown (finalising ~600 modules cost about 100 ms a run: issue 20). The other
# commands (servers, the lab, harden's writers, commands added later) exit the ordinary way.
_FAST_EXIT_COMMANDS = frozenset({"assess", "checks", "scoring", "spf", "starttls"})


def main() -> None:
    """Entry point: exit 0 when the work ran, 2 on bad usage, 1 on an internal error, 130 on Ctrl-C."""
    code = _run()
    if _fast_exit_allowed(sys.argv[1:]):
        _exit_now(code)
    sys.exit(code)


def _run() -> int:
    try:
        app()
    except SystemExit as exc:
        return _exit_status(exc.code)
    except KeyboardInterrupt:
        sys.stderr.write("interrupted\n")
        return 130
    except Exception as exc:  # the promised exit status 1, with the reason, not a bare traceback
        if debug_wanted() or "--debug" in sys.argv[1:]:
            import traceback

            traceback.print_exc(file=sys.stderr)
        sys.stderr.write(f"mecsa: internal error: {type(exc).__name__}: {exc}\n")
        return 1
    return 0


def _exit_status(code: object) -> int:
    """What `sys.exit(code)` would make of `code`: None is 0, a message is printed and gives 1."""
    if code is None:
        return 0
    if isinstance(code, int):
        return code
    sys.stderr.write(f"{code}\n")
    return 1


def _fast_exit_allowed(argv: list[str]) -> bool:
    """The first word that is not an option names the command; none (`--version`, `--help`) is fine."""
    command = next((a for a in argv if not a.startswith("-")), None)
    return command is None or command in _FAST_EXIT_COMMANDS


def _exit_now(code: int) -> None:
    """Flush what the user is owed, run the exit hooks, then leave without the module teardown."""
    import atexit

    try:
        sys.stdout.flush()
    except (OSError, ValueError):  # a closed pipe (`mecsa assess ... | head`): nothing more is owed
        code = code or 1
    with contextlib.suppress(OSError, ValueError):
        sys.stderr.flush()
    atexit._run_exitfuncs()  # atexit hooks and weakref.finalize callbacks, as a normal exit runs them
    os._exit(code)
