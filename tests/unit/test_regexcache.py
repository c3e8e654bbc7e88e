"""The cache of compiled regular expressions (mecsa.regexcache): the same patterns, compiled once per user.

A Pattern equals another when their flags, pattern and SRE code are equal (CPython compares the
code arrays), so equality with a fresh compile is the test that a cached pattern is the same one.
"""

from __future__ import annotations

import importlib
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from mecsa import regexcache

_compiler: Any = importlib.import_module("re._compiler")
_sre: Any = importlib.import_module("_sre")
ORIGINAL_COMPILE = _compiler.compile  # taken before any test installs the cache

CORPUS: list[tuple[str | bytes, int]] = [
    (r"a(?P<name>b+)c?", 0),
    (r"(?i)Straße|ΣΑΣ", 0),
    (r"^\s*v=DMARC1\s*;", re.IGNORECASE | re.MULTILINE),
    (r"[\x80-\U0010ffff]+", 0),  # the kind of class cryptography's RFC 4514 parser compiles
    (r"[^\x00-\x7e]", 0),
    (r"(?<=@)[\w.-]+(?!\.)", re.ASCII),
    (r"(a)?(?(1)b|c)", re.DOTALL),
    (
        r"""  \d+  # digits
           (?:\.\d+)*""",
        re.VERBOSE,
    ),
    (rb"\r\n(?P<code>\d{3})[ -]", 0),
    (rb"[a-z]+", re.IGNORECASE | re.LOCALE),
    (r"(?:x{2,5}?|y*+|z++)", 0),
    (r"strasse", 0),  # the same text with other flags: another pattern
    (r"strasse", re.IGNORECASE),
]
SAMPLES = ["abbbc", "STRASSE", "  v=dmarc1 ;", "é", "a@b.c", "ac", "12.3.4", "xxxyz", "Σας", "~\x7f"]


@pytest.fixture
def cache_file(tmp_path: Path) -> Iterator[Path]:
    yield tmp_path / "cache" / "regex.marshal"
    regexcache.uninstall()
    re.purge()


def _fresh(pattern: str | bytes, flags: int) -> Any:
    return ORIGINAL_COMPILE(pattern, flags)


def _compile_corpus() -> list[re.Pattern[Any]]:
    re.purge()  # else re's own in-memory cache answers and the compiler is never asked
    return [re.compile(pattern, flags) for pattern, flags in CORPUS]


def test_a_pattern_from_the_cache_is_the_pattern_compiled_afresh(cache_file: Path) -> None:
    first = regexcache.install(cache_file)
    assert first is not None
    fresh = _compile_corpus()
    assert first.misses == len(CORPUS) and first.save() and cache_file.is_file()
    regexcache.uninstall()

    second = regexcache.install(cache_file)
    assert second is not None
    cached = _compile_corpus()
    assert (second.hits, second.misses) == (len(CORPUS), 0)
    assert not second.save()  # nothing new: the file is left alone
    for (pattern, flags), old, new in zip(CORPUS, fresh, cached, strict=True):
        assert new == old == _fresh(pattern, flags)
        assert (new.groups, new.groupindex, new.flags) == (old.groups, old.groupindex, old.flags)
        for sample in SAMPLES:
            text: Any = sample.encode() if isinstance(pattern, bytes) else sample
            found, expected = new.search(text), old.search(text)
            assert (found and (found.span(), found.groups())) == (
                expected and (expected.span(), expected.groups())
            )


