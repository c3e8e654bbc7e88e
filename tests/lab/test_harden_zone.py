"""`mecsa harden zone` in the lab: the domain's own zone, signed by Knot, validates under its parent.

The lab brings up a hardened MX for ownzone.test. Then, as an administrator would:

1. `mecsa harden zone --apply --root <the MX's root>` writes knot.conf and the zone, checks them,
   makes the signing key and prints the DS;
2. Knot runs from exactly that configuration on the MX host (ns1.ownzone.test = the MX's
   address, the default);
3. the parent zone `test.` hands over to it: the lab's own copy of ownzone.test is dropped and
   the delegation holds the NS, its glue and the printed DS (the registrar's step);
4. the lab's validating Unbound then validates the zone, and `mecsa assess` finds DNSSEC secure
   and DANE matching, with the TLSA records from the zone `harden zone` wrote.
"""

from __future__ import annotations

import json
import re
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import dns.dnssec
import dns.rdata
import pytest
from click.testing import CliRunner

from tests.lab.helpers import lab_dir, require_lab

pytestmark = pytest.mark.lab

DOMAIN = "ownzone.test"
SCENARIO = f"""
name = "own-zone"
description = "The MX serves the domain's own zone, written by `mecsa harden zone`."
domain = "{DOMAIN}"

[expect]
fail = []
error = []
"""


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    require_lab()
    from mecsa.lab.runner import down, up

    scenario = tmp_path_factory.mktemp("own-zone") / "own-zone.toml"
    scenario.write_text(SCENARIO)
    directory = lab_dir("hzone")
    try:
        up([scenario], directory)
    except BaseException:
        down(directory)
        raise
    yield directory
    assert down(directory).leftovers == ()


def _knotc(conf: Path, *args: str) -> str:
    done = subprocess.run(
        ["knotc", "-c", str(conf), *args], capture_output=True, text=True, timeout=30, check=False
    )
    return done.stdout + done.stderr


def _wait(condition: object, what: str, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():  # type: ignore[operator]
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def _harden_zone(root: Path, host: dict[str, str], selector: str) -> str:
    from mecsa.cli import app

    flags = [
        "--domain", DOMAIN, "--mx-host", host["hostname"], "--ipv4", host["address"],
        "--cert", str(root / "tls/chain.pem"), "--key", str(root / "tls/key.pem"),
        "--postmaster", "root", "--selector", selector, "--root", str(root),
    ]  # fmt: skip
    result = CliRunner().invoke(app, ["harden", "zone", *flags, "--apply"])
    assert result.exit_code == 0, result.output
    return result.stdout


def _hand_over(lab: Path, ds: str, ns_address: str) -> None:
    """The registrar's step, done on the lab's parent: delegate to ns1.<domain>, with glue and DS."""
    conf = lab / "knot" / "knot.conf"
    text = conf.read_text()
    # the lab's own copy of the zone goes: the parent's server must refer, not answer
    text = re.sub(rf"  - domain: {re.escape(DOMAIN)}\.\n(    .*\n)*", "", text)
    conf.write_text(text)
    parent = lab / "knot" / "zones" / "test.zone"
    lines = [line for line in parent.read_text().splitlines() if not line.startswith(f"{DOMAIN}.")]
    lines += [f"{DOMAIN}. NS ns1.{DOMAIN}.", f"ns1.{DOMAIN}. A {ns_address}", ds]
    parent.write_text("\n".join(lines) + "\n")
    out = _knotc(conf, "reload")
    assert "Reloaded" in out, out


def _dig(lab: Path, *args: str) -> str:
    from mecsa.lab.plan import CLIENT_NODE
    from mecsa.lab.runner import load_state, run_in

    done = run_in(
        load_state(lab), CLIENT_NODE, ["dig", "+time=5", "+tries=2", *args], capture=True, timeout=60
    )
    return done.stdout


def test_a_zone_from_harden_zone_validates_under_a_parent_holding_its_ds(lab: Path) -> None:
    from mecsa.lab import netns
    from mecsa.lab.runner import load_state

    state = load_state(lab)
    host = state.domains[DOMAIN]["hosts"][0]
    root = lab / "hosts" / host["hostname"]
    out = _harden_zone(root, host, state.domains[DOMAIN]["selector"])
    (ds,) = [line for line in out.splitlines() if line.startswith(f"{DOMAIN}. DS ")]
    key_tag = ds.split()[2]

    conf = root / "etc/knot/knot.conf"
    argv = netns.exec_argv(
        state.ns(host["node"]), ["knotd", "-c", str(conf)], resolv_conf=lab / "resolv.conf"
    )
    with (lab / "logs" / "harden-knotd.out").open("w") as log:
        subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT)  # `down` stops it with the lab
    _wait(lambda: re.search(rf"\[{re.escape(DOMAIN)}\.\].*serial: \d", _knotc(conf, "zone-status")), "Knot")
    _hand_over(lab, ds, host["address"])

    # the parent now refers to the MX's Knot, and the keys it serves are those of the printed DS
    from mecsa.lab.plan import AUTH_IP

    def referred() -> bool:
        reply = _dig(lab, f"@{AUTH_IP}", "+norec", f"{DOMAIN}.", "SOA")
        return "status: NOERROR" in reply and "ANSWER: 0" in reply and f"NS\tns1.{DOMAIN}." in reply

    _wait(referred, "the parent's referral")
    answer = _dig(lab, f"@{state.data['resolver']}", "+dnssec", f"{DOMAIN}.", "DNSKEY")
    assert re.search(r"flags:[^;]*\bad\b", answer), answer  # validated by Unbound
    keys = _dig(lab, f"@{state.data['resolver']}", "+short", f"{DOMAIN}.", "DNSKEY").splitlines()
    dnskeys = [dns.rdata.from_text("IN", "DNSKEY", k) for k in keys if k.strip()]
    assert len(dnskeys) == 1  # one combined signing key
    assert dns.dnssec.key_id(dnskeys[0]) == int(key_tag)  # type: ignore[arg-type]
    printed = ds.split()[-1]
    assert dns.dnssec.make_ds(f"{DOMAIN}.", dnskeys[0], "SHA256").digest.hex() == printed

    from mecsa.cli.lab import assess_argv
    from mecsa.lab.plan import CLIENT_NODE
    from mecsa.lab.runner import run_in

    argv = assess_argv(state.data, DOMAIN, ["--json", "--timeout", "5"])
    done = run_in(state, CLIENT_NODE, argv, capture=True, timeout=180)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    protocols = report["protocols"]
    assert protocols["dnssec"]["status"] == "pass", protocols["dnssec"]
    assert protocols["dane"]["status"] == "pass", protocols["dane"]
    for name in ("spf", "dkim", "dmarc", "starttls"):
        assert protocols[name]["status"] == "pass", (name, protocols[name])
    served = (root / "etc/knot/zones" / f"{DOMAIN}.zone").read_text()
    tlsa = [f["evidence"] for f in report["findings"] if f["protocol"] == "dane" and f["status"] == "pass"]
    digest = re.search(r"TLSA 3 1 1 ([0-9a-f]{64})", served)
    assert digest is not None and digest.group(1) in json.dumps(tlsa), tlsa  # DANE matched our zone's TLSA
