"""The `mecsa` command. Thin: parses arguments, calls the library, picks a renderer.

Built on click directly (typer's import and option coercion cost ~60-140 ms a run: issue 20). The
sub-commands are named in `_COMMANDS` and their modules imported only when one is invoked or its
help is shown (mecsa.cli.lazy), so `mecsa --help` and `--version` import none of them.
"""

from __future__ import annotations

import contextlib
import gc
import os
import sys

import click

from mecsa.cli.lazy import LazyCommand, LazyGroup
from mecsa.probes.httpx_guard import block_httpx_cli

# name: (module:attribute of its click command, the first paragraph of its help). The summary is
# what `mecsa --help` shows without importing the module; a test keeps it equal to the command's.
_COMMANDS: dict[str, LazyCommand] = {
    name: LazyCommand(target, summary)
    for name, target, summary in (
        (
            "assess",
            "mecsa.cli.assess:assess_command",
            "Assess a domain's receiving side: DNS records, and the transport checks where built.",
        ),
        (
            "starttls",
            "mecsa.cli.starttls:starttls_command",
            "Probe one SMTP server: banner, EHLO, STARTTLS, TLS versions, certificate and DANE.",
        ),
        (
            "checks",
            "mecsa.cli.checks:checks_command",
            "List every check, the MECSA protocols it owns and the finding ids it can report.",
        ),
        (
            "demo",
            "mecsa.cli.demo:demo_command",
            "Assess the lab's top-score domain with real servers (root), or the embedded demo zone.",
        ),
        (
            "scan",
            "mecsa.cli.scan:scan_command",
            "Assess every domain of a list (FILE, or - for stdin) and keep the results in the store.",
        ),
        (
            "spf",
            "mecsa.cli.spf:spf_group",
            "SPF (RFC 7208): evaluate a sender, or audit a domain's record tree.",
        ),
        (
            "harden",
            "mecsa.cli.harden:harden_group",
            "Generate, apply and publish a hardened Postfix + OpenDKIM + OpenDMARC setup.",
        ),
        (
            "scoring",
            "mecsa.cli.scoring:scoring_group",
            "Inspect the scoring profiles: which protocols give which MECSA level.",
        ),
        (
            "lab",
            "mecsa.cli.lab:lab_group",
            "Real DNS (Knot, Unbound) and mail servers (Postfix + milters) in network namespaces. "
            "Needs root.",
        ),
        (
            "mailmode",
            "mecsa.cli.mailmode:mailmode_group",
            "Mail mode: grade a provider from the mail it receives and sends (MECSA's loop).",
        ),
        (
            "reports",
            "mecsa.cli.reports:reports_group",
            "DMARC aggregate (RFC 9990) and SMTP TLS (RFC 8460) reports: ingest, show, re-check.",
        ),
        (
            "serve",
            "mecsa.cli.serve:serve_group",
            "Run the web service: the home page, live assessments, reports, domain history, "
            "statistics, scans, and the REST API under /api/v1 (OpenAPI document at /api/v1/openapi.json).",
        ),
        (
            "monitor",
            "mecsa.cli.monitor:monitor_group",
            "Re-assess the domains of a watch list (TOML) on their schedule, into the store, and alert.",
        ),
        (
            "worker",
            "mecsa.cli.worker:worker_command",
            "Run chunks of `mecsa scan --engine celery` scans queued on the broker, until SIGTERM.",
        ),
    )
}


def _version(ctx: click.Context, param: click.Parameter, value: bool) -> None:
    if value and not ctx.resilient_parsing:
        from mecsa import __version__

        click.echo(f"mecsa {__version__}")
        ctx.exit()


@click.group(
    "mecsa",
    cls=LazyGroup,
    lazy_commands=_COMMANDS,
    help="Assess, harden and prove the security of a mail domain (MECSA's three areas).",
    no_args_is_help=True,
    # Every option's default in its help line, as the typer version showed them.
    context_settings={"show_default": True},
)
@click.option(
    "--version", is_flag=True, expose_value=False, is_eager=True, callback=_version, help="Print the version."
)
@click.option(
    "--debug", is_flag=True, help="Log debug detail to stderr, with the traceback of any check that crashed."
)
def app(debug: bool) -> None:
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
    block_httpx_cli()
    argv = sys.argv[1:]
    command = _command_named(argv)
    if command is not None:  # `--version` and `--help` import no dataclasses to cache
        from mecsa import codecache, regexcache

        codecache.install(command=command)
        regexcache.install(command=command)
    one_shot = _fast_exit_allowed(argv)
    if one_shot:
        # A one-shot command ends with its process: the cyclic collector ran ~120 times in a cold
        # `assess` (~20 ms of CPU, 5%) and freed under 1,000 objects (issue 20).
        gc.disable()
    elif not gc.isenabled():  # the entry point turned it off for these imports (mecsa.command)
        gc.freeze()
        gc.enable()
    code = _run()
    if one_shot:
        _exit_now(code)
    sys.exit(code)


def _run() -> int:
    try:
        returned = app.main(standalone_mode=False)
    except click.exceptions.Abort as exc:  # click's form of Ctrl-C (or of an EOF at a prompt)
        interrupted = isinstance(exc.__context__, KeyboardInterrupt)
        sys.stderr.write("interrupted\n" if interrupted else "aborted\n")
        return 130 if interrupted else 1
    except click.ClickException as exc:  # bad usage: click's message, exit status 2
        exc.show()
        return exc.exit_code
    except SystemExit as exc:
        return _exit_status(exc.code)
    except KeyboardInterrupt:
        sys.stderr.write("interrupted\n")
        return 130
    except BrokenPipeError:  # the reader left (`mecsa checks --json | head`): nothing more is owed
        with contextlib.suppress(OSError, ValueError):
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
    except Exception as exc:  # the promised exit status 1, with the reason, not a bare traceback
        if debug_wanted() or "--debug" in sys.argv[1:]:
            import traceback

            traceback.print_exc(file=sys.stderr)
        sys.stderr.write(f"mecsa: internal error: {type(exc).__name__}: {exc}\n")
        return 1
    # Without standalone mode click returns an Exit's code, or the command's own return value (None).
    return returned if isinstance(returned, int) else 0


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
    command = _command_named(argv)
    return command is None or command in _FAST_EXIT_COMMANDS


def _command_named(argv: list[str]) -> str | None:
    return next((a for a in argv if not a.startswith("-")), None)


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
