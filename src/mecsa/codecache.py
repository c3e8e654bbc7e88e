"""A per-user cache of the methods that `dataclasses` generates, for the one-shot CLI (issue 20).

`@dataclass` writes each class's `__init__`, `__repr__`, `__eq__`, `__hash__`, `__setattr__` and
`__delattr__` as source text and compiles it with `exec` while the module is imported. Python 3.11
compiles every method separately: about 0.5 ms per frozen class, some 80 ms of a cold `mecsa assess`
for the ~150 dataclasses it imports (mecsa's own, dnspython's, anyio's, h11's), a fifth of the run.
The text is the same on every run, so its compiled code can be kept, as Python keeps a module's
bytecode in `__pycache__`.

`install()` replaces the name `exec` inside the `dataclasses` module only (its one call site
compiles generated methods) by a function that looks the text up in a dictionary of code
objects loaded from the cache file (one per command) and compiles on a miss. A code object
compiled from the same text is the same code, so behaviour cannot change; the key is the whole
text, so a changed class misses and is compiled afresh. At exit the file is written back when it
gained entries.

No library does this, and `dataclasses` has no hook for it: hence this module. It is used only by
the `mecsa` command's entry point, never on library import, and `MECSA_CODE_CACHE=0` turns it off.
"""

from __future__ import annotations

import atexit
import builtins
import contextlib
import dataclasses
import importlib.util
import marshal
import sys
from pathlib import Path
from types import CodeType
from typing import Any

from mecsa import privatefile
from mecsa.privatefile import command_file_name, read_private, write_private

_FILENAME = "<string>"  # what exec() names code compiled from a string: tracebacks stay the same
_MAX_ENTRIES = 5_000  # a bound on a file: entries of old versions pile up until then, then only the used stay


def cache_directory() -> Path:
    """$MECSA_CACHE_DIR, else $XDG_CACHE_HOME/mecsa, else ~/.cache/mecsa."""
    return Path(privatefile.cache_directory())


def default_path(command: str = "mecsa") -> Path:
    """In the cache directory, named by the bytecode magic.

    One file per command: each holds what that command imports, so none loads another's entries
    (loading costs about 2 ms per 1,000 entries).
    """
    tag = f"{sys.implementation.cache_tag}-{importlib.util.MAGIC_NUMBER.hex()}"
    return cache_directory() / f"dataclass-code-{tag}-{command_file_name(command)}.marshal"


class FileCache:
    """Entries loaded from a per-user file, counted, and written back at exit when they grew."""

    def __init__(self, path: Path, entries: dict[Any, Any]) -> None:
        self.path = path
        self.entries = entries
        self.used: set[Any] = set()
        self.misses = 0
        self.hits = 0

    def save(self) -> bool:
        """Write the entries back if they grew; False when nothing was written (or it could not be)."""
        if not self.misses:
            return False
        entries = self.entries
        if len(entries) > _MAX_ENTRIES:
            entries = {k: v for k, v in entries.items() if k in self.used}
        try:
            data = marshal.dumps(entries)
        except ValueError:  # a value marshal cannot write: keep nothing rather than fail at exit
            return False
        if not write_private(self.path, data):
            return False
        self.misses = 0
        return True


class CodeCache(FileCache):
    """Compiled code by its source text; `exec` is a drop-in for the builtin.

    The entries stay marshalled until used: unmarshalling every code object of the file up front
    cost 11-13 ms for 1,700 entries, against about 2 ms to load them as bytes and 4 us a hit.
    """

    entries: dict[str, bytes]

    def exec(self, source: Any, globals: Any = None, locals: Any = None) -> None:
        if isinstance(source, str):
            source = self._code(source)
        builtins.exec(source, globals, locals)

    def _code(self, source: str) -> CodeType:
        self.used.add(source)
        stored = self.entries.get(source)
        if stored is not None:
            try:
                code = marshal.loads(stored)
            except (EOFError, ValueError, TypeError):
                code = None
            if isinstance(code, CodeType):
                self.hits += 1
                return code
        code = compile(source, _FILENAME, "exec", dont_inherit=True)
        self.entries[source] = marshal.dumps(code)
        self.misses += 1
        return code


def load(path: Path) -> dict[str, bytes]:
    """The entries in `path`; empty when it is missing, unreadable, malformed or not safely ours."""
    data = read_private(path)
    if not isinstance(data, dict):
        return {}
    return {k: v for k, v in data.items() if isinstance(k, str) and isinstance(v, bytes)}


_installed: CodeCache | None = None


def install(path: Path | None = None, *, command: str = "mecsa") -> CodeCache | None:
    """Serve `dataclasses`' compiles from the cache from now on; saved at exit. None when turned off."""
    global _installed
    if _installed is not None:
        return _installed
    if not privatefile.caches_enabled():
        return None
    where = path or default_path(command)
    cache = CodeCache(where, load(where))
    dataclasses.exec = cache.exec  # type: ignore[attr-defined]  # shadows the builtin in that module only
    atexit.register(cache.save)
    _installed = cache
    return cache


def uninstall() -> None:
    """Give `dataclasses` its builtin `exec` back (tests)."""
    global _installed
    if _installed is not None:
        with contextlib.suppress(AttributeError):
            del dataclasses.exec  # type: ignore[attr-defined]
        atexit.unregister(_installed.save)
        _installed = None
