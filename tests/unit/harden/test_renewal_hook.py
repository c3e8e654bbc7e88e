"""The Certbot deploy hook apply installs, run as Certbot runs it, against a loopback DNS server.

The lineage, keys and certificates are made here; RENEWED_LINEAGE is set as Certbot sets it.
Postfix is not running, so the hook says so instead of reloading it.
"""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec

from mecsa.dns.zoneserver import Fault, ThreadedZoneServer, ZoneData
from mecsa.harden.apply import apply_plan, make_plan
from mecsa.harden.layout import Layout
from mecsa.harden.records import tlsa_311

from .conftest import FIXTURES, make_settings, write_tls_pair

MX = "mx.example.test"


def _passing(command: Sequence[str]) -> tuple[int, str]:
    return 0, ""


@dataclass
class Setup:
    root: Path
    layout: Layout
    lineage: Path
    current_key: ec.EllipticCurvePrivateKey
    next_key: ec.EllipticCurvePrivateKey

    @property
    def deployed(self) -> Path:
        return Path(self.layout.tls_deployed(MX))

    @property
    def hook(self) -> Path:
        return Path(self.layout.certbot_hook(MX))

    def renew(self, key: ec.EllipticCurvePrivateKey) -> x509.Certificate:
        """What Certbot does before it runs the deploy hooks: new files in the lineage."""
        cert, private = write_tls_pair(self.root / "new", MX, key=key)
        shutil.copy(cert, self.lineage / "fullchain.pem")
        shutil.copy(private, self.lineage / "privkey.pem")
        return x509.load_pem_x509_certificate(cert.read_bytes())


def _zone(*keys: ec.EllipticCurvePrivateKey) -> str:
    tlsa = "".join(f"{tlsa_311(MX, k.public_key()).zone_line()}\n" for k in keys)
    return f"example.test. 3600 IN SOA ns. h. 1 2 3 4 5\nexample.test. 3600 IN NS ns.\n{tlsa}"


@pytest.fixture
def setup(tmp_path: Path) -> Setup:
    root = tmp_path / "root"
    (root / "etc/postfix").mkdir(parents=True)
    shutil.copy(FIXTURES / "debian-main.cf", root / "etc/postfix/main.cf")
    shutil.copy(FIXTURES / "debian-master.cf", root / "etc/postfix/master.cf")
    lineage = root / "etc/letsencrypt/live" / MX
    current, nxt = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    cert, key = write_tls_pair(tmp_path / "issued", MX, key=current)
    lineage.mkdir(parents=True)
    shutil.copy(cert, lineage / "fullchain.pem")
    shutil.copy(key, lineage / "privkey.pem")
    settings = make_settings(cert=str(lineage / "fullchain.pem"), key=str(lineage / "privkey.pem"))
    assert settings.certbot_hook  # a cert under /letsencrypt/live/ turns the hook on
    layout = Layout.under(root)
    apply_plan(make_plan(settings, layout), runner=_passing)
    return Setup(root, layout, lineage, current, nxt)


@pytest.fixture
def dns_with_current_and_next(setup: Setup) -> Iterator[str]:
    with ThreadedZoneServer(
        ZoneData.from_texts({"example.test.": _zone(setup.current_key, setup.next_key)})
    ) as s:
        yield s.address


