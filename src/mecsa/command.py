"""The `mecsa` command's entry point (`[project.scripts]`, and `python -m mecsa`).

The cyclic garbage collector is off while the CLI is imported: click and the CLI's modules make
objects that all stay, and the ~30 collections they set off before `main` found next to nothing to
free (issue 20). `mecsa.cli.main` then decides for the command: it stays off for the one-shot
ones, and is turned on again for the others, with what the imports made frozen (never traversed).

`mecsa --version` alone is answered here, without importing click and the CLI (~25 ms of its ~45):
it is what scripts and package checks run. The line is the one the CLI's `--version` option
prints (tests/unit/cli/test_command_entry.py compares the two); `--version` among other
arguments goes through the CLI as before. `mecsa --help` alone is answered from the help cache
when it has the text (mecsa.helpcache), else by the CLI, which fills the cache. Every other
command finds its modules through the import cache (mecsa.importcache).
"""

from __future__ import annotations

import gc
import os
import sys


def main() -> None:
    gc.disable()
    if sys.argv[1:] == ["--version"]:
        from mecsa import __version__

        sys.exit(write_out(f"mecsa {__version__}\n"))
    if sys.argv[1:] == ["--help"]:
        from mecsa import helpcache

        text = helpcache.lookup()
        if text is not None:
            sys.exit(write_out(f"{text}\n"))  # as click.echo writes it
    from mecsa import importcache

    words = [a for a in sys.argv[1:] if not a.startswith("-")]
    importcache.install(command=words[0] if words else "mecsa")
    from mecsa.cli import main as run

    run()


def write_out(text: str) -> int:
    """Write `text` to stdout; the exit status (1 when the reader has left, as the CLI gives)."""
    try:
        sys.stdout.write(text)
        sys.stdout.flush()
    except BrokenPipeError:
        # Nothing more is owed; point stdout at /dev/null so that the exit's own flush is quiet.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
    return 0
