"""`mecsa --help` answered from its per-user cache (mecsa.helpcache): click's own text, kept and replayed."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from mecsa import helpcache

# A fresh interpreter: the `mecsa` entry point with these arguments; the click modules it ended
# with are written by an exit hook (the CLI's one-shot commands leave with os._exit after them).
_RUN = textwrap.dedent(
    """
    import atexit, json, sys
    import mecsa.command
    modules = lambda: sorted(m for m in sys.modules if m.split(".")[0] == "click")
    atexit.register(lambda: sys.stderr.write(json.dumps(modules()) + "\\n"))
    sys.argv = ["mecsa", *sys.argv[1:]]
    mecsa.command.main()
    """
)


def _run(cache: Path, *argv: str, **env: str) -> tuple[str, int, list[str]]:
    environment = {k: v for k, v in os.environ.items() if k != "COLUMNS"}  # the default width unless given
    environment.update(MECSA_CACHE_DIR=str(cache), **env)
    done = subprocess.run(
        [sys.executable, "-c", _RUN, *argv], capture_output=True, text=True, timeout=60, env=environment
    )
    click_modules: list[str] = json.loads(done.stderr.splitlines()[-1])
    return done.stdout, done.returncode, click_modules


def test_the_second_help_is_the_kept_text_of_the_first_and_imports_no_click(tmp_path: Path) -> None:
    first, first_code, first_click = _run(tmp_path, "--help")
    second, second_code, second_click = _run(tmp_path, "--help")
    through_cli, cli_code, _ = _run(tmp_path, "--debug", "--help")  # never from the cache
    assert first_click != [] and second_click == []  # rendered by click once, then replayed
    assert first.startswith("Usage: mecsa [OPTIONS] COMMAND [ARGS]...\n")
    assert second == first == through_cli
    assert first_code == second_code == cli_code == 0
    assert (tmp_path / "help.marshal").stat().st_mode & 0o777 == 0o600


def test_another_width_is_rendered_by_click_and_kept_beside_the_first(tmp_path: Path) -> None:
    wide, _, _ = _run(tmp_path, "--help", COLUMNS="200")
    narrow, _, narrow_click = _run(tmp_path, "--help", COLUMNS="60")
    assert narrow_click != []  # not the 200-column text
    again_narrow, _, again_click = _run(tmp_path, "--help", COLUMNS="60")
    again_wide, _, wide_click = _run(tmp_path, "--help", COLUMNS="200")
    assert again_click == wide_click == []
    assert (again_narrow, again_wide) == (narrow, wide)
    assert narrow != wide  # click wraps to 60 columns, and to 80 at most


def test_turned_off_it_neither_reads_nor_writes(tmp_path: Path) -> None:
    _run(tmp_path, "--help", MECSA_CODE_CACHE="0")
    assert not (tmp_path / "help.marshal").exists()
    _run(tmp_path, "--help")
    _, _, click_modules = _run(tmp_path, "--help", MECSA_CODE_CACHE="0")
    assert click_modules != []


def test_a_changed_cli_file_is_another_key(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    defining = tmp_path / "cli.py"
    defining.write_text("one", encoding="utf-8")
    monkeypatch.setattr(helpcache, "_CLI_FILES", (str(defining),))
    before = helpcache.key()
    defining.write_text("other text", encoding="utf-8")
    assert before is not None and helpcache.key() not in (None, before)
    defining.unlink()
    assert helpcache.key() is None  # a file it is made of is missing: render afresh


@pytest.fixture(autouse=True)
def _nothing_left_armed() -> object:
    yield
    helpcache._armed = None  # a lookup that missed in one test must not keep another's help


def test_kept_only_when_asked_for_and_at_most_sixteen(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MECSA_CACHE_DIR", str(tmp_path))
    helpcache.rendered("not asked for")  # a help rendered without `mecsa --help`'s lookup: not kept
    assert helpcache.kept_texts() == {}
    for width in range(20):
        monkeypatch.setenv("COLUMNS", str(60 + width))
        assert helpcache.lookup() is None
        helpcache.rendered(f"text at {60 + width}")
    kept = helpcache.kept_texts()
    assert len(kept) == 16
    assert sorted(kept.values()) == sorted(f"text at {60 + w}" for w in range(4, 20))  # the newest
    assert helpcache.lookup() == "text at 79"


def test_a_file_others_may_write_is_not_read(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MECSA_CACHE_DIR", str(tmp_path))
    assert helpcache.lookup() is None
    helpcache.rendered("kept")
    assert helpcache.lookup() == "kept"
    (tmp_path / "help.marshal").chmod(0o666)
    assert helpcache.lookup() is None
