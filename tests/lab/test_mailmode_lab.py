"""Mail mode against real senders: the lab's Postfix senders mail `mecsa mailmode serve`.

One lab with `mailmode=True` (receiver for mailmode.test, its signed DANE and MTA-STS traps, and
three senders: the hardened DANE sender, a `may` sender, and a sender not in its domain's SPF).
Each sender replies as a user's provider would: To the control address, Cc both traps.
"""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.lab.helpers import lab_dir, require_lab

pytestmark = pytest.mark.lab

# An enforcing sender has already deferred the trap when the report is read (its log says so);
# the window only has to pass once after the control's arrival.
WINDOW = dt.timedelta(seconds=1)
MODERN_TLS = ("TLSv1.2", "TLSv1.3")


@pytest.fixture(scope="module")
def mailmode_lab() -> Iterator[Path]:
    require_lab()
    from mecsa.lab import netns
    from mecsa.lab.plan import namespace_prefix
    from mecsa.lab.runner import down, up

    directory = lab_dir("mailmode")
    try:
        up([], directory, mailmode=True)
    except BaseException:
        down(directory)
        raise
    yield directory
    assert down(directory).leftovers == ()
    assert netns.list_namespaces(namespace_prefix(directory) + "-") == []


def _reply(
    directory: Path, role: str, *, traps: bool = True, token: str | None = None
) -> tuple[str, dict[str, Any]]:
    """Mail from the sender of `role` to a token's control address (a new token unless given; Cc
    the traps when asked); return the token and the sender Postfix's outcome per recipient."""
    from mecsa.lab.mailflow import send
    from mecsa.lab.plan import RECEIVER_DOMAIN, SENDERS
    from mecsa.lab.runner import load_state
    from mecsa.mailmode.addresses import new_token

    token = token or new_token()
    cc = [f"{token}@dane-trap.{RECEIVER_DOMAIN}", f"{token}@sts-trap.{RECEIVER_DOMAIN}"]
    outcomes = send(
        load_state(directory),
        f"{token}@{RECEIVER_DOMAIN}",
        cc if traps else [],
        sender=SENDERS[role],
    )
    return token, {addr.partition("@")[2]: o for addr, o in outcomes.items()}


def _report(directory: Path, token: str, *, trapped: bool = True) -> dict[str, Any]:
    """The receiver's report once the control message is analysed and, when the traps were
    addressed (`trapped`), the DANE verdict is settled."""
    from mecsa.lab.mailflow import wait_report
    from mecsa.lab.plan import store_file

    def ready(report: dict[str, Any]) -> bool:
        dane = next(e for e in report["enforcement"] if e["trap"] == "dane")
        assessed = report["sender_assessment"] is not None  # the inbound side of the provider grade
        return (
            report["outbound"] is not None and assessed and (not trapped or dane["verdict"] != "unknown_yet")
        )

    return wait_report(store_file(directory), token, ready, window=WINDOW, timeout=60)


