"""The watch list: what it accepts, and a one-line error naming the problem for what it does not."""

from __future__ import annotations

from pathlib import Path

import pytest

from mecsa.monitor.watchlist import WatchListError, load_watchlist, parse_duration, parse_watchlist

GOOD = """
interval = "6h"
expiry_days = 14
notify = ["hook"]

[assess]
resolvers = ["127.0.0.1:5353"]
dkim_selectors = ["s1"]

[[domain]]
name = "Example.ORG"

[[domain]]
name = "bücher.example"
interval = "1d"
notify = ["stdout", "mail"]

[notifier.hook]
type = "webhook"
url = "https://hooks.example.org/x"
secret_env = "HOOK_SECRET"

[notifier.mail]
type = "email"
host = "smtp.example.org"
from = "m@example.org"
to = ["ops@example.org"]
max_per_hour = 3
"""


def test_a_watch_list_gives_domains_schedules_notifiers_and_settings(tmp_path: Path) -> None:
    path = tmp_path / "watch.toml"
    path.write_text(GOOD)
    w = load_watchlist(path)
    assert [(d.name, d.interval_s, d.notify) for d in w.domains] == [
        ("example.org", 21600.0, ("hook",)),
        ("xn--bcher-kva.example", 86400.0, ("stdout", "mail")),
    ]
    assert w.rules.expiry_days == 14 and w.assess.resolvers == ("127.0.0.1:5353",)
    assert w.notifiers["mail"].port == 587 and w.notifiers["mail"].max_per_hour == 3
    assert w.notifiers["hook"].secret_env == "HOOK_SECRET" and "stdout" in w.notifiers


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (
            ("max_per_hour = 3", "max_per_hour = 0"),
            "notifier.mail.max_per_hour must be a whole number of at least 1",
        ),
        (('name = "bücher.example"', 'name = "example.org"'), "domain #2: example.org is listed twice"),
        (('notify = ["stdout", "mail"]', 'notify = ["pager"]'), "domain #2: unknown notifier 'pager'"),
        (('interval = "6h"', 'interval = "5s"'), "interval: at least 60 seconds between assessments"),
        (('interval = "6h"', 'interval = "soon"'), "interval: 'soon' is not a duration"),
        (('type = "webhook"', 'type = "pigeon"'), "notifier.hook.type must be one of stdout, email, webhook"),
        (('url = "https://hooks.example.org/x"', 'url = "ftp://x"'), "notifier.hook.url must be an http"),
        (('to = ["ops@example.org"]', "to = []"), "notifier.mail: an email notifier needs host, from and to"),
        (("expiry_days = 14", "expiry_days = -1"), "expiry_days must be a whole number"),
        (("expiry_days = 14", "expiry_days = 14\ncolour = 1"), "the top level: unknown key(s) colour"),
        (('name = "bücher.example"', 'name = "192.0.2.1"'), "domain #2:"),
    ],
)
def test_a_bad_watch_list_is_one_line_naming_the_file_and_the_problem(
    tmp_path: Path, edit: tuple[str, str], message: str
) -> None:
    path = tmp_path / "watch.toml"
    assert edit[0] in GOOD
    path.write_text(GOOD.replace(edit[0], edit[1], 1))
    with pytest.raises(WatchListError) as caught:
        load_watchlist(path)
    text = str(caught.value)
    assert text.startswith(f"{path}: ") and message in text and "\n" not in text


def test_unreadable_or_broken_toml_is_a_watch_list_error(tmp_path: Path) -> None:
    with pytest.raises(WatchListError, match="cannot read the watch list"):
        load_watchlist(tmp_path / "missing.toml")
    broken = tmp_path / "broken.toml"
    broken.write_text("[[domain]\n")
    with pytest.raises(WatchListError, match="not valid TOML"):
        load_watchlist(broken)


def test_a_watch_list_without_domains_is_refused() -> None:
    with pytest.raises(WatchListError, match=r"no \[\[domain\]\] entries: nothing to watch"):
        parse_watchlist({"interval": "1h"})


def test_durations() -> None:
    assert [parse_duration(v, "x") for v in (90, "30m", "6h", "1d", "1.5h")] == [
        90.0,
        1800.0,
        21600.0,
        86400.0,
        5400.0,
    ]
