"""The `mecsa` command's entry point (`[project.scripts]`, and `python -m mecsa`).

The cyclic garbage collector is off while the CLI is imported: click and the CLI's modules make
objects that all stay, and the ~30 collections they set off before `main` found next to nothing to
free (issue 20). `mecsa.cli.main` then decides for the command: it stays off for the one-shot
ones, and is turned on again for the others, with what the imports made frozen (never traversed).
"""

from __future__ import annotations

import gc


def main() -> None:
    gc.disable()
    from mecsa.cli import main as run

    run()
