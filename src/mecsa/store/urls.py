"""Where the store lives: a SQLite file by default, PostgreSQL (psycopg 3) by URL."""

from __future__ import annotations

import os
from pathlib import Path

from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError

ENVIRONMENT_VARIABLE = "MECSA_STORE"
DEFAULT_FILE_NAME = "store.sqlite"


class StoreUrlError(ValueError):
    """The text is neither a database URL nor a file path."""


def default_store_path() -> Path:
    """`$XDG_DATA_HOME/mecsa/store.sqlite` (`~/.local/share/mecsa/store.sqlite` without it)."""
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "mecsa" / DEFAULT_FILE_NAME


def resolve_store_url(text: str | Path | None = None) -> URL:
    """The SQLAlchemy URL for `--store TEXT`: a URL, or a path to a SQLite file.

    Without TEXT: `$MECSA_STORE`, else the default file. `postgresql://` gets the psycopg 3 driver.
    """
    chosen = str(text) if text is not None else os.environ.get(ENVIRONMENT_VARIABLE)
    if not chosen:
        path = default_store_path()
        path.parent.mkdir(parents=True, exist_ok=True)
        return URL.create("sqlite", database=str(path))
    if "://" not in chosen:
        return URL.create("sqlite", database=str(Path(chosen).expanduser().absolute()))
    try:
        url = make_url(chosen)
    except ArgumentError as exc:
        raise StoreUrlError(f"not a database URL: {chosen!r} ({exc})") from None
    if url.drivername in ("postgresql", "postgres"):
        url = url.set(drivername="postgresql+psycopg")
    if url.get_backend_name() not in ("sqlite", "postgresql"):
        raise StoreUrlError(f"unsupported store {url.drivername!r}: use a SQLite file or a postgresql:// URL")
    return url


def display_url(url: URL) -> str:
    """The URL with any password hidden, for messages."""
    return url.render_as_string(hide_password=True)
