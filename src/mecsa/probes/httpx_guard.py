"""Keep httpx's own command line (the module httpx._main) out of a process (issue 20).

`import httpx` also imports httpx._main when click, rich and pygments are installed, as they are
here: about 60 ms of CPU in a cold `mecsa assess`. httpx guards that import with `except
ImportError` (its CLI is an optional extra); a None entry in sys.modules makes the import raise
ImportError, the import system's way to block a module, so httpx defines its stub `main` instead.
mecsa never runs httpx's command line.
"""

from __future__ import annotations

import sys


def block_httpx_cli() -> None:
    """Call before httpx is first imported (after, it changes nothing)."""
    if "httpx" not in sys.modules:
        sys.modules.setdefault("httpx._main", None)  # type: ignore[arg-type]
