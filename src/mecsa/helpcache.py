"""`mecsa --help` from a per-user cache of its text (issue 20).

Rendering the top-level help needs click and the CLI imported: ~35 ms of a ~60 ms `mecsa --help`,
for a text that changes only with what it is made of. A run that finds no kept text renders it
with click, as always, and the CLI's top-level group hands the text here to keep
(`~/.cache/mecsa/help.marshal`, the user's own, as the code cache's files). Later runs print the
kept text, with nothing imported but this module, when everything it was made from is unchanged:
- how the program was started (`sys.argv[0]`, the main module's package: click names the program
  from these) and what click would wrap to ($COLUMNS, else the terminal's width), all as read;
- the interpreter's version, mecsa's version, and the size and modification time of the files
  that define the CLI's top level (mecsa/cli/__init__.py, lazy.py) and of click's that render it.

Anything else (unreadable files, a text that is not ours) renders afresh. `MECSA_CODE_CACHE=0`
turns this off with the other caches. tests/unit/cli/test_help_cache.py compares the kept text
with what click prints through the CLI.
"""

from __future__ import annotations

import marshal
import os
import sys
from importlib.machinery import PathFinder

from mecsa import __version__, privatefile

Key = tuple[object, ...]

# The top-level help's inputs on mecsa's side, beside this module.
_CLI_FILES = ("cli/__init__.py", "cli/lazy.py")
# click's files that shape it: the group's help, the formatter, the option decorators.
_CLICK_FILES = ("__init__.py", "core.py", "formatting.py", "decorators.py")
_MAX_KEPT = 16  # texts kept at once (program names x widths); beyond, the oldest go

_armed: Key | None = None


def lookup() -> str | None:
    """For `mecsa --help`: the kept text; None after arranging that the text rendered now is kept."""
    global _armed
    if not privatefile.caches_enabled():
        return None
    wanted = key()
    if wanted is None:
        return None
    text = kept_texts().get(wanted)
    if text is None:
        _armed = wanted
    return text


def rendered(text: str) -> None:
    """The CLI's top-level group gives the help it renders: kept if `lookup()` asked for it."""
    global _armed
    if _armed is None:
        return
    wanted, _armed = _armed, None
    texts = kept_texts()
    texts.pop(wanted, None)
    texts[wanted] = text
    while len(texts) > _MAX_KEPT:
        del texts[next(iter(texts))]
    privatefile.write_private(cache_file(), marshal.dumps(texts))


def key() -> Key | None:
    """Everything the help text is made of (see the module docstring); None when not all is known."""
    spec = PathFinder.find_spec("click")
    if spec is None or not spec.submodule_search_locations:
        return None
    click_dir = spec.submodule_search_locations[0]
    here = os.path.dirname(os.path.abspath(__file__))
    stamps = [_stamp(os.path.join(here, name)) for name in _CLI_FILES]
    stamps += [_stamp(os.path.join(click_dir, name)) for name in _CLICK_FILES]
    if None in stamps:
        return None
    main = sys.modules.get("__main__")
    started = (sys.argv[0] if sys.argv else "", getattr(main, "__package__", None))
    width = (os.environ.get("COLUMNS"), _terminal_columns())
    return (sys.version, __version__, *started, *width, *stamps)


def cache_file() -> str:
    return os.path.join(privatefile.cache_directory(), "help.marshal")


def kept_texts() -> dict[Key, str]:
    """The kept texts by key; empty when the file is missing, malformed or not safely ours."""
    data = privatefile.read_private(cache_file())
    if not isinstance(data, dict):
        return {}
    return {k: v for k, v in data.items() if isinstance(k, tuple) and isinstance(v, str)}


def _stamp(path: str) -> tuple[str, int, int] | None:
    try:
        info = os.stat(path)
    except OSError:
        return None
    return (path, info.st_size, info.st_mtime_ns)


def _terminal_columns() -> int | None:
    """The terminal's width as `shutil.get_terminal_size` reads it (from the original stdout)."""
    stdout = sys.__stdout__
    try:
        return os.get_terminal_size(stdout.fileno()).columns if stdout is not None else None
    except (AttributeError, ValueError, OSError):
        return None