def _enforcement(report: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {e["trap"]: e for e in report["enforcement"]}


def _control_analysis(report: dict[str, Any]) -> dict[str, Any]:
    [control] = [m for m in report["messages"] if m["recipients"][0]["kind"] == "control"]
    analysis: dict[str, Any] = control["analysis"]
    return analysis


def _mecsa_st_reference(report: dict[str, Any]) -> dict[str, int]:
    """MECSA's combination of this report's evidence, by the unit tests' independent reimplementation."""
    from mecsa.mailmode.grade import hosts_from_assessment, records_from_assessment
    from tests.unit.mailmode.test_grade import _reference

    protocols = report["sender_assessment"]["assessment"]["protocols"]
    hosts = [
        {"tls12": h.starttls, "cert": h.certificate, "dane": h.dane, "sts": h.mta_sts}
        for h in hosts_from_assessment(protocols)
    ]
    outs = [
        {
            "tls": m["analysis"]["connection"]["tls"] is not None,
            "spf": m["analysis"]["spf"]["mailfrom"]["result"] == "pass",
            "dkim": any(s["result"] == "pass" for s in m["analysis"]["dkim"]),
        }
        for m in report["messages"]
        if m["analysis"] and m["recipients"][0]["kind"] == "control"
    ]
    counted = records_from_assessment(protocols)["mecsa-st"].supported
    dns = {p: p in counted for p in ("spf", "spf_policy", "dmarc", "dmarc_policy", "dnssec")}
    return _reference(hosts, outs, dns)


def test_receiver_grades_the_hardened_sender_a_may_sender_and_a_sender_not_in_spf(
    mailmode_lab: Path,
) -> None:
    from mecsa.lab.plan import RECEIVER_DOMAIN, RECEIVER_IP, SENDERS, store_file

    d = RECEIVER_DOMAIN
    hardened, may, not_in_spf = SENDERS["hardened"], SENDERS["may"], SENDERS["not-in-spf"]

    # --- the hardened DANE sender: verified TLS to the control, defers the DANE trap -----------
    token, sent = _reply(mailmode_lab, "hardened")
    assert sent[d].status == "sent" and sent[d].verified_tls, sent
    assert sent[f"dane-trap.{d}"].status == "deferred", sent
    assert sent[f"dane-trap.{d}"].detail == "Server certificate not verified"
    report = _report(mailmode_lab, token)
    verdicts = {p: v["status"] for p, v in report["outbound"]["verdicts"].items()}
    assert verdicts == {"starttls": "pass", "spf": "pass", "dkim": "pass", "dmarc": "pass"}, report
    for message in report["messages"]:
        assert message["connection"]["peer_ip"] == hardened.address
        assert message["connection"]["tls"]["version"] in MODERN_TLS
    analysis = _control_analysis(report)
    assert analysis["spf"]["mailfrom"]["result"] == "pass"
    assert analysis["spf"]["mailfrom"]["domain"] == hardened.domain
    assert [(s["d"], s["result"]) for s in analysis["dkim"]] == [(hardened.domain, "pass")]
    assert analysis["dmarc"]["result"] == "pass"
    assert analysis["dmarc"]["from_domain"] == hardened.domain
    traps = _enforcement(report)
    assert traps["dane"]["label"] == "enforces DANE", traps["dane"]
    assert [m for m in report["messages"] if m["recipients"][0]["kind"] == "dane_trap"] == []
    # the positive evidence: Postfix connected to the trap's MX, saw its certificate, and quit
    assert any("SNI mx.dane-trap." in x and "quit without sending" in x for x in traps["dane"]["evidence"])
    # Postfix has no MTA-STS of its own: the MTA-STS trap (no TLSA, so DANE does not apply) catches it
    assert sent[f"sts-trap.{d}"].status == "sent"
    assert traps["mta-sts"]["label"] == "does not enforce MTA-STS"
    # the provider grade: sender.test's MX is hardened too (TLSA, MTA-STS, lab CA), so both sides pass
    provider = report["provider"]
    assert provider["domain"] == hardened.domain and provider["assessed"], provider
    assert report["sender_assessment"]["assessment"]["protocols"]["dkim"]["status"] == "pass"
    assert report["sender_assessment"]["dkim_selectors"] == ["lab"]
    mecsa = provider["profiles"]["mecsa"]
    assert mecsa["levels"] == {"confidentiality": 10, "phishing": 10, "integrity": 10}, mecsa
    assert provider["profiles"]["mecsa-st"]["levels"] == _mecsa_st_reference(report), provider

    # the same verdicts through `mecsa mailmode report`, as a user reads them
    store, minutes = str(store_file(mailmode_lab)), str(WINDOW.total_seconds() / 60)
    cli = subprocess.run(
        [sys.executable, "-m", "mecsa", "mailmode", "report", token, "--store", store, "--window", minutes],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert cli.returncode == 0, cli.stderr
    assert "dane     enforces DANE:" in cli.stdout
    assert "mta-sts  does not enforce MTA-STS:" in cli.stdout

    # --- the `may` sender: delivers to the DANE trap, over unauthenticated TLS -------------------
    token, sent = _reply(mailmode_lab, "may")
    assert {r: o.status for r, o in sent.items()} == {
        d: "sent",
        f"dane-trap.{d}": "sent",
        f"sts-trap.{d}": "sent",
    }
    assert not any(o.verified_tls for o in sent.values())
    report = _report(mailmode_lab, token)
    dane = _enforcement(report)["dane"]
    assert dane["label"] == "does not enforce DANE", dane
    graded = report["provider"]["profiles"]["mecsa"]
    assert graded["levels"]["confidentiality"] < 10, graded
    assert not graded["protocols"]["dane"]["counted"]
    assert "does not enforce DANE" in graded["protocols"]["dane"]["why"]
    assert len(dane["evidence"]) == 1
    assert f"@dane-trap.{d} " in dane["evidence"][0]
    assert f"from {may.host} [{may.address}]" in dane["evidence"][0]
    assert report["outbound"]["verdicts"]["starttls"]["status"] == "pass"

    # --- the sender not in its domain's SPF: SPF fails, DKIM (aligned) still carries DMARC -------
    token, sent = _reply(mailmode_lab, "not-in-spf", traps=False)
    assert sent[d].status == "sent" and sent[d].verified_tls, sent
    report = _report(mailmode_lab, token, trapped=False)
    verdicts = {p: v["status"] for p, v in report["outbound"]["verdicts"].items()}
    assert verdicts == {"starttls": "pass", "spf": "fail", "dkim": "pass", "dmarc": "pass"}, report
    spf = _control_analysis(report)["spf"]["mailfrom"]
    assert (spf["domain"], spf["result"]) == (not_in_spf.domain, "fail")
    assert spf["reason"].endswith("matched -all"), spf  # the record lists another address only
    assert report["messages"][0]["connection"]["peer_ip"] == not_in_spf.address
    assert _enforcement(report)["dane"]["verdict"] == "unknown_yet"  # never asked to use the trap
    spf_grade = report["provider"]["profiles"]["mecsa"]["protocols"]["spf"]
    assert not spf_grade["counted"] and "0 of 1 message(s) passed SPF" in spf_grade["why"]
    assert report["provider"]["profiles"]["mecsa"]["levels"]["phishing"] < 10

    # the receiver really listened in the lab, on its own address
    assert (
        json.loads((mailmode_lab / "state.json").read_text())["mailmode"]["receiver"]["address"]
        == RECEIVER_IP
    )


def test_mta_sts_trap_policy_is_served_and_excludes_the_trap_mx(mailmode_lab: Path) -> None:
    """The MTA-STS trap is real: the lab's HTTPS server serves an enforce policy without its MX."""
    from mecsa.lab.plan import CLIENT_NODE, RECEIVER_DOMAIN
    from mecsa.lab.runner import load_state, run_in

    state = load_state(mailmode_lab)
    url = f"https://mta-sts.sts-trap.{RECEIVER_DOMAIN}/.well-known/mta-sts.txt"
    script = f"import httpx; print(httpx.get({url!r}, verify={state.data['ca_file']!r}, timeout=10).text)"
    done = run_in(state, CLIENT_NODE, [sys.executable, "-c", script], capture=True, timeout=30)
    assert done.returncode == 0, done.stderr
    policy = done.stdout.splitlines()
    assert "mode: enforce" in policy
    assert [line for line in policy if line.startswith("mx:")] == [
        f"mx: not-the-mx.sts-trap.{RECEIVER_DOMAIN}"
    ]


def test_probe_to_the_hardened_mx_then_the_reply_grade_both_sides(mailmode_lab: Path) -> None:
    """The whole loop from the terminal: the probe lands at sender.test's hardened MX (TLS 1.3, a
    valid certificate, DANE matched), the provider replies with the traps in Cc, and the report
    grades both sides: 10/10/10 under mecsa and MECSA's combination under mecsa-st."""
    from mecsa.lab.plan import RECEIVER_DOMAIN, RECEIVER_NODE, RESOLVER_IP, SENDERS, store_file
    from mecsa.lab.runner import load_state, run_in
    from mecsa.mailmode.addresses import new_token

    state = load_state(mailmode_lab)
    hardened = SENDERS["hardened"]
    token = new_token()
    argv = [
        sys.executable, "-m", "mecsa", "mailmode", "probe", hardened.from_address,
        "--from", f"{token}@{RECEIVER_DOMAIN}", "--resolver", RESOLVER_IP,
        "--ca-file", str(state.data["ca_file"]), "--store", str(store_file(mailmode_lab)), "--json",
    ]  # fmt: skip
    done = run_in(state, RECEIVER_NODE, argv, capture=True, timeout=60)
    assert done.returncode == 0, done.stderr
    probe = json.loads(done.stdout)
    assert probe["delivered"] is True, probe
    (attempt,) = probe["attempts"]
    assert attempt["host"] == hardened.host and attempt["session"]["tls"]["version"] in MODERN_TLS
    assert attempt["pkix"]["valid"] is True and attempt["dane"]["status"] == "matched"
    assert attempt["delivery"]["explanation"] == "the provider's server accepted the probe"
    _, sent = _reply(mailmode_lab, "hardened", token=token)
    assert sent[RECEIVER_DOMAIN].status == "sent"
    report = _report(mailmode_lab, token)
    assert report["inbound"]["recipient"] == hardened.from_address
    provider = report["provider"]
    assert provider["messages"] == 1 and provider["inbound_hosts"] == 1
    assert provider["profiles"]["mecsa"]["levels"] == {"confidentiality": 10, "phishing": 10, "integrity": 10}
    assert provider["profiles"]["mecsa-st"]["levels"] == _mecsa_st_reference(report)
    evidence = {p: g["evidence"] for p, g in provider["profiles"]["mecsa-st"]["protocols"].items()}
    assert (evidence["starttls"], evidence["dkim"], evidence["x509"]) == ("both", "outbound", "inbound")
