"""The per-user cache files of the `mecsa` command: where they live, and how they are read and written.

Shared by the code cache, the pattern cache and the help cache (mecsa.codecache, mecsa.regexcache,
mecsa.helpcache). Only `os`, `stat` and `marshal` are used, all imported with the interpreter:
`mecsa --help` reads its cached text before anything else is imported (issue 20): `typing`
alone would add ~2 ms, `contextlib` ~0.5 ms.
"""

from __future__ import annotations

import marshal
import os
import stat


def cache_directory() -> str:
    """$MECSA_CACHE_DIR, else $XDG_CACHE_HOME/mecsa, else ~/.cache/mecsa."""
    own = os.environ.get("MECSA_CACHE_DIR")
    xdg = os.environ.get("XDG_CACHE_HOME")
    if own:
        return own
    if xdg:
        return os.path.join(xdg, "mecsa")
    return os.path.join(os.path.expanduser("~"), ".cache", "mecsa")


def command_file_name(command: str) -> str:
    """The command's part of a cache file's name ("other" for anything unexpected).

    The rule `[a-z][a-z0-9-]{0,31}`, written without `re` (see the module docstring).
    """
    allowed = "abcdefghijklmnopqrstuvwxyz0123456789-"
    if 1 <= len(command) <= 32 and command[0].isalpha() and all(c in allowed for c in command):
        return command
    return "other"


def caches_enabled() -> bool:
    """`MECSA_CODE_CACHE=0` turns every cache of the command off."""
    return os.environ.get("MECSA_CODE_CACHE", "1") != "0"


def write_private(path: str | os.PathLike[str], data: bytes) -> bool:
    """Write `path` for its owner only (0600, in a 0700 directory), atomically; False on failure."""
    target = os.fspath(path)
    temporary = f"{target}.{os.getpid()}.tmp"
    try:
        os.makedirs(os.path.dirname(target) or ".", mode=0o700, exist_ok=True)
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as out:
            out.write(data)
        os.replace(temporary, target)  # atomic: a reader sees the old file or the new one
    except OSError:
        try:  # noqa: SIM105  (contextlib is not imported here: see the module docstring)
            os.unlink(temporary)
        except OSError:
            pass
        return False
    return True


def read_private(path: str | os.PathLike[str]) -> object:
    """The marshalled value in `path`; None when it is missing, unreadable, malformed or not safely ours.

    What the caches keep is run (code), trusted (compiled patterns) or shown (help), so the file
    must be the user's own and writable by nobody else, as ssh demands of its keys.
    """
    try:
        with open(path, "rb") as handle:
            info = os.fstat(handle.fileno())
            if info.st_uid != os.getuid() or info.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
                return None
            # marshal.loads of the whole file: marshal.load reads a file object in small pieces
            # (18 ms against 2-4 ms for the same file, measured).
            return marshal.loads(handle.read())
    except (OSError, EOFError, ValueError, TypeError):
        return None
