"""A per-user cache of where the `mecsa` command's modules are found (issue 20).

Before a module is loaded, Python's path finder looks for it: for each directory on `sys.path`
(or in the parent package's `__path__`) it checks the directory's time stamp and tries every
suffix a module may have. That is pure Python in importlib, 35-55 us a module here, and a cold
`mecsa assess` finds ~400 modules: 15-30 ms of a ~230 ms run, for answers that change only when
a directory's contents change.

`install()` puts a finder in the path finder's place in `sys.meta_path`, so that everything
before it (built-in and frozen modules, any finder a `.pth` file put first) and after it keeps its
turn. It answers from the cache when the cache knows the name: the same spec, file and loader
class the path finder gave when the entry was made, or "not here" (None, as the path finder says
it: the finders after it are asked next) for a name the path finder did not find. Otherwise it
asks the path finder, returns its answer unchanged, and keeps it unless it is something other
than a plain source or extension module (a namespace package, say).

When the cache may be trusted is the path finder's own rule, kept across processes: a directory's
listing is reused while the directory's modification time is unchanged (a file added, removed or
renamed changes it). The cache file holds the time of every directory it depends on, every entry
of `sys.path` and of each package's `__path__`; at start-up each is checked (~50 `stat` calls),
and a single difference discards the whole cache. It is kept per command, interpreter and
`sys.path`, and a lookup while `sys.path` differs from the recorded one goes to the path finder.
Editing a module's source changes no directory: the loader checks the bytecode against the source
as always. `importlib.invalidate_caches()` empties it for the rest of the process.

No library does this (`importlib` keeps its directory listings per process only): hence this
module. Only the `mecsa` command's entry point and its HTTPS helper install it; `MECSA_CODE_CACHE=0`
turns it off with the other caches. tests/unit/test_importcache.py compares its specs with the
path finder's.
"""

from __future__ import annotations

import atexit
import marshal
import os
import sys
from importlib.machinery import ExtensionFileLoader, ModuleSpec, PathFinder, SourceFileLoader
from importlib.util import spec_from_file_location
from typing import TYPE_CHECKING, Any

from mecsa import privatefile

if TYPE_CHECKING:
    from collections.abc import Sequence
    from types import ModuleType

# What an entry holds: (loader kind, file, the package's directory or None for a module); the kind
# "absent" for a name the path finder did not find.
Entry = tuple[str, str, str | None]
_ABSENT: Entry = ("absent", "", None)
Key = tuple[str, tuple[str, ...] | None]
_LOADERS: dict[str, type[SourceFileLoader] | type[ExtensionFileLoader]] = {
    "source": SourceFileLoader,
    "extension": ExtensionFileLoader,
}


def cache_file(command: str) -> str:
    file = f"import-specs-{sys.implementation.cache_tag}-{privatefile.command_file_name(command)}.marshal"
    return os.path.join(privatefile.cache_directory(), file)


def _identity() -> tuple[object, ...]:
    """What the cache is kept for: this interpreter, with this search path and these path hooks."""
    return (sys.version, sys.executable, tuple(sys.path), len(sys.path_hooks))


def _mtime(directory: str) -> int | None:
    try:
        return os.stat(directory).st_mtime_ns
    except OSError:
        return None


