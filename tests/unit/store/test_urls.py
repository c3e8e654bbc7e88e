"""Where `--store` points: file paths, URLs, the environment and the default."""

from __future__ import annotations

from pathlib import Path

import pytest

from mecsa.store import StoreUrlError, resolve_store_url


def test_a_path_is_a_sqlite_file(tmp_path: Path) -> None:
    url = resolve_store_url(str(tmp_path / "s.sqlite"))
    assert (url.get_backend_name(), url.database) == ("sqlite", str(tmp_path / "s.sqlite"))


def test_a_relative_path_is_made_absolute(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert resolve_store_url("rel.sqlite").database == str(tmp_path / "rel.sqlite")


def test_postgresql_urls_get_the_psycopg_driver() -> None:
    for text in ("postgresql://u:secret@127.0.0.1/db", "postgres://u:secret@127.0.0.1/db"):
        url = resolve_store_url(text)
        assert url.drivername == "postgresql+psycopg"
        assert url.password == "secret"


def test_other_databases_and_garbage_urls_are_refused() -> None:
    with pytest.raises(StoreUrlError, match="unsupported store"):
        resolve_store_url("mysql://u@127.0.0.1/db")
    with pytest.raises(StoreUrlError, match="not a database URL"):
        resolve_store_url("://nothing")


def test_the_default_comes_from_the_environment_then_xdg(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MECSA_STORE", str(tmp_path / "env.sqlite"))
    assert resolve_store_url().database == str(tmp_path / "env.sqlite")
    monkeypatch.delenv("MECSA_STORE")
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    assert resolve_store_url().database == str(tmp_path / "xdg" / "mecsa" / "store.sqlite")
    assert (tmp_path / "xdg" / "mecsa").is_dir()
