"""Following one message in a sender Postfix's log: one attempt line per recipient, and its TLS."""

from __future__ import annotations

from pathlib import Path

from mecsa.lab.mailflow import attempt_lines, parse_attempt, queue_lines, verified_tls_for

MID = "<0a1b@sender.test>"
# The shape of Postfix 3.7's maillog_file lines (one message, two recipients, one other message).
LOG = f"""\
Dec  1 09:40:01 mail.sender.test postfix/pickup[101]: 4A1: uid=0 from=<alice@sender.test>
Dec  1 09:40:01 mail.sender.test postfix/cleanup[102]: 4A1: message-id={MID}
Dec  1 09:40:01 mail.sender.test postfix/cleanup[102]: 7B2: message-id=<other@sender.test>
Dec  1 09:40:01 mail.sender.test postfix/smtp[200]: Verified TLS connection established to \
mx1.top.test[10.53.0.33]:25: TLSv1.3 with cipher TLS_AES_256_GCM_SHA384 (256/256 bits)
Dec  1 09:40:02 mail.sender.test postfix/smtp[200]: 4A1: to=<Bob@Top.test>, \
relay=mx1.top.test[10.53.0.33]:25, delay=0.2, delays=0.1/0/0.05/0.05, dsn=2.0.0, \
status=sent (250 2.0.0 Ok: queued as 9C3)
Dec  1 09:40:02 mail.sender.test postfix/smtp[201]: Untrusted TLS connection established to \
mx.dane-trap.mailmode.test[10.53.0.7]:25: TLSv1.3 with cipher TLS_AES_256_GCM_SHA384 (256/256 bits)
Dec  1 09:40:02 mail.sender.test postfix/smtp[201]: 4A1: to=<t@dane-trap.mailmode.test>, \
relay=mx.dane-trap.mailmode.test[10.53.0.7]:25, delay=0.3, delays=0.1/0/0.2/0, dsn=4.7.5, \
status=deferred (Server certificate not verified)
Dec  1 09:40:03 mail.sender.test postfix/smtp[200]: 7B2: to=<carol@top.test>, \
relay=mx1.top.test[10.53.0.33]:25, delay=0.1, delays=0/0/0/0.1, dsn=2.0.0, status=sent (250 2.0.0 Ok)
Dec  1 09:40:05 mail.sender.test postfix/smtp[201]: 4A1: to=<t@dane-trap.mailmode.test>, \
relay=mx.dane-trap.mailmode.test[10.53.0.7]:25, delay=3, delays=0.1/0/2.9/0, dsn=4.7.5, \
status=deferred (Server certificate not verified)
"""


def _log(tmp_path: Path) -> Path:
    path = tmp_path / "mail.sender.test.postfix.log"
    path.write_text(LOG)
    return path


def test_queue_lines_follow_the_message_by_its_queue_id_only(tmp_path: Path) -> None:
    lines = queue_lines(_log(tmp_path), MID)
    assert len(lines) == 5
    assert all(": 4A1: " in line for line in lines)
    assert queue_lines(tmp_path / "missing.log", MID) == []


def test_attempt_lines_give_each_recipient_its_first_attempt_whatever_the_case(tmp_path: Path) -> None:
    found = attempt_lines(_log(tmp_path), MID, ["bob@top.test", "t@dane-trap.mailmode.test"])
    assert set(found) == {"bob@top.test", "t@dane-trap.mailmode.test"}
    assert parse_attempt(found["bob@top.test"]) == ("sent", "250 2.0.0 Ok: queued as 9C3")
    assert parse_attempt(found["t@dane-trap.mailmode.test"]) == (
        "deferred",
        "Server certificate not verified",
    )
    assert "delay=0.3" in found["t@dane-trap.mailmode.test"]  # the first of its two attempts


def test_attempt_lines_leave_out_a_recipient_without_an_attempt(tmp_path: Path) -> None:
    found = attempt_lines(_log(tmp_path), MID, ["bob@top.test", "nobody@top.test"])
    assert set(found) == {"bob@top.test"}
    assert attempt_lines(_log(tmp_path), "<unknown@sender.test>", ["bob@top.test"]) == {}


def test_a_lone_recipient_takes_the_attempt_of_its_rewritten_address(tmp_path: Path) -> None:
    found = attempt_lines(_log(tmp_path), "<other@sender.test>", ["carol"])
    assert parse_attempt(found["carol"])[0] == "sent"


def test_verified_tls_is_read_from_the_same_smtp_process_and_relay(tmp_path: Path) -> None:
    log = _log(tmp_path)
    found = attempt_lines(log, MID, ["bob@top.test", "t@dane-trap.mailmode.test"])
    assert verified_tls_for(log, found["bob@top.test"]) is True
    assert verified_tls_for(log, found["t@dane-trap.mailmode.test"]) is False
    # smtp[200]'s next delivery (another message) made no new TLS line: it counts as not verified
    [other] = attempt_lines(log, "<other@sender.test>", ["carol@top.test"]).values()
    assert verified_tls_for(log, other) is False