class SpecCache:
    """The finder in the path finder's place (see the module docstring)."""

    def __init__(self, path: str, entries: dict[Key, Entry], directories: dict[str, int | None]) -> None:
        self.path = path
        self.entries = entries
        self.directories = directories
        self.identity = _identity()
        self.search_path = tuple(sys.path)
        self.hits = 0
        self.added = 0

    def find_spec(
        self, fullname: str, path: Sequence[str] | None = None, target: ModuleType | None = None
    ) -> ModuleSpec | None:
        if target is not None:  # a reload: the path finder's business
            return PathFinder.find_spec(fullname, path, target)
        searched = None if path is None else tuple(path)
        if searched is None and tuple(sys.path) != self.search_path:
            return PathFinder.find_spec(fullname, path)  # the search path changed since start-up
        key = (fullname, searched)
        entry = self.entries.get(key)
        if entry is not None:
            self.hits += 1
            kind, origin, package = entry
            if kind == _ABSENT[0]:
                return None
            loader = _LOADERS[kind](fullname, origin)
            locations = None if package is None else [package]
            return spec_from_file_location(
                fullname, origin, loader=loader, submodule_search_locations=locations
            )
        spec = PathFinder.find_spec(fullname, path)
        self._keep(key, spec, searched)
        return spec

    def _keep(self, key: Key, spec: ModuleSpec | None, searched: tuple[str, ...] | None) -> None:
        scanned: tuple[str, ...] = searched if searched is not None else self.search_path
        if spec is None:
            entry = _ABSENT
        elif spec.origin is None or not spec.has_location:
            return  # a namespace package, or no file: asked afresh each time
        else:
            kind = next((k for k, cls in _LOADERS.items() if type(spec.loader) is cls), None)
            locations = spec.submodule_search_locations
            if kind is None or (locations is not None and len(locations) != 1):
                return
            entry = (kind, spec.origin, None if locations is None else locations[0])
            scanned = (*scanned, os.path.dirname(spec.origin))
        for directory in scanned:
            if directory not in self.directories:
                self.directories[directory] = _mtime(directory)
        self.entries[key] = entry
        self.added += 1

    def __getattr__(self, name: str) -> Any:
        # In the path finder's place, it answers for it: `importlib.metadata` finds the installed
        # distributions through `find_distributions` of the finders in sys.meta_path.
        return getattr(PathFinder, name)

    def invalidate_caches(self) -> None:
        """`importlib.invalidate_caches()`: a directory may have changed; ask the path finder."""
        PathFinder.invalidate_caches()  # in its place in sys.meta_path, it is not asked otherwise
        self.entries.clear()
        self.directories.clear()
        self.added = 0

    def save(self) -> bool:
        """Write the cache back if it gained entries; False when nothing was written."""
        if not self.added:
            return False
        # Strings, integers, None, tuples and dicts of them, all marshal takes; typeshed cannot say so.
        data = marshal.dumps((self.identity, self.directories, self.entries))  # type: ignore[arg-type]
        if not privatefile.write_private(self.path, data):
            return False
        self.added = 0
        return True


def load(path: str) -> tuple[dict[Key, Entry], dict[str, int | None]]:
    """The entries and directory times in `path`, if they are for this interpreter and search
    path and no directory changed since; else nothing."""
    data = privatefile.read_private(path)
    if not isinstance(data, tuple) or len(data) != 3 or data[0] != _identity():
        return {}, {}
    _, directories, entries = data
    if not isinstance(directories, dict) or not isinstance(entries, dict):
        return {}, {}
    if not all(_well_formed(entry) for entry in entries.values()):
        return {}, {}  # written by another version of this module, say: start afresh
    if any(_mtime(d) != mtime for d, mtime in directories.items()):
        return {}, {}  # a directory changed: a module may be found elsewhere now
    return entries, directories


def _well_formed(entry: object) -> bool:
    if entry == _ABSENT:
        return True
    if not isinstance(entry, tuple) or len(entry) != 3:
        return False
    kind, origin, package = entry
    return kind in _LOADERS and isinstance(origin, str) and (package is None or isinstance(package, str))


_installed: SpecCache | None = None


def install(*, command: str = "mecsa") -> SpecCache | None:
    """Put the cache in the path finder's place for the rest of the process; saved at exit."""
    global _installed
    if _installed is not None:
        return _installed
    if not privatefile.caches_enabled() or PathFinder not in sys.meta_path:
        return None
    if not all(os.path.isabs(entry) for entry in sys.path):
        return None  # "" or a relative entry: the working directory, which may differ next time
    path = cache_file(command)
    cache = SpecCache(path, *load(path))
    sys.meta_path[sys.meta_path.index(PathFinder)] = cache
    atexit.register(cache.save)
    _installed = cache
    return cache


def uninstall() -> None:
    """Give the path finder its place in `sys.meta_path` back (tests)."""
    global _installed
    if _installed is not None:
        if _installed in sys.meta_path:
            sys.meta_path[sys.meta_path.index(_installed)] = PathFinder
        atexit.unregister(_installed.save)
        _installed = None
