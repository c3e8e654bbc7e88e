"""The configuration `mecsa harden apply --root` wrote, run for real: mail in, mail out, no relay.

The lab configures each MX with `mecsa harden apply` into the host's own root and starts
Postfix, OpenDKIM and OpenDMARC from exactly those files. A few settings are the lab's
environment (its addresses, its resolver and trust anchor, logs without syslog, one Maildir):
the first test proves that a new plan against the running files finds nothing else to change.
"""

from __future__ import annotations

import email
import re
import time
import uuid
from pathlib import Path

import pytest

pytestmark = pytest.mark.lab

DOMAIN = "top.test"
OTHER = "spfsoftfail.test"  # another fully hardened domain of the shipped scenarios (DNSSEC, TLSA)

# What the lab sets after `harden apply` (mecsa.lab.mxconfig), and nothing more.
LAB_MAIN_CF = {
    "mydestination",
    "inet_interfaces",
    "smtp_bind_address",
    "maillog_file",
    "maillog_file_prefixes",
}
LAB_OPENDKIM = {"pidfile", "trustanchorfile", "nameservers", "resolverconfiguration"}
LAB_OPENDMARC = {"pidfile"}


def _host(state: object, domain: str) -> dict[str, str]:
    return state.domains[domain]["hosts"][0]  # type: ignore[attr-defined,no-any-return]


def _settings_of(root: Path, domain: str, host: dict[str, str]) -> object:
    from mecsa.harden.settings import settings_from_mapping

    keys = sorted((root / "etc/opendkim/keys" / domain).glob("*.private"))
    return settings_from_mapping(
        {
            "domain": domain,
            "mx_host": host["hostname"],
            "ipv4": [host["address"]],
            "cert": str(root / "tls/chain.pem"),
            "key": str(root / "tls/key.pem"),
            "postmaster": "root",
            "selector": keys[0].name.removesuffix(".private"),
        }
    )


def _key_values(text: str) -> dict[str, str]:
    out = {}
    for line in text.splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            name, _, value = (
                line.strip().partition(" ") if " " in line.strip() else line.strip().partition("\t")
            )
            out[name.split()[0].lower()] = " ".join((name + " " + value).split()[1:])
    return out


def test_the_running_configuration_is_what_harden_apply_wrote(full_lab: Path) -> None:
    from mecsa.harden.apply import make_plan
    from mecsa.harden.conffile import main_cf_values
    from mecsa.harden.layout import Layout
    from mecsa.lab.runner import load_state

    state = load_state(full_lab)
    host = _host(state, DOMAIN)
    root = full_lab / "hosts" / host["hostname"]
    layout = Layout.under(root)
    plan = make_plan(_settings_of(root, DOMAIN, host), layout)  # type: ignore[arg-type]
    assert plan.new_keys == frozenset()
    differing: dict[str, set[str]] = {}
    for change in plan.pending:
        old, new = (change.old or b"").decode(), change.desired.content.decode()
        if change.path == Path(layout.main_cf):
            a, b = main_cf_values(old), main_cf_values(new)
        else:
            a, b = _key_values(old), _key_values(new)
        differing[change.path.name] = {k for k in set(a) | set(b) if a.get(k) != b.get(k)}
    assert set(differing) <= {"main.cf", "opendkim.conf", "opendmarc.conf"}, differing
    assert "mydestination" in differing["main.cf"]  # the comparison sees the lab's own edits
    assert differing.get("main.cf", set()) <= LAB_MAIN_CF, differing
    assert differing.get("opendkim.conf", set()) <= LAB_OPENDKIM, differing
    assert differing.get("opendmarc.conf", set()) <= LAB_OPENDMARC, differing


def test_mail_in_is_verified_spf_dkim_and_dmarc_over_dane(full_lab: Path) -> None:
    from mecsa.lab.mailflow import send
    from mecsa.lab.runner import load_state

    delivery = send(load_state(full_lab), f"bob@{DOMAIN}")[f"bob@{DOMAIN}"]
    assert delivery.status == "sent", delivery.sender_log
    assert delivery.verified_tls
    assert delivery.results() == {"dkim": "pass", "spf": "pass", "dmarc": "pass"}


def _wait_for(path: Path, pattern: str, timeout: float = 30.0) -> re.Match[str]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        text = path.read_text(errors="replace") if path.exists() else ""
        match = re.search(pattern, text)
        if match:
            return match
        time.sleep(0.2)
    raise AssertionError(f"{pattern!r} not in {path}:\n{text[-2000:] if path.exists() else '(no file)'}")


def _delivered(maildir: Path, token: str, timeout: float = 30.0) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for message in (maildir / "new").glob("*") if (maildir / "new").exists() else ():
            text = message.read_text(errors="replace")
            if token in text:
                return text
        time.sleep(0.2)
    raise AssertionError(f"no message with {token} in {maildir}")