def _run_hook(setup: Setup, resolver: str, lineage: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "RENEWED_LINEAGE": str(lineage or setup.lineage), "RENEWED_DOMAINS": MX}
    return subprocess.run(
        [str(setup.hook), "--resolver", resolver],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def _served(setup: Setup) -> x509.Certificate:
    return x509.load_pem_x509_certificates(setup.deployed.read_bytes())[0]


def test_apply_installs_an_executable_hook_and_postfix_serves_the_deployed_copy(setup: Setup) -> None:
    assert stat.S_IMODE(setup.hook.stat().st_mode) == 0o755
    assert stat.S_IMODE(setup.deployed.stat().st_mode) == 0o600
    main = Path(setup.layout.main_cf).read_text()
    assert f"smtpd_tls_chain_files = {setup.deployed}\n" in main
    script = setup.hook.read_text()
    assert script.startswith("#!/bin/sh\n") and f"--lineage {setup.lineage} " in script
    settings = make_settings(
        cert=str(setup.lineage / "fullchain.pem"), key=str(setup.lineage / "privkey.pem")
    )
    assert make_plan(settings, setup.layout).pending == ()  # a second apply changes nothing


def test_a_renewal_with_the_same_key_is_installed(setup: Setup, dns_with_current_and_next: str) -> None:
    renewed = setup.renew(setup.current_key)
    done = _run_hook(setup, dns_with_current_and_next)
    assert done.returncode == 0, done.stderr
    assert "the same key as the certificate in service" in done.stdout
    assert _served(setup).serial_number == renewed.serial_number


def test_a_renewal_with_the_pre_published_next_key_is_installed(
    setup: Setup, dns_with_current_and_next: str
) -> None:
    renewed = setup.renew(setup.next_key)
    done = _run_hook(setup, dns_with_current_and_next)
    assert done.returncode == 0, done.stderr
    assert "its key matches the published TLSA 3 1 1" in done.stdout
    assert _served(setup).serial_number == renewed.serial_number
    assert stat.S_IMODE(setup.deployed.stat().st_mode) == 0o600


def test_a_renewal_with_an_unknown_key_is_refused_and_the_old_certificate_stays(
    setup: Setup, dns_with_current_and_next: str
) -> None:
    before = setup.deployed.read_bytes()
    unknown = ec.generate_private_key(ec.SECP256R1())
    setup.renew(unknown)
    done = _run_hook(setup, dns_with_current_and_next)
    assert done.returncode == 1
    assert setup.deployed.read_bytes() == before
    assert "NOT installed, its new key matches none of the published TLSA records" in done.stderr
    assert tlsa_311(MX, unknown.public_key()).zone_line() in done.stderr
    assert f"RENEWED_LINEAGE={setup.lineage} {setup.hook}" in done.stderr


def test_apply_after_a_refused_renewal_keeps_the_copy_and_lists_the_new_tlsa(
    setup: Setup, dns_with_current_and_next: str
) -> None:
    before = setup.deployed.read_bytes()
    unknown = ec.generate_private_key(ec.SECP256R1())
    setup.renew(unknown)
    assert _run_hook(setup, dns_with_current_and_next).returncode == 1
    settings = make_settings(
        cert=str(setup.lineage / "fullchain.pem"), key=str(setup.lineage / "privkey.pem")
    )
    plan = make_plan(settings, setup.layout)
    assert not [f for f in plan.pending if f.path == setup.deployed]
    assert any("(in service) has another key" in w for w in plan.warnings)
    tlsa = {r.value for r in plan.records().records if r.rtype == "TLSA"}
    assert tlsa == {
        tlsa_311(MX, setup.current_key.public_key()).value,
        tlsa_311(MX, unknown.public_key()).value,
    }
    apply_plan(plan, runner=_passing)
    assert setup.deployed.read_bytes() == before


def test_a_failed_tlsa_lookup_keeps_the_old_certificate(setup: Setup) -> None:
    before = setup.deployed.read_bytes()
    zones = ZoneData.from_texts(
        {"example.test.": _zone(setup.current_key)}, faults={f"_25._tcp.{MX}": Fault.SERVFAIL}
    )
    setup.renew(setup.next_key)
    with ThreadedZoneServer(zones) as server:
        done = _run_hook(setup, server.address)
    assert done.returncode == 1 and "could not be looked up (SERVFAIL" in done.stderr
    assert setup.deployed.read_bytes() == before


def test_another_lineage_is_left_alone(setup: Setup, dns_with_current_and_next: str) -> None:
    before = setup.deployed.read_bytes()
    other = setup.root / "etc/letsencrypt/live/www.example.test"
    other.mkdir(parents=True)
    done = _run_hook(setup, dns_with_current_and_next, lineage=other)
    assert done.returncode == 0 and "nothing to do" in done.stdout
    assert setup.deployed.read_bytes() == before


def test_a_renewal_whose_issuer_a_dane_ta_record_names_is_installed(setup: Setup) -> None:
    from mecsa.lab.ca import LabCa

    ca = LabCa()
    issued = ca.issue([MX])
    (setup.lineage / "fullchain.pem").write_bytes(issued.chain_pem)
    (setup.lineage / "privkey.pem").write_bytes(issued.key_pem)
    ca_spki = tlsa_311(MX, ca.certificate).value.split()[-1]
    zone = _zone() + f"_25._tcp.{MX}. 3600 IN TLSA 2 1 1 {ca_spki}\n"
    with ThreadedZoneServer(ZoneData.from_texts({"example.test.": zone})) as server:
        done = _run_hook(setup, server.address)
    assert done.returncode == 0, done.stderr
    assert "its key matches the published TLSA 2 1 1" in done.stdout
    assert len(x509.load_pem_x509_certificates(setup.deployed.read_bytes())) == 2  # leaf and CA
