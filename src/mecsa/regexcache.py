"""A per-user cache of compiled regular expressions, for the one-shot CLI (issue 20).

Modules compile their regular expressions while they are imported, and `re` keeps compiled
patterns in memory only: every run parses and compiles them again. A cold `mecsa assess` spends
about 27 ms of CPU on it (measured by timing `re._compile`), 8 ms of that for the RFC 4514 parser of
`cryptography.x509.name`, whose classes run up to U+10FFFF. The compiled form depends only on the
pattern, the flags and the interpreter, so it can be kept, as Python keeps bytecode.

How: `re._compiler.compile(pattern, flags)` parses the pattern, generates its SRE code and hands
both to `_sre.compile(pattern, flags, code, groups, groupindex, indexgroup)`, which builds the
Pattern. `install()` puts a recorder in the place of `_sre` inside `re._compiler` only (every
attribute is `_sre`'s own; `compile` also notes its arguments), and a front in the place of
`re._compiler.compile`: on a hit it calls `_sre.compile` with the arguments noted on an earlier
run, which skips the parsing and the code generation; on a miss it compiles as before and keeps
what the recorder noted. The arguments are replayed as they were, so nothing of `re`'s own work is
written again here.

Why a hit is the same pattern: the file is named by the interpreter's version (`sys.hexversion`),
its SRE code version (`_sre.MAGIC`) and its Unicode database, and keyed by pattern and flags.
`_sre.compile` checks the code it is given (a damaged entry raises and is compiled afresh), and a
test compares, for every pattern a cold `assess` compiles, a Pattern from the cache with a fresh
one (Pattern equality compares the flags, the pattern and the SRE code).

No library does this and `re` has no hook for it: hence this module. Like the dataclass code cache
(`codecache.py`, whose file handling it shares) it is installed only by the `mecsa` command, for a
command, never on library import; `MECSA_CODE_CACHE=0` turns both off.
"""

from __future__ import annotations

import atexit
import importlib
import sys
import threading
import unicodedata
from pathlib import Path
from typing import Any

from mecsa.codecache import FileCache, cache_directory
from mecsa.privatefile import caches_enabled, command_file_name, read_private

Key = tuple[str | bytes, int]
Arguments = tuple[Any, ...]  # `_sre.compile`'s arguments after the pattern


def default_path(command: str = "mecsa") -> Path:
    """In the cache directory, one file per command, named by what the compiled form depends on."""
    _sre: Any = importlib.import_module("_sre")  # no type stubs
    ucd = unicodedata.unidata_version.replace(".", "_")
    tag = f"{sys.implementation.cache_tag}-{sys.hexversion:x}-sre{_sre.MAGIC}-ucd{ucd}"
    return cache_directory() / f"regex-{tag}-{command_file_name(command)}.marshal"


class _Recorder:
    """Stands for `_sre` inside `re._compiler`: `_sre` itself, except that `compile` notes its
    arguments (per thread: the CLI's importer thread compiles patterns too)."""

    def __init__(self, real: Any) -> None:
        self.real = real
        self.noted = threading.local()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.real, name)

    def compile(self, *args: Any) -> Any:
        self.noted.args = args
        return self.real.compile(*args)

    def take(self) -> Arguments | None:
        args: Arguments | None = getattr(self.noted, "args", None)
        self.noted.args = None
        return args


class RegexCache(FileCache):
    """`re._compiler.compile`, served from the entries when it can."""

    entries: dict[Key, Arguments]

    def __init__(self, path: Path, entries: dict[Key, Arguments], compiler: Any, recorder: _Recorder) -> None:
        super().__init__(path, entries)
        self.compiler = compiler
        self.original = compiler.compile
        self.recorder = recorder

    def compile(self, p: Any, flags: int = 0) -> Any:
        if not isinstance(p, str | bytes) or flags & self.compiler.SRE_FLAG_DEBUG:
            return self.original(p, flags)  # a parsed pattern (re.Scanner), or a debug listing asked for
        key = (p, int(flags))
        self.used.add(key)
        stored = self.entries.get(key)
        if stored is not None:
            try:
                pattern = self.recorder.real.compile(p, *stored)
            except Exception:  # a damaged entry (_sre checks the code): compile afresh
                del self.entries[key]
            else:
                self.hits += 1
                return pattern
        self.recorder.take()
        pattern = self.original(p, flags)
        noted = self.recorder.take()
        if noted is not None and noted[0] is p:
            self.entries[key] = tuple(_plain(arg) for arg in noted[1:])
            self.misses += 1
        return pattern


def _plain(value: Any) -> Any:
    """`value` as marshal can write it: the SRE code's opcodes are int subclasses (named constants)."""
    if isinstance(value, int) and type(value) is not int:
        return int(value)
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, tuple):
        return tuple(_plain(v) for v in value)
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value


def load(path: Path) -> dict[Key, Arguments]:
    """The entries in `path`; empty when it is missing, unreadable, malformed or not safely ours."""
    data = read_private(path)
    if not isinstance(data, dict):
        return {}
    return {
        k: v
        for k, v in data.items()
        if isinstance(k, tuple)
        and len(k) == 2
        and isinstance(k[0], str | bytes)
        and isinstance(k[1], int)
        and isinstance(v, tuple)
    }


_installed: RegexCache | None = None


def install(path: Path | None = None, *, command: str = "mecsa") -> RegexCache | None:
    """Serve `re`'s compiles from the cache from now on; saved at exit. None when turned off, or on
    an interpreter whose `re` is not laid out as this module expects."""
    global _installed
    if _installed is not None:
        return _installed
    if not caches_enabled():
        return None
    _sre: Any = importlib.import_module("_sre")  # no type stubs
    compiler: Any = importlib.import_module("re._compiler")
    if getattr(compiler, "_sre", None) is not _sre or not callable(getattr(compiler, "compile", None)):
        return None
    recorder = _Recorder(_sre)
    where = path or default_path(command)
    cache = RegexCache(where, load(where), compiler, recorder)
    compiler._sre = recorder
    compiler.compile = cache.compile
    atexit.register(cache.save)
    _installed = cache
    return cache


def uninstall() -> None:
    """Give `re._compiler` its own `compile` and `_sre` back (tests)."""
    global _installed
    if _installed is not None:
        _installed.compiler.compile = _installed.original
        _installed.compiler._sre = _installed.recorder.real
        atexit.unregister(_installed.save)
        _installed = None
