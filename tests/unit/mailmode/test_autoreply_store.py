"""The auto-reply limiter is kept in the mail store: a restart does not reset it.

The rule is the same as the in-memory one (`limit_decision`); these tests read it through
`MailStore.claim_autoreply` and through a receiver restarted on the same store file.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import aiosmtplib

from mecsa.mailmode.autoreply import AutoReplySettings
from mecsa.mailmode.receiver import Receiver, ReceiverSettings
from mecsa.mailmode.store import MailStore
from tests.conftest import ServeZones
from tests.unit.mailmode.test_autoreply import SIGNER, T0
from tests.unit.mailmode.test_loop import USER, _user_mx

HOUR = dt.timedelta(hours=1)


def at(minutes: float) -> dt.datetime:
    return T0 + dt.timedelta(minutes=minutes)


async def test_claims_survive_closing_and_reopening_the_store(tmp_path: Path) -> None:
    path = tmp_path / "mm.sqlite3"
    store = await MailStore.open(path)
    assert (await store.claim_autoreply("<Alice@user.test>", T0, HOUR, 3))[0]
    await store.close()

    store = await MailStore.open(path)  # "the restart"
    try:
        allowed, reason = await store.claim_autoreply("alice@user.test", at(59), HOUR, 3)
        assert not allowed and "rate-limited" in reason and "alice@user.test" in reason
        assert (await store.claim_autoreply("alice@user.test", at(61), HOUR, 3))[0]
        assert (await store.claim_autoreply("bob@user.test", at(62), HOUR, 3))[0]
        assert (await store.claim_autoreply("carol@user.test", at(63), HOUR, 3))[0]
        allowed, reason = await store.claim_autoreply("dave@user.test", at(64), HOUR, 3)
        assert not allowed and "3 replies in the last hour" in reason
        assert (await store.claim_autoreply("dave@user.test", at(122), HOUR, 3))[0]
    finally:
        await store.close()


async def test_a_refused_claim_is_not_counted(tmp_path: Path) -> None:
    store = await MailStore.open(tmp_path / "mm.sqlite3")
    try:
        assert (await store.claim_autoreply("alice@user.test", T0, HOUR, 2))[0]
        for minute in range(1, 5):  # refused again and again: none of them is a reply
            assert not (await store.claim_autoreply("alice@user.test", at(minute), HOUR, 2))[0]
        assert (await store.claim_autoreply("bob@user.test", at(5), HOUR, 2))[0]
    finally:
        await store.close()


async def test_two_stores_on_one_file_share_the_limit(tmp_path: Path) -> None:
    """The web service's receiver and `mecsa mailmode serve` may share the file."""
    first = await MailStore.open(tmp_path / "mm.sqlite3")
    second = await MailStore.open(tmp_path / "mm.sqlite3")
    try:
        assert (await first.claim_autoreply("alice@user.test", T0, HOUR, 10))[0]
        assert not (await second.claim_autoreply("alice@user.test", at(0.02), HOUR, 10))[0]
    finally:
        await first.close()
        await second.close()


async def _send(port: int, sender: str, message_id: str) -> None:
    smtp = aiosmtplib.SMTP(hostname="127.0.0.1", port=port, start_tls=False)
    await smtp.connect()
    head = f"From: <{USER}>\r\nTo: test@receiver.test\r\nSubject: hello\r\n"
    head += f"Message-ID: <{message_id}@user.test>\r\n"
    await smtp.sendmail(sender, ["test@receiver.test"], (head + "\r\nhi\r\n").encode())
    await smtp.quit()


async def _replies(store: MailStore) -> list[dict[str, object]]:
    return [e.data for t in await store.tokens() for e in await store.entries(t) if e.kind == "autoreply"]


async def test_a_restarted_receiver_still_refuses_the_same_sender_within_the_hour(
    tmp_path: Path, serve_zones: ServeZones
) -> None:
    user_mx, client = await _user_mx(tmp_path, serve_zones, tlsa_ok=True)
    path = tmp_path / "rcv.sqlite3"
    settings = ReceiverSettings(
        "receiver.test",
        port=0,
        analyse=False,
        autoreply=AutoReplySettings(SIGNER, port=user_mx.port, smtp_timeout=5),
    )
    try:
        for run, message_id in enumerate(("m1", "m2")):
            store = await MailStore.open(path)
            receiver = await Receiver(settings, store, client).start()
            try:
                await _send(receiver.port, USER, message_id)
                await receiver.drain()
                replies = await _replies(store)
                assert len(replies) == run + 1
            finally:
                await receiver.stop()
                await store.close()
        store = await MailStore.open(path)
        try:
            replies = sorted(await _replies(store), key=lambda r: bool(r["sent"]))
        finally:
            await store.close()
        assert [r["sent"] for r in replies] == [False, True], replies
        assert "rate-limited" in str(replies[0]["decision"])
        assert len(await user_mx.store.entries("user1234user5678")) == 1  # one auto-reply delivered in all
    finally:
        await user_mx.stop()
        await user_mx.store.close()


async def test_refused_mail_claims_no_slot_of_the_persistent_limit(
    tmp_path: Path, serve_zones: ServeZones
) -> None:
    """<>, MAILER-DAEMON and Auto-Submitted mail are refused before the limiter is asked, so
    they never use up a sender's one reply (nor the hourly total of 2 here)."""
    user_mx, client = await _user_mx(tmp_path, serve_zones, tlsa_ok=True)
    store = await MailStore.open(tmp_path / "rcv.sqlite3")
    auto = AutoReplySettings(SIGNER, port=user_mx.port, smtp_timeout=5, max_per_hour=2)
    receiver = Receiver(
        ReceiverSettings("receiver.test", port=0, analyse=False, autoreply=auto), store, client
    )
    await receiver.start()
    try:
        smtp = aiosmtplib.SMTP(hostname="127.0.0.1", port=receiver.port, start_tls=False)
        await smtp.connect()
        head = f"From: <{USER}>\r\nTo: test@receiver.test\r\nSubject: hello\r\n"
        automatic = (head + "Auto-Submitted: auto-generated\r\n\r\nhi\r\n").encode()
        await smtp.sendmail(USER, ["test@receiver.test"], automatic)
        await smtp.sendmail("", ["test@receiver.test"], (head + "\r\nhi\r\n").encode())
        await smtp.sendmail("MAILER-DAEMON@user.test", ["test@receiver.test"], (head + "\r\nhi\r\n").encode())
        await smtp.sendmail(USER, ["test@receiver.test"], (head + "\r\nhi\r\n").encode())
        await smtp.quit()
        await receiver.drain()
        replies = await _replies(store)
        refused = sorted(str(r["decision"]) for r in replies if not r["sent"])
        assert len(refused) == 3 and not any("rate-limited" in r for r in refused), refused
        assert [r["recipient"] for r in replies if r["sent"]] == [USER]
        allowed, _ = await store.claim_autoreply("bob@user.test", dt.datetime.now(dt.UTC), HOUR, 2)
        assert allowed  # the hourly total counted one reply, not four
    finally:
        await receiver.stop()
        await store.close()
        await user_mx.stop()
        await user_mx.store.close()
