"""The auto-reply: never to <>, MAILER-DAEMON or automatic mail; rate-limited; signed; delivered."""

from __future__ import annotations

import datetime as dt
import email
from pathlib import Path

import aiosmtplib
import dkim
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from mecsa.harden.records import dkim_txt
from mecsa.lab.senders import private_key_pem
from mecsa.mailmode.autoreply import AutoReplyLimiter, AutoReplySettings, autoreply_message, decide
from mecsa.mailmode.receiver import Receiver, ReceiverSettings
from mecsa.mailmode.signing import DkimSigner
from mecsa.mailmode.store import MailStore
from tests.conftest import ServeZones
from tests.unit.mailmode.test_loop import USER, _user_mx

T0 = dt.datetime(2024, 5, 1, 12, 0, tzinfo=dt.UTC)
KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
SIGNER = DkimSigner("receiver.test", "mm1", private_key_pem(KEY))


@pytest.mark.parametrize(
    ("mail_from", "headers", "why"),
    [
        ("", {}, "null reverse path"),
        ("<>", {}, "null reverse path"),
        ("MAILER-DAEMON@user.test", {}, "looks automated"),
        ("mailer-daemon@user.test", {}, "looks automated"),
        ("postmaster@user.test", {}, "looks automated"),
        ("no-reply@user.test", {}, "looks automated"),
        ("list-bounces@user.test", {}, "looks automated"),
        ("alice@user.test", {"Auto-Submitted": "auto-replied"}, "Auto-Submitted"),
        ("alice@user.test", {"Auto-Submitted": "auto-generated"}, "Auto-Submitted"),
        ("alice@user.test", {"Precedence": "bulk"}, "Precedence"),
        ("alice@user.test", {"List-Id": "<l.user.test>"}, "List-Id"),
    ],
)
def test_autoreply_refuses_bounces_daemons_and_automatic_mail(
    mail_from: str, headers: dict[str, str], why: str
) -> None:
    decision = decide(mail_from, headers)
    assert not decision.reply and why in decision.reason


def test_autoreply_answers_a_person_and_auto_submitted_no() -> None:
    assert decide("alice@user.test", {}).reply
    assert decide("<alice@user.test>", {"Auto-Submitted": "no"}).reply


def test_autoreply_is_rate_limited_per_recipient_and_in_all() -> None:
    limiter = AutoReplyLimiter(dt.timedelta(hours=1), max_per_hour=3)
    assert limiter.allow("alice@user.test", T0).reply
    again = limiter.allow("ALICE@user.test", T0 + dt.timedelta(minutes=59))
    assert not again.reply and "rate-limited" in again.reason
    assert limiter.allow("alice@user.test", T0 + dt.timedelta(minutes=61)).reply
    assert limiter.allow("bob@user.test", T0 + dt.timedelta(minutes=62)).reply
    assert limiter.allow("carol@user.test", T0 + dt.timedelta(minutes=63)).reply
    full = limiter.allow("dave@user.test", T0 + dt.timedelta(minutes=64))
    assert not full.reply and "3 replies in the last hour" in full.reason
    assert limiter.allow("dave@user.test", T0 + dt.timedelta(minutes=122)).reply


def _dns(name: bytes, timeout: int = 5) -> bytes:
    assert name == b"mm1._domainkey.receiver.test."
    return dkim_txt("mm1", "receiver.test", KEY.public_key()).value.encode()


def test_autoreply_message_is_signed_auto_submitted_and_names_the_report() -> None:
    settings = AutoReplySettings(SIGNER, report_url="https://mecsa.example/r/{token}")
    raw = autoreply_message(
        USER, "tok12345tok12345", settings, T0, in_reply_to="<m1@user.test>", subject="hi"
    )
    msg = email.message_from_bytes(raw)
    assert msg["Auto-Submitted"] == "auto-replied"
    assert (msg["In-Reply-To"], msg["Subject"]) == ("<m1@user.test>", "Re: hi")
    assert "https://mecsa.example/r/tok12345tok12345" in msg.get_payload()
    assert dkim.verify(raw, dnsfunc=_dns)
    assert "d=receiver.test" in " ".join(msg["DKIM-Signature"].split())
    plain = autoreply_message(USER, "tok12345tok12345", AutoReplySettings(SIGNER), T0)
    assert "mecsa mailmode report tok12345tok12345" in email.message_from_bytes(plain).get_payload()


async def test_receiver_replies_once_to_the_first_message_of_a_new_token(
    tmp_path: Path, serve_zones: ServeZones
) -> None:
    user_mx, client = await _user_mx(tmp_path, serve_zones, tlsa_ok=True)
    store = await MailStore.open(tmp_path / "rcv.sqlite3")
    settings = ReceiverSettings(
        "receiver.test",
        port=0,
        analyse=False,
        autoreply=AutoReplySettings(SIGNER, port=user_mx.port, smtp_timeout=5),
    )
    receiver = await Receiver(settings, store, client).start()
    try:
        smtp = aiosmtplib.SMTP(hostname="127.0.0.1", port=receiver.port, start_tls=False)
        await smtp.connect()
        head = f"From: <{USER}>\r\nTo: test@receiver.test\r\nSubject: hello\r\n"
        body = head + "Message-ID: <m1@user.test>\r\n\r\nhi\r\n"
        for sender in (USER, USER, "", "MAILER-DAEMON@user.test"):
            await smtp.sendmail(sender, ["test@receiver.test"], body.encode())
        await smtp.quit()
        await receiver.drain()
        tokens = await store.tokens()
        assert len(tokens) == 4  # test@ gives each message a new token
        replies = [e for t in tokens for e in await store.entries(t) if e.kind == "autoreply"]
        sent = [e.data for e in replies if e.data["sent"]]
        refused = sorted(e.data["decision"] for e in replies if not e.data["sent"])
        assert len(sent) == 1 and sent[0]["recipient"] == USER
        assert any("rate-limited" in r for r in refused)
        assert any("null reverse path" in r for r in refused)
        assert any("looks automated" in r for r in refused)
        (delivered,) = await user_mx.store.entries("user1234user5678", with_raw=True)
        assert delivered.data["connection"]["mail_from"] == ""  # null reverse path: no loop
        assert delivered.data["connection"]["starttls"] is True
        assert delivered.raw is not None and b"Auto-Submitted: auto-replied" in delivered.raw
    finally:
        await receiver.stop()
        await store.close()
        await user_mx.stop()
        await user_mx.store.close()