def test_every_pattern_the_assess_path_compiles_comes_back_the_same(tmp_path: Path) -> None:
    """The modules a cold `mecsa assess` imports, in a fresh interpreter with the cache installed."""
    program = (
        "import sys\n"
        "from mecsa import regexcache\n"
        "cache = regexcache.install()\n"
        "import mecsa.cli, mecsa.cli.early, mecsa.observe.transport, mecsa.assess, mecsa.scoring\n"
        "import mecsa.dns.validation.walker, cryptography.x509, httpx\n"
        "from mecsa.checks.registry import CHECK_MODULES\n"
        "import importlib\n"
        "for _, module in CHECK_MODULES: importlib.import_module(module)\n"
        "print(cache.hits, cache.misses)\n"
        "cache.save()\n"
    )
    env = {**os.environ, "MECSA_CACHE_DIR": str(tmp_path), "MECSA_CODE_CACHE": "1"}

    def run() -> tuple[int, int]:
        done = subprocess.run(
            [sys.executable, "-c", program], capture_output=True, text=True, env=env, timeout=120
        )
        assert done.returncode == 0, done.stderr
        hits, misses = done.stdout.split()
        return int(hits), int(misses)

    hits, misses = run()
    assert hits == 0 and misses > 50
    (path,) = tmp_path.glob("regex-*.marshal")
    entries = regexcache.load(path)
    assert len(entries) == misses
    for (pattern, flags), arguments in entries.items():
        cached = _sre.compile(pattern, *arguments)
        fresh = _fresh(pattern, flags)
        assert cached == fresh, pattern
        assert (cached.groups, cached.groupindex) == (fresh.groups, fresh.groupindex)
    assert run() == (misses, 0)  # the second run takes every one from the file


def test_a_damaged_entry_is_compiled_afresh(cache_file: Path) -> None:
    pattern, flags = CORPUS[0]
    arguments = list(regexcache.load(_written(cache_file))[(pattern, flags)])
    arguments[1] = [0xFFFF] * 5  # not SRE code: _sre.compile refuses it
    cache_file.write_bytes(_marshalled({(pattern, flags): tuple(arguments)}))
    cache = regexcache.install(cache_file)
    assert cache is not None
    re.purge()
    assert re.compile(pattern, flags) == _fresh(pattern, flags)
    assert (cache.hits, cache.misses) == (0, 1)


def _written(path: Path) -> Path:
    cache = regexcache.install(path)
    assert cache is not None
    _compile_corpus()
    assert cache.save()
    regexcache.uninstall()
    return path


def _marshalled(entries: Any) -> bytes:
    import marshal

    return marshal.dumps(entries)


@pytest.mark.parametrize("mode", [0o620, 0o602])
def test_a_file_others_can_write_is_an_empty_cache(cache_file: Path, mode: int) -> None:
    _written(cache_file)
    assert regexcache.load(cache_file)
    cache_file.chmod(mode)
    assert regexcache.load(cache_file) == {}


@pytest.mark.parametrize(
    "content", [b"", b"\x00garbage", _marshalled([1, 2]), _marshalled({1: 2}), _marshalled({"a": 1})]
)
def test_a_malformed_file_is_an_empty_cache(cache_file: Path, content: bytes) -> None:
    cache_file.parent.mkdir(parents=True)
    cache_file.write_bytes(content)
    cache_file.chmod(0o600)
    assert regexcache.load(cache_file) == {}


def test_turned_off_by_the_environment_and_undone_by_uninstall(
    cache_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    original = ORIGINAL_COMPILE
    monkeypatch.setenv("MECSA_CODE_CACHE", "0")
    assert regexcache.install(cache_file) is None
    assert _compiler.compile is original and _compiler._sre is _sre
    monkeypatch.delenv("MECSA_CODE_CACHE")
    assert regexcache.install(cache_file) is not None
    assert _compiler.compile is not original and _compiler._sre is not _sre
    regexcache.uninstall()
    assert _compiler.compile is original and _compiler._sre is _sre


def test_each_command_and_interpreter_has_its_own_file(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("MECSA_CACHE_DIR", str(tmp_path))
    assess, scan = regexcache.default_path("assess"), regexcache.default_path("scan")
    assert assess.parent == tmp_path and assess != scan
    assert f"{sys.hexversion:x}" in assess.name and str(_sre.MAGIC) in assess.name
    assert regexcache.default_path("../x").name.endswith("-other.marshal")
