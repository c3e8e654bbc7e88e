"""The import cache (mecsa.importcache): the path finder's own answers, kept while no directory changes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

# A fresh interpreter: the cache installed (or not), then the imports named on the command line;
# prints, for each, what the module was found as, and how many finds the cache answered.
_CHILD = textwrap.dedent(
    """
    import importlib, json, sys
    from mecsa import importcache
    use = sys.argv[1] == "cache"
    cache = importcache.install(command="test") if use else None
    from importlib.machinery import PathFinder
    asked = []
    plain_find = PathFinder.find_spec
    def counting(name, path=None, target=None):
        asked.append(name)
        return plain_find(name, path, target)
    PathFinder.find_spec = counting
    found = {}
    for name in sys.argv[2:]:
        module = importlib.import_module(name)
        spec = module.__spec__
        found[name] = [
            getattr(module, "__file__", None), getattr(module, "__cached__", None),
            list(getattr(module, "__path__", []) or []) or None,
            type(spec.loader).__name__, spec.origin, spec.parent, spec.has_location,
        ]
    if cache is not None:
        cache.save()
    print(json.dumps({"found": found, "hits": cache.hits if cache else None, "asked": asked}))
    """
)
MODULES = ("decimal", "email.utils", "click", "click.core", "_hashlib", "dns.name", "shadowed_here")


def _script(tmp_path: Path, text: str) -> Path:
    """A script of its own directory: `python -c` would put "" first on sys.path (see below)."""
    script = tmp_path / "script" / "child.py"
    script.parent.mkdir(exist_ok=True)
    script.write_text(text, encoding="utf-8")
    return script


def _run(tmp_path: Path, mode: str, *modules: str, pythonpath: str) -> dict[str, object]:
    env = {**os.environ, "MECSA_CACHE_DIR": str(tmp_path / "cache"), "PYTHONPATH": pythonpath}
    script = _script(tmp_path, _CHILD)
    done = subprocess.run(
        [sys.executable, str(script), mode, *modules], capture_output=True, text=True, timeout=60, env=env
    )
    assert done.returncode == 0, done.stderr
    result: dict[str, object] = json.loads(done.stdout)
    return result


def _asked(result: dict[str, object]) -> list[str]:
    asked = result["asked"]
    assert isinstance(asked, list)
    return asked


def _path(*directories: Path) -> str:
    return os.pathsep.join(str(d) for d in directories)


def _early_and_late(tmp_path: Path) -> tuple[Path, str]:
    """Two directories on the search path, `shadowed_here` in the later one: (the earlier, the path)."""
    early, late = tmp_path / "early", tmp_path / "late"
    early.mkdir()
    late.mkdir()
    (late / "shadowed_here.py").write_text("WHERE = 'late'\n", encoding="utf-8")
    return early, _path(early, late)


def test_a_cached_find_gives_the_module_the_path_finder_gives(tmp_path: Path) -> None:
    _, path = _early_and_late(tmp_path)
    plain = _run(tmp_path, "plain", *MODULES, pythonpath=path)
    first = _run(tmp_path, "cache", *MODULES, pythonpath=path)
    second = _run(tmp_path, "cache", *MODULES, pythonpath=path)
    assert set(MODULES) <= set(_asked(first))  # nothing kept yet
    assert isinstance(second["hits"], int) and second["hits"] >= len(MODULES)  # packages' parents too
    assert first["found"] == second["found"] == plain["found"]
    assert second["asked"] == []  # served from the cache: the path finder was not asked at all
    assert set(MODULES) <= set(_asked(plain))  # the control: without the cache, it is


def test_a_module_added_earlier_on_the_path_is_found_there(tmp_path: Path) -> None:
    early, path = _early_and_late(tmp_path)
    _run(tmp_path, "cache", "shadowed_here", pythonpath=path)
    (early / "shadowed_here.py").write_text("WHERE = 'early'\n", encoding="utf-8")  # early's time changes
    again = _run(tmp_path, "cache", "shadowed_here", pythonpath=path)
    found = again["found"]
    assert isinstance(found, dict)
    assert found["shadowed_here"][0] == str(early / "shadowed_here.py")
    assert isinstance(again["asked"], list) and "shadowed_here" in again["asked"]  # found afresh


def test_another_search_path_is_another_cache(tmp_path: Path) -> None:
    one, other = tmp_path / "one", tmp_path / "other"
    one.mkdir()
    other.mkdir()
    _run(tmp_path, "cache", "email.utils", pythonpath=_path(one))
    assert "email.utils" in _asked(_run(tmp_path, "cache", "email.utils", pythonpath=_path(other)))
    assert "email.utils" not in _asked(_run(tmp_path, "cache", "email.utils", pythonpath=_path(other)))


def test_turned_off_or_with_a_relative_path_entry_nothing_is_installed(tmp_path: Path) -> None:
    env = {**os.environ, "MECSA_CACHE_DIR": str(tmp_path), "MECSA_CODE_CACHE": "0"}
    code = "from mecsa import importcache; print(importcache.install(command='test') is not None)"
    script = _script(tmp_path, code)
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=60, env=env)
    assert done.stdout.strip() == "False"
    env["MECSA_CODE_CACHE"] = "1"  # the control: the same script installs it when on
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=60, env=env)
    assert done.stdout.strip() == "True"
    # `python -c` puts "" (the working directory) first on sys.path: it may differ next time.
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, env=env)
    assert done.stdout.strip() == "False"


def test_in_the_path_finders_place_it_finds_distributions_as_the_path_finder_does(tmp_path: Path) -> None:
    # importlib.metadata asks each finder of sys.meta_path for the installed distributions.
    code = textwrap.dedent(
        """
        import importlib.metadata, sys
        from mecsa import importcache
        assert importcache.install(command="test") is not None
        print(importlib.metadata.version("click"), len(list(importlib.metadata.distributions())) > 5)
        """
    )
    env = {**os.environ, "MECSA_CACHE_DIR": str(tmp_path / "cache")}
    script = _script(tmp_path, code)
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=60, env=env)
    assert done.returncode == 0, done.stderr
    import importlib.metadata

    assert done.stdout.split() == [importlib.metadata.version("click"), "True"]


def test_a_cache_file_of_another_form_is_not_used(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import marshal

    from mecsa import importcache, privatefile

    monkeypatch.setenv("MECSA_CACHE_DIR", str(tmp_path))
    path = importcache.cache_file("test")
    good = {("some_module", None): ("source", str(tmp_path / "some_module.py"), None)}
    identity = importcache._identity()
    for entries, usable in ((good, True), ({("some_module", None): ("zipped", "x", None)}, False)):
        data = marshal.dumps((identity, {}, entries))  # type: ignore[arg-type]  # typeshed's union
        assert privatefile.write_private(path, data)
        assert importcache.load(path) == ((entries, {}) if usable else ({}, {}))


def test_every_cache_names_its_file_by_one_rule() -> None:
    import re

    from mecsa import codecache, importcache, privatefile, regexcache

    rule = re.compile(r"[a-z][a-z0-9-]{0,31}")
    for word in (
        "assess",
        "https-helper",
        "asess",
        "x" * 32,
        "x" * 33,
        "",
        "9lives",
        "-v",
        "Scan",
        "a_b",
        "ñu",
    ):
        expected = word if rule.fullmatch(word) else "other"
        assert privatefile.command_file_name(word) == expected, word
        assert importcache.cache_file(word).endswith(f"-{expected}.marshal")
        assert codecache.default_path(word).name.endswith(f"-{expected}.marshal")
        assert regexcache.default_path(word).name.endswith(f"-{expected}.marshal")