def test_mail_out_is_dkim_signed_and_goes_over_a_dane_verified_connection(full_lab: Path) -> None:
    from mecsa.lab.runner import load_state, run_in

    state = load_state(full_lab)
    host, other = _host(state, DOMAIN), _host(state, OTHER)
    root = full_lab / "hosts" / host["hostname"]
    token = uuid.uuid4().hex
    message = f"From: <alice@{DOMAIN}>\nTo: <carol@{OTHER}>\nSubject: out {token}\n\nhello {token}\n"
    done = run_in(
        state,
        host["node"],
        ["sendmail", "-C", str(root / "etc/postfix"), "-f", f"alice@{DOMAIN}", f"carol@{OTHER}"],
        capture=True,
        input_text=message,
        timeout=30,
    )
    assert done.returncode == 0, done.stderr
    log = full_lab / "logs" / f"{host['hostname']}.postfix.log"
    _wait_for(log, rf"Verified TLS connection established to {re.escape(other['hostname'])}\[")
    _wait_for(log, rf"to=<carol@{re.escape(OTHER)}>.*status=sent")
    received = _delivered(full_lab / "hosts" / other["hostname"] / "mail" / "Maildir", token)
    parsed = email.message_from_string(received)
    signatures = [" ".join(s.split()) for s in parsed.get_all("DKIM-Signature", [])]
    assert any(f"d={DOMAIN};" in s for s in signatures), signatures
    # the receiving MX's own OpenDKIM verified the signature
    verdicts = [" ".join(h.split()) for h in parsed.get_all("Authentication-Results", [])]
    mine = [v for v in verdicts if v.startswith(f"{other['hostname']};")]
    assert any("dkim=pass" in v and f"header.d={DOMAIN}" in v for v in mine), verdicts


RELAY_PROBE = """
import smtplib, sys
s = smtplib.SMTP(sys.argv[1], 25, local_hostname="mail.sender.test", timeout=20)
s.ehlo()
s.mail("someone@sender.test")
for rcpt in sys.argv[2:]:
    code, text = s.rcpt(rcpt)
    print(rcpt, code, text.decode())
s.quit()
"""


def test_the_hardened_mx_is_no_open_relay(full_lab: Path) -> None:
    import sys

    from mecsa.lab.plan import SENDER_NODE
    from mecsa.lab.runner import load_state, run_in

    state = load_state(full_lab)
    host = _host(state, DOMAIN)
    outside = ["victim@relay-target.example", f"carol@{OTHER}", f"bob@{DOMAIN}"]
    done = run_in(
        state,
        SENDER_NODE,
        [sys.executable, "-c", RELAY_PROBE, host["address"], *outside],
        capture=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    replies = {line.split()[0]: line.split(maxsplit=2)[1:] for line in done.stdout.splitlines()}
    for rcpt in outside[:2]:
        code, text = replies[rcpt]
        # 454 from Debian's and Postfix's default defer_unauth_destination, 554 from reject_unauth_destination
        assert code in ("454", "554") and "Relay access denied" in text, replies
    assert replies[f"bob@{DOMAIN}"][0] == "250", replies  # its own domain it does accept


def test_the_renewal_hook_reloads_a_running_postfix(full_lab: Path, tmp_path: Path) -> None:
    """A renewal with the key in service (`--reuse-key`): installed, and the running MX reloaded."""
    import shutil
    import sys

    from mecsa.lab.runner import load_state, run_in

    state = load_state(full_lab)
    host = _host(state, DOMAIN)
    root = full_lab / "hosts" / host["hostname"]
    lineage = tmp_path / "live" / host["hostname"]
    lineage.mkdir(parents=True)
    shutil.copy(root / "tls/chain.pem", lineage / "fullchain.pem")
    shutil.copy(root / "tls/key.pem", lineage / "privkey.pem")
    deployed = tmp_path / "deployed.pem"
    deployed.write_bytes((root / "tls/key.pem").read_bytes() + (root / "tls/chain.pem").read_bytes())
    # as Certbot runs it on the MX itself (Postfix there listens on the MX's address)
    argv = [
        "env", f"RENEWED_LINEAGE={lineage}", f"RENEWED_DOMAINS={host['hostname']}",
        sys.executable, "-m", "mecsa.harden.renewal", "--mx-host", host["hostname"],
        "--lineage", str(lineage), "--deployed", str(deployed), "--postfix-dir", str(root / "etc/postfix"),
    ]  # fmt: skip
    done = run_in(state, host["node"], argv, capture=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert "the same key as the certificate in service" in done.stdout
    assert "postfix reload: done" in done.stdout
    _wait_for(full_lab / "logs" / f"{host['hostname']}.postfix.log", r"reload -- version")
