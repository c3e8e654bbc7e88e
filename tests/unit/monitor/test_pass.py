"""One monitor pass end to end, on a real store, with real loopback receivers.

The assessment itself is replaced by documents the test hands in (the lab test runs real ones):
what is tested here is store, rules, life cycle, de-duplication, rate limits and delivery.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import hmac
import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller

from mecsa.monitor.notify import build_notifiers
from mecsa.monitor.run import PassResult, run_pass
from mecsa.monitor.watchlist import WatchList, parse_watchlist
from mecsa.store import Store, open_store
from tests.monitor_sinks import Sinks, free_port, parse_mail
from tests.unit.monitor import documents as docs
from tests.unit.store.conftest import postgres, store_url  # noqa: F401 (fixtures)

T0 = dt.datetime(2026, 12, 1, 8, 0, tzinfo=dt.UTC)
SECRET = "s3cret"


@pytest.fixture
def store(store_url: str) -> Iterator[Store]:  # noqa: F811 (the imported fixture)
    with open_store(store_url) as opened:
        yield opened


@pytest.fixture
def sinks(tmp_path: Path) -> Iterator[Sinks]:
    with Sinks(tmp_path) as running:
        yield running


def watchlist(sinks: Sinks, *, domains: tuple[str, ...] = ("top.test",), max_per_hour: int = 12) -> WatchList:
    return parse_watchlist(
        {
            "interval": "1h",
            "notify": ["mail", "hook"],
            "domain": [{"name": d} for d in domains],
            "notifier": {
                "mail": {
                    "type": "email",
                    "host": "127.0.0.1",
                    "port": sinks.smtp_port,
                    "from": "mecsa@monitor.test",
                    "to": ["ops@top.test"],
                    "ca_file": str(sinks.cert),
                    "max_per_hour": max_per_hour,
                },
                "hook": {
                    "type": "webhook",
                    "url": f"http://127.0.0.1:{sinks.webhook_port}/mecsa",
                    "secret_env": "MECSA_TEST_SECRET",
                    "max_per_hour": max_per_hour,
                },
            },
        }
    )


class Assessments:
    """What the next assessment of each domain says; `fail` makes one crash."""

    def __init__(self, **current: dict[str, Any]) -> None:
        self.current = current
        self.asked: list[str] = []
        self.fail: set[str] = set()

    async def __call__(self, domain: str) -> dict[str, Any]:
        self.asked.append(domain)
        if domain in self.fail:
            raise RuntimeError("resolver exploded")
        doc = dict(self.current[domain])
        doc["domain"] = domain
        return doc


def one_pass(
    w: WatchList, store: Store, assess: Assessments, now: dt.datetime, force: bool = True
) -> PassResult:
    return asyncio.run(run_pass(w, store, assess=assess, now=now, force=force))


def _changes(post: dict[str, Any]) -> set[tuple[str, str]]:
    return {(a["change"], a["key"]) for a in json.loads(post["body"])["alerts"]}


@pytest.fixture(autouse=True)
def _secret(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MECSA_TEST_SECRET", SECRET)


def test_a_healthy_domain_sends_nothing_and_exits_0(store: Store, sinks: Sinks) -> None:
    result = one_pass(watchlist(sinks), store, Assessments(**{"top.test": docs.top()}), T0)
    assert (result.exit_code, result.sent, result.errors) == (0, {}, ())
    assert sinks.mails() == [] and sinks.posts() == []
    assert [a.domain for a in store.assessments_of_domain("top.test")] == ["top.test"]


def test_a_break_is_told_once_by_mail_and_webhook_and_its_fix_sends_resolved(
    store: Store, sinks: Sinks
) -> None:
    w, assess = watchlist(sinks), Assessments(**{"top.test": docs.top()})
    one_pass(w, store, assess, T0)
    assess.current["top.test"] = docs.with_dmarc_none(docs.top())
    broken = one_pass(w, store, assess, T0 + dt.timedelta(hours=1))
    assert broken.exit_code == 1 and broken.sent == {"mail": 1, "hook": 1}
    expected = {
        ("event", "level_dropped phishing"),
        ("event", "level_dropped integrity"),
        ("event", "protocol_regressed dmarc_policy"),
        ("new", "finding dmarc_policy.none"),
    }
    [post] = sinks.posts()
    assert _changes(post) == expected
    digest = hmac.new(SECRET.encode(), post["body"], hashlib.sha256).hexdigest()
    assert post["headers"]["X-Mecsa-Signature"] == f"sha256={digest}"
    [mail] = sinks.mails()
    assert mail["tls"] and mail["to"] == ["ops@top.test"]
    message = parse_mail(mail["content"])
    assert message["Subject"] == "[mecsa monitor] top.test: 1 new, 3 event"
    body = message.get_body(("plain",))
    assert body is not None
    text = body.get_content()
    assert "NEW [critical] p=none: receivers deliver mail that fails DMARC" in text
    assert "_dmarc.top.test." in text and "p=reject" in text  # the exact fix, filled in
    [attachment] = list(message.iter_attachments())
    assert {(a["change"], a["key"]) for a in json.loads(attachment.get_content())["alerts"]} == expected

    # the same break again: nothing is resent, the alert still holds (exit 1)
    again = one_pass(w, store, assess, T0 + dt.timedelta(hours=2))
    assert (again.exit_code, again.sent) == (1, {})
    assert len(sinks.mails()) == 1 and len(sinks.posts()) == 1

    # fixed: a "resolved" to each notifier, and all is well
    assess.current["top.test"] = docs.top()
    fixed = one_pass(w, store, assess, T0 + dt.timedelta(hours=3))
    assert (fixed.exit_code, fixed.sent) == (0, {"mail": 1, "hook": 1})
    assert _changes(sinks.posts()[1]) == {("resolved", "finding dmarc_policy.none")}
    resolved = parse_mail(sinks.mails()[1]["content"]).get_body(("plain",))
    assert resolved is not None and "RESOLVED [critical] p=none" in resolved.get_content()


def test_an_open_alert_whose_evidence_changes_is_told_again(store: Store, sinks: Sinks) -> None:
    w = watchlist(sinks)
    broken = docs.with_dmarc_none(docs.top())
    assess = Assessments(**{"top.test": broken})
    one_pass(w, store, assess, T0)
    edited = json.loads(json.dumps(broken))
    edited["findings"][-1]["evidence"] = ["v=DMARC1; p=none"]
    assess.current["top.test"] = edited
    one_pass(w, store, assess, T0 + dt.timedelta(hours=1))
    assert _changes(sinks.posts()[-1]) == {("changed", "finding dmarc_policy.none")}


def test_the_hourly_limit_holds_messages_back_until_a_later_pass(store: Store, sinks: Sinks) -> None:
    w = watchlist(sinks, domains=("a.test", "b.test"), max_per_hour=1)
    broken = docs.with_dmarc_none(docs.top())
    first = one_pass(w, store, Assessments(**{"a.test": broken, "b.test": broken}), T0)
    assert first.sent == {"mail": 1, "hook": 1} and first.held == {"mail": 1, "hook": 1}
    assert [json.loads(p["body"])["domain"] for p in sinks.posts()] == ["a.test"]
    # within the hour, with nothing due: still held
    later = asyncio.run(run_pass(w, store, assess=Assessments(), now=T0 + dt.timedelta(minutes=30)))
    assert later.sent == {} and later.held == {"mail": 1, "hook": 1}
    # an hour on, nothing due either: the held message goes out
    hour = asyncio.run(run_pass(w, store, assess=Assessments(), now=T0 + dt.timedelta(minutes=61)))
    assert hour.sent == {"mail": 1, "hook": 1}
    assert [json.loads(p["body"])["domain"] for p in sinks.posts()] == ["a.test", "b.test"]


def test_a_failed_delivery_is_an_error_and_is_retried(store: Store, tmp_path: Path) -> None:
    with Sinks(tmp_path, webhook_status=500) as failing:
        w = watchlist(failing)
        assess = Assessments(**{"top.test": docs.with_dmarc_none(docs.top())})
        result = one_pass(w, store, assess, T0)
        assert result.exit_code == 2 and result.sent == {"mail": 1}
        assert result.errors == (
            f"hook: POST http://127.0.0.1:{failing.webhook_port}/mecsa answered HTTP 500",
        )
        failing.webhook_status = 200
        retry = one_pass(w, store, assess, T0 + dt.timedelta(hours=1))
        assert retry.sent == {"hook": 1} and len(failing.posts()) == 2  # mail was told already


def test_a_mail_server_without_starttls_is_not_sent_to(store: Store, sinks: Sinks) -> None:
    class Accept:
        async def handle_DATA(self, *_args: Any) -> str:
            raise AssertionError("a message was sent in clear text")

    port = free_port()
    plain = Controller(Accept(), hostname="127.0.0.1", port=port)
    plain.start()
    try:
        w = watchlist(sinks)
        mail = w.notifiers["mail"]
        w = WatchList(
            w.domains,
            {**w.notifiers, "mail": type(mail)(**{**_fields(mail), "port": port})},
            w.assess,
            w.rules,
        )
        result = one_pass(w, store, Assessments(**{"top.test": docs.with_dmarc_none(docs.top())}), T0)
    finally:
        plain.stop()
    assert result.exit_code == 2
    assert result.errors == (f"mail: 127.0.0.1:{port} offers no STARTTLS: nothing sent in clear text",)


def _fields(obj: Any) -> dict[str, Any]:
    return {name: getattr(obj, name) for name in obj.__slots__}


def test_a_crashing_assessment_is_exit_2_and_the_other_domains_go_on(store: Store, sinks: Sinks) -> None:
    w = watchlist(sinks, domains=("a.test", "b.test"))
    assess = Assessments(**{"a.test": docs.top(), "b.test": docs.top()})
    assess.fail.add("a.test")
    result = one_pass(w, store, assess, T0)
    assert result.exit_code == 2
    assert result.errors == ("a.test: the assessment failed: RuntimeError: resolver exploded",)
    assert [a.domain for a in store.assessments_of_domain("b.test")] == ["b.test"]
    assert store.assessments_of_domain("a.test") == []


def test_a_pass_assesses_only_the_domains_that_are_due(store: Store, sinks: Sinks) -> None:
    w, assess = watchlist(sinks), Assessments(**{"top.test": docs.top()})
    one_pass(w, store, assess, T0, force=False)
    one_pass(w, store, assess, T0 + dt.timedelta(minutes=59), force=False)
    one_pass(w, store, assess, T0 + dt.timedelta(minutes=60), force=False)
    assert assess.asked == ["top.test", "top.test"]


def test_stdout_escapes_text_from_the_network(store: Store) -> None:
    w = parse_watchlist({"domain": [{"name": "top.test"}]})
    hostile = docs.with_dmarc_none(docs.top())
    hostile["findings"][-1]["message"] = "p=none \x1b[2J\x1b]0;owned\x07 \u202e"
    out = io.StringIO()
    notifiers = build_notifiers(list(w.notifiers.values()), stdout=out)
    asyncio.run(run_pass(w, store, assess=Assessments(**{"top.test": hostile}), notifiers=notifiers, now=T0))
    assert "\x1b" not in out.getvalue() and "\u202e" not in out.getvalue()
    assert "p=none \\x1b[2J\\x1b]0;owned\\x07 \\u202e" in out.getvalue()


def test_a_mail_server_whose_certificate_is_not_trusted_is_not_sent_to(
    store: Store, sinks: Sinks, tmp_path: Path
) -> None:
    from tests.monitor_sinks import make_tls_files

    other = tmp_path / "other"
    other.mkdir()
    stranger, _ = make_tls_files(other)  # a CA file that does not hold the sink's certificate
    w = watchlist(sinks)
    mail = w.notifiers["mail"]
    w = WatchList(
        w.domains, {"mail": type(mail)(**{**_fields(mail), "ca_file": str(stranger)})}, w.assess, w.rules
    )
    w = WatchList(
        tuple(type(d)(d.name, d.interval_s, ("mail",)) for d in w.domains), w.notifiers, w.assess, w.rules
    )
    result = one_pass(w, store, Assessments(**{"top.test": docs.with_dmarc_none(docs.top())}), T0)
    assert result.exit_code == 2 and sinks.mails() == []
    [error] = result.errors
    assert (
        error.startswith(f"mail: SMTP 127.0.0.1:{sinks.smtp_port}:") and "CERTIFICATE_VERIFY_FAILED" in error
    )
