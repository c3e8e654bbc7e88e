"""The cache of dataclass-generated code (mecsa.codecache): same classes, compiled once per user."""

from __future__ import annotations

import dataclasses
import marshal
from collections.abc import Iterator
from pathlib import Path

import pytest

from mecsa import codecache


@pytest.fixture
def cache_file(tmp_path: Path) -> Iterator[Path]:
    yield tmp_path / "cache" / "code.marshal"
    codecache.uninstall()


def _make_class(field_name: str) -> type:
    namespace = {"__annotations__": {field_name: "int", "label": "str"}, "label": "x"}
    cls = type("Point", (), namespace)
    return dataclasses.dataclass(frozen=True, slots=True)(cls)


def test_a_class_compiled_from_the_cache_behaves_as_one_compiled_afresh(cache_file: Path) -> None:
    first = codecache.install(cache_file)
    assert first is not None
    fresh = _make_class("x")
    assert first.misses > 0 and first.save() and cache_file.is_file()
    codecache.uninstall()

    second = codecache.install(cache_file)
    assert second is not None
    cached = _make_class("x")
    assert second.hits > 0 and second.misses == 0
    assert not second.save()  # nothing new: the file is left alone
    for cls in (fresh, cached):
        point = cls(3)
        assert (point.x, point.label) == (3, "x")
        assert point == cls(3, "x") and hash(point) == hash(cls(3, "x")) and point != cls(4)
        assert repr(point) == "Point(x=3, label='x')"
        with pytest.raises(dataclasses.FrozenInstanceError):
            point.x = 5
        with pytest.raises(TypeError):
            cls()  # x has no default


def test_a_changed_class_misses_and_is_compiled_afresh(cache_file: Path) -> None:
    cache = codecache.install(cache_file)
    assert cache is not None
    _make_class("x")
    cache.save()
    misses = cache.misses
    renamed = _make_class("y")  # another field name: other source text, never the old code
    assert cache.misses > misses
    assert renamed(7).y == 7
    assert not hasattr(renamed(7), "x")


def test_a_file_others_may_write_is_not_run(tmp_path: Path) -> None:
    path = tmp_path / "code.marshal"
    path.write_bytes(marshal.dumps({"pass": marshal.dumps(compile("pass", "<string>", "exec"))}))
    path.chmod(0o600)
    assert list(codecache.load(path)) == ["pass"]
    path.chmod(0o666)
    assert codecache.load(path) == {}


@pytest.mark.parametrize(
    "content",
    [b"", b"not marshal", marshal.dumps([1, 2]), marshal.dumps({"a": 1}), marshal.dumps({"a": "b"})],
)
def test_a_broken_or_foreign_file_is_an_empty_cache(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "code.marshal"
    path.write_bytes(content)
    path.chmod(0o600)
    assert codecache.load(path) == {}


def test_a_missing_file_is_an_empty_cache(tmp_path: Path) -> None:
    assert codecache.load(tmp_path / "none") == {}


def test_the_saved_file_is_the_users_own(cache_file: Path) -> None:
    cache = codecache.install(cache_file)
    assert cache is not None
    _make_class("z")
    assert cache.save()
    assert cache_file.stat().st_mode & 0o777 == 0o600
    assert cache_file.parent.stat().st_mode & 0o777 == 0o700
    assert not list(cache_file.parent.glob("*.tmp"))


def test_an_unwritable_place_loses_only_the_cache(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    cache = codecache.CodeCache(blocker / "sub" / "code.marshal", {})
    cache.exec("x = 1", {}, {})
    assert not cache.save()


def test_turned_off_by_the_environment(monkeypatch: pytest.MonkeyPatch, cache_file: Path) -> None:
    monkeypatch.setenv("MECSA_CODE_CACHE", "0")
    assert codecache.install(cache_file) is None
    assert "exec" not in vars(dataclasses)


def test_a_damaged_entry_is_compiled_afresh(tmp_path: Path) -> None:
    cache = codecache.CodeCache(tmp_path / "c", {"x = 1": b"garbage", "y = 2": marshal.dumps(3)})
    namespace: dict[str, int] = {}
    cache.exec("x = 1", {}, namespace)
    cache.exec("y = 2", {}, namespace)
    assert namespace == {"x": 1, "y": 2} and cache.misses == 2 and cache.hits == 0


def test_a_file_over_its_bound_keeps_only_what_was_used(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(codecache, "_MAX_ENTRIES", 2)
    old = {f"z = {i}": marshal.dumps(compile(f"z = {i}", "<string>", "exec")) for i in range(3)}
    cache = codecache.CodeCache(tmp_path / "c", dict(old))
    cache.exec("z = 0", {}, {})  # a hit, used
    cache.exec("w = 1", {}, {})  # a miss, used
    assert cache.save()
    assert set(codecache.load(tmp_path / "c")) == {"z = 0", "w = 1"}


def test_each_command_has_its_own_file(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("MECSA_CACHE_DIR", str(tmp_path))
    names = {codecache.default_path(c).name for c in ("assess", "scan", "../etc", "assess")}
    assert len(names) == 3 and all(n.startswith("dataclass-code-") for n in names)
    assert codecache.default_path("../etc").parent == tmp_path
    assert codecache.default_path("../etc").name.endswith("-other.marshal")


def test_the_default_place_follows_the_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("MECSA_CACHE_DIR", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert codecache.default_path().parent == tmp_path / "mecsa"
    monkeypatch.setenv("MECSA_CACHE_DIR", str(tmp_path / "own"))
    assert codecache.default_path().parent == tmp_path / "own"
