"""`mecsa monitor`: exit 2 with one line on bad input; `alerts` lists what a pass stored."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import subprocess
import sys
from pathlib import Path

from mecsa.monitor.run import run_pass
from mecsa.monitor.watchlist import parse_watchlist
from mecsa.store import open_store
from tests.unit.monitor import documents as docs


def _mecsa(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "mecsa", *args], capture_output=True, text=True, timeout=60, check=False
    )


def test_a_bad_watch_list_is_exit_2_with_one_line(tmp_path: Path) -> None:
    path = tmp_path / "watch.toml"
    path.write_text('[[domain]]\nname = "not a domain!"\n')
    done = _mecsa("monitor", "run", "--watch", str(path), "--store", str(tmp_path / "s.sqlite"))
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr.startswith(f"mecsa: error: {path}: domain #1:") and done.stderr.count("\n") == 1


def test_alerts_lists_the_stored_alerts_as_json_and_text(tmp_path: Path) -> None:
    store_path = tmp_path / "s.sqlite"
    w = parse_watchlist({"domain": [{"name": "top.test"}], "notify": []})

    async def broken(_domain: str) -> dict[str, object]:
        return docs.with_dmarc_none(docs.top())

    with open_store(store_path) as store:
        asyncio.run(run_pass(w, store, assess=broken, now=dt.datetime(2026, 12, 1, tzinfo=dt.UTC)))
    done = _mecsa("monitor", "alerts", "--store", str(store_path), "--state", "open", "--json")
    assert done.returncode == 0, done.stderr
    [alert] = json.loads(done.stdout)
    assert (alert["key"], alert["state"], alert["fixes"][0]["title"]) == (
        "finding dmarc_policy.none",
        "open",
        "Enforce DMARC: p=reject",
    )
    text = _mecsa("monitor", "alerts", "--store", str(store_path))
    assert "open     top.test p=none: receivers deliver mail that fails DMARC" in text.stdout
    assert _mecsa("monitor", "alerts", "--store", str(store_path), "--state", "shut").returncode == 2
