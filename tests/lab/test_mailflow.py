"""Mail through the lab: the DANE sender delivers to the hardened MX; a TLSA mismatch makes it defer."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.lab


def test_dane_sender_delivers_to_top_score_mx_with_dkim_spf_dmarc_pass(full_lab: Path) -> None:
    from mecsa.lab.mailflow import send
    from mecsa.lab.runner import load_state

    delivery = send(load_state(full_lab), "bob@top.test")["bob@top.test"]
    assert delivery.status == "sent", delivery.sender_log
    assert delivery.verified_tls
    log = (full_lab / "logs" / "mail.sender.test.postfix.log").read_text()
    assert "Verified TLS connection established to mx1.top.test[" in log
    assert delivery.maildir_file is not None
    assert delivery.maildir_file.is_relative_to(full_lab / "hosts" / "mx1.top.test")
    assert delivery.results() == {"dkim": "pass", "spf": "pass", "dmarc": "pass"}
    # the verdicts come from the MX's own milters, named by its authserv-id
    assert all(h.startswith("mx1.top.test;") for h in delivery.authentication_results)


def test_dane_sender_defers_when_the_tlsa_matches_no_key(full_lab: Path) -> None:
    from mecsa.lab.mailflow import send
    from mecsa.lab.runner import load_state

    delivery = send(load_state(full_lab), "bob@tlsamismatch.test")["bob@tlsamismatch.test"]
    assert delivery.status == "deferred", delivery.sender_log
    assert "Server certificate not verified" in delivery.detail
    assert not delivery.verified_tls
    assert delivery.maildir_file is None
    mailbox = full_lab / "hosts" / "mx1.tlsamismatch.test" / "mail" / "Maildir" / "new"
    assert not mailbox.exists() or not any(mailbox.iterdir())


def test_spoofed_from_is_rejected_by_dmarc(full_lab: Path) -> None:
    """Mail claiming to be from top.test, sent by the sender (not in top.test's SPF, not signed)."""
    from mecsa.lab.plan import SENDER_NODE
    from mecsa.lab.runner import load_state, run_in

    state = load_state(full_lab)
    address = state.domains["top.test"]["hosts"][0]["address"]
    message = "From: <ceo@top.test>\nTo: <bob@top.test>\nSubject: spoof\n\nPay this.\n"
    swaks = [
        "swaks",
        "--server",
        address,
        "--from",
        "someone@sender.test",
        "--to",
        "bob@top.test",
        "--helo",
        "mail.sender.test",
        "--data",
        message,
        "-S",
    ]
    done = run_in(state, SENDER_NODE, swaks, capture=True, timeout=30)
    assert "550 5.7.1 rejected by DMARC policy" in done.stdout + done.stderr


def test_lab_send_command_shows_delivery_tls_and_the_mx_verdicts(full_lab: Path) -> None:
    argv = [sys.executable, "-m", "mecsa", "lab", "send", "bob@top.test", "--dir", str(full_lab)]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].startswith("message <") and lines[0].endswith(")")
    assert " to bob@top.test: sent (250 " in lines[0]
    assert lines[1] == "  DANE-verified TLS: yes"
    assert lines[2].startswith(f"  delivered to {full_lab}/hosts/mx1.top.test/mail/Maildir/new/")
    assert lines[3:] == ["  dkim: pass", "  dmarc: pass", "  spf: pass"]


def test_lab_send_command_exits_1_when_the_mx_is_not_verified(full_lab: Path) -> None:
    argv = [sys.executable, "-m", "mecsa", "lab", "send", "bob@tlsamismatch.test", "--dir", str(full_lab)]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 1, done.stdout + done.stderr
    assert ": deferred (" in done.stdout and "Server certificate not verified" in done.stdout
    assert "  DANE-verified TLS: no" in done.stdout.splitlines()
