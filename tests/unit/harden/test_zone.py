"""`mecsa harden zone`: the Knot configuration and zone, checked by Knot's own tools, the key and its DS."""

from __future__ import annotations

import shutil
from collections.abc import Sequence
from pathlib import Path

import dns.rdatatype
import dns.zone
import pytest
from click.testing import CliRunner

from mecsa.cli import app
from mecsa.harden.apply import ApplyError, Plan, apply_plan, make_plan, run_command
from mecsa.harden.layout import Layout
from mecsa.harden.opendkim import key_pem
from mecsa.harden.zone import DEBIAN_SAMPLE, knot_conf, owns_conf
from mecsa.harden.zone_apply import apply_zone, ds_records, make_zone_plan

from .conftest import FIXTURES, check_golden, fixed_dkim_keys, make_settings

KNOT_TOOLS = pytest.mark.skipif(
    not all(shutil.which(t) for t in ("knotc", "kzonecheck", "keymgr")),
    reason="needs knot and knot-dnssecutils (scripts/bootstrap installs them)",
)


def _passing(command: Sequence[str]) -> tuple[int, str]:
    return 0, ""


def _hardened(root: Path, **changes: object) -> tuple[Layout, Plan]:
    (root / "etc/postfix").mkdir(parents=True)
    shutil.copy(FIXTURES / "debian-main.cf", root / "etc/postfix/main.cf")
    shutil.copy(FIXTURES / "debian-master.cf", root / "etc/postfix/master.cf")
    layout = Layout.under(root)
    for (domain, selector), key in fixed_dkim_keys().items():  # fixed keys: the zone is a golden file
        path = Path(layout.dkim_key(domain, selector))
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(key_pem(key))
    settings = make_settings(next_key=str(FIXTURES / "tls-next-key.pem"), **changes)
    plan = make_plan(settings, layout)
    apply_plan(plan, runner=_passing)
    return layout, make_plan(settings, layout)


def test_the_zone_holds_every_record_of_the_setup(tmp_path: Path) -> None:
    layout, plan = _hardened(tmp_path)
    zplan = make_zone_plan(plan.settings, layout, plan.record_sets())
    text = zplan.files[1].desired.content.decode()
    zone = dns.zone.from_text(text, origin="example.test.", relativize=False)
    have = {(str(name).rstrip("."), dns.rdatatype.to_text(r.rdtype)) for name, r in zone.iterate_rdatasets()}
    for owner, rtype in [
        ("example.test", "SOA"),
        ("example.test", "NS"),
        ("example.test", "MX"),
        ("example.test", "TXT"),  # SPF
        ("mx.example.test", "A"),
        ("mx.example.test", "AAAA"),
        ("ns1.example.test", "A"),
        ("s202611._domainkey.example.test", "TXT"),
        ("s202611-ed25519._domainkey.example.test", "TXT"),
        ("_dmarc.example.test", "TXT"),
        ("_mta-sts.example.test", "TXT"),
        ("_smtp._tls.example.test", "TXT"),
        ("mta-sts.example.test", "A"),
        ("mta-sts.example.test", "AAAA"),
    ]:
        assert (owner, rtype) in have, (owner, rtype)
    tlsa = zone.get_rdataset("_25._tcp.mx.example.test.", "TLSA")
    assert tlsa is not None and len(tlsa) == 2  # the current key and the pre-published next one
    check_golden("etc__knot__zones__example.test.zone", text)


def test_knot_conf_signs_with_ecdsa_p256_one_key_rolled_by_policy(tmp_path: Path) -> None:
    _, plan = _hardened(tmp_path)
    text = knot_conf(plan.settings, Layout())
    check_golden("etc__knot__knot.conf", text)
    for line in (
        "algorithm: ecdsap256sha256",
        "single-type-signing: on",
        "ksk-lifetime: 365d",
        "dnssec-signing: on",
    ):
        assert f"    {line}\n" in text
    assert 'listen: [ "127.0.0.25@53", "2001:db8::25@53" ]' in text  # never 127.0.0.1: Unbound is there


def test_a_foreign_knot_conf_is_not_replaced_but_debians_sample_is() -> None:
    assert owns_conf(None)
    assert owns_conf(f"{DEBIAN_SAMPLE}\nzone:\n#  - domain: example.com\n")
    assert not owns_conf(f"{DEBIAN_SAMPLE}\nzone:\n  - domain: mine.example\n")
    assert not owns_conf("server:\n    listen: 0.0.0.0@53\n")


@KNOT_TOOLS
def test_apply_writes_checks_makes_one_key_and_prints_its_ds(tmp_path: Path) -> None:
    layout, plan = _hardened(tmp_path)
    zplan = make_zone_plan(plan.settings, layout, plan.record_sets())
    assert ds_records(zplan) == {"example.test": ()}
    result = apply_zone(zplan)
    assert {c.name: (c.ok, c.skipped) for c in result.checks} == {
        "knot": (True, False),
        "zone example.test": (True, False),
    }
    assert result.new_keys == ("example.test",)
    (ds,) = result.ds["example.test"]
    assert ds.startswith("example.test. DS ") and " 13 2 " in ds and len(ds.split()[-1]) == 64
    again = apply_zone(make_zone_plan(plan.settings, layout, plan.record_sets()))
    assert again.written == () and again.new_keys == () and again.ds == result.ds  # the key is kept


@KNOT_TOOLS
def test_a_failed_zone_check_puts_the_files_back(tmp_path: Path) -> None:
    layout, plan = _hardened(tmp_path)
    conf = Path(layout.knot_conf)
    conf.parent.mkdir(parents=True)
    conf.write_text(f"{DEBIAN_SAMPLE}\n")
    zplan = make_zone_plan(plan.settings, layout, plan.record_sets())

    def zone_fails(command: Sequence[str]) -> tuple[int, str]:
        return (1, "error: broken") if command[0] == "kzonecheck" else run_command(command)

    with pytest.raises(ApplyError, match=r"zone example\.test: error: broken"):
        apply_zone(zplan, runner=zone_fails)
    assert conf.read_text() == f"{DEBIAN_SAMPLE}\n"
    assert not Path(layout.knot_zones / "example.test.zone").exists()


def test_the_cli_refuses_a_foreign_knot_conf_in_one_line(tmp_path: Path) -> None:
    layout, _ = _hardened(tmp_path)
    Path(layout.knot_conf).parent.mkdir(parents=True)
    Path(layout.knot_conf).write_text("server:\n    listen: 0.0.0.0@53\n")
    flags = [
        "--domain", "example.test", "--mx-host", "mx.example.test", "--ipv4", "127.0.0.25",
        "--cert", str(FIXTURES / "tls-cert.pem"), "--key", str(FIXTURES / "tls-key.pem"),
        "--postmaster", "root", "--selector", "s202611", "--root", str(tmp_path),
    ]  # fmt: skip
    result = CliRunner().invoke(app, ["harden", "zone", *flags, "--apply"])
    assert result.exit_code == 2 and "holds someone else's Knot configuration" in result.stderr
    assert result.stderr.count("\n") == 1
