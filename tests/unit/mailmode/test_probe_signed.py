"""The probe is accepted anywhere: DKIM-signed by the test domain, from an address in its SPF,
DMARC-aligned, with every record printed by the zone generator (and `mecsa mailmode zone`)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from click.testing import CliRunner
from cryptography.hazmat.primitives.asymmetric import rsa

from mecsa.cli import app
from mecsa.dns.resolver import Resolver
from mecsa.lab.senders import private_key_pem
from mecsa.mailmode.analysis import Connection, TlsInfo, analyse_message
from mecsa.mailmode.enforcement import ReceiverZone, receiver_zone_records
from mecsa.mailmode.probe import probe_message
from mecsa.mailmode.signing import DkimSigner
from tests.conftest import ServeZones
from tests.unit.mailmode.certs import write_self_signed
from tests.unit.mailmode.signing import HEAD
from tests.unit.mailmode.zones import zones

TOKEN = "probe123probe456"
PROBE_IP = "127.0.0.77"
KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)


def _zone(tmp_path: Path) -> str:
    _, _, cert = write_self_signed(tmp_path, "mx.receiver.test")
    zone = ReceiverZone("receiver.test", ("127.0.0.20",), probe_ipv4=(PROBE_IP,))
    records = receiver_zone_records(zone, cert, ("mm1", KEY.public_key()))
    return HEAD + "".join(r.zone_line() + "\n" for r in records.records)


async def test_signed_probe_from_an_spf_address_passes_spf_dkim_and_dmarc(
    tmp_path: Path, serve_zones: ServeZones
) -> None:
    client = await serve_zones({**zones(), "receiver.test.": _zone(tmp_path)})
    signer = DkimSigner("receiver.test", "mm1", private_key_pem(KEY))
    now = dt.datetime.now(dt.UTC)
    raw = signer.sign(probe_message("bob@user.test", TOKEN, "receiver.test", now))
    conn = Connection(
        PROBE_IP, 40000, "mx.receiver.test", f"{TOKEN}@receiver.test", ("bob@user.test",),
        TlsInfo("TLSv1.3", "TLS_AES_256_GCM_SHA384", 256), now,
    )  # fmt: skip
    analysis = await analyse_message(raw, conn, Resolver(client))
    assert [(s.domain, s.selector, s.result.value) for s in analysis.dkim] == [
        ("receiver.test", "mm1", "pass")
    ]
    assert analysis.spf_mailfrom.outcome.result.value == "pass"
    assert (analysis.dmarc.result.value, analysis.dmarc.from_domain) == ("pass", "receiver.test")
    unsigned = probe_message("bob@user.test", TOKEN, "receiver.test", now)
    outside = Connection("127.0.0.99", *(getattr(conn, f) for f in Connection.__slots__[1:]))
    failed = await analyse_message(unsigned, outside, Resolver(client))
    assert failed.dmarc.result.value == "fail"  # what the issue saw: unsigned, outside SPF, p=reject


def test_zone_command_prints_the_dkim_key_and_the_probe_address_in_spf(tmp_path: Path) -> None:
    cert, _, _ = write_self_signed(tmp_path, "mx.receiver.test")
    key_file = tmp_path / "dkim.pem"
    key_file.write_bytes(private_key_pem(KEY))
    result = CliRunner().invoke(
        app,
        ["mailmode", "zone", "--domain", "receiver.test", "--cert", cert, "--ipv4", "127.0.0.20",
         "--probe-ipv4", PROBE_IP, "--dkim-key", str(key_file), "--dkim-selector", "mm1"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert f'receiver.test. 3600 IN TXT "v=spf1 ip4:127.0.0.20 ip4:{PROBE_IP} -all"' in result.output
    assert 'mm1._domainkey.receiver.test. 3600 IN TXT "v=DKIM1; k=rsa; p=' in result.output
    assert '_dmarc.receiver.test. 3600 IN TXT "v=DMARC1; p=reject;' in result.output
    bad = tmp_path / "bad.pem"
    bad.write_text("not a key")
    result = CliRunner().invoke(
        app,
        [
            "mailmode",
            "zone",
            "--domain",
            "receiver.test",
            "--cert",
            cert,
            "--ipv4",
            "1.2.3.4",
            "--dkim-key",
            str(bad),
        ],
    )
    assert result.exit_code == 2 and "--dkim-key" in result.output
