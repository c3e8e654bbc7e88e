"""The TLS version sweep and the weak-cipher trials against loopback servers."""

from __future__ import annotations

import ssl
from pathlib import Path

import pytest

from mecsa.probes.smtp import ConnectionLimits, SmtpTimeouts
from mecsa.probes.tls import WEAK_CLASSES, Outcome, TlsSweep, key_exchange, sweep_tls, trial_context
from tests.unit.transport.pki import Pki
from tests.unit.transport.servers import LoopbackServers, server_context

FAST = SmtpTimeouts.from_base(0.5)
MX = "mx.example.test"


def _outcomes(sweep: TlsSweep) -> dict[str, Outcome]:
    return {t.label: t.outcome for t in (*sweep.versions, *sweep.weak_ciphers)}


async def test_modern_server_accepts_only_tls12_and_13(
    servers: LoopbackServers, pki: Pki, tmp_path: Path
) -> None:
    await servers.add_smtpd("127.0.0.2", server_context(pki.leaf(MX), b"", tmp_path))
    sweep = await sweep_tls(MX, "127.0.0.2", servers.port, timeouts=FAST, limits=ConnectionLimits())
    got = _outcomes(sweep)
    assert sweep.accepted(sweep.versions) == ("TLSv1.2", "TLSv1.3")
    assert got["TLSv1"] is Outcome.REFUSED and got["TLSv1.1"] is Outcome.REFUSED
    assert got["NULL"] is Outcome.REFUSED and got["anonymous"] is Outcome.REFUSED


async def test_tls10_only_server(servers: LoopbackServers, pki: Pki, tmp_path: Path) -> None:
    # OpenSSL 3 still speaks TLS 1.0 on both sides at SECLEVEL=0 (server_context sets it).
    context = server_context(pki.leaf(MX), b"", tmp_path, version=ssl.TLSVersion.TLSv1)
    await servers.add_smtpd("127.0.0.2", context)
    sweep = await sweep_tls(MX, "127.0.0.2", servers.port, timeouts=FAST, limits=ConnectionLimits())
    assert sweep.accepted(sweep.versions) == ("TLSv1",)
    assert {t.label: t.outcome for t in sweep.versions}["TLSv1.2"] is Outcome.REFUSED
    # "ALL:@SECLEVEL=0" on that server includes anonymous ECDH suites: the trial must see it.
    anonymous = next(t for t in sweep.weak_ciphers if t.label == "anonymous")
    assert anonymous.outcome is Outcome.ACCEPTED and anonymous.cipher is not None
    assert anonymous.cipher.startswith(("AECDH", "ADH"))


def test_what_local_openssl_cannot_offer_is_not_tested() -> None:
    for spec in ("EXP", "RC4", "3DES"):
        try:
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
            ctx.set_ciphers(f"{spec}:@SECLEVEL=0")
            possible = True
        except ssl.SSLError:
            possible = False
        assert (trial_context(None, spec) is not None) is possible


async def test_unofferable_classes_are_reported_not_tested(
    servers: LoopbackServers, pki: Pki, tmp_path: Path
) -> None:
    await servers.add_smtpd("127.0.0.2", server_context(pki.leaf(MX), b"", tmp_path))
    sweep = await sweep_tls(MX, "127.0.0.2", servers.port, timeouts=FAST, limits=ConnectionLimits())
    for trial in sweep.weak_ciphers:
        if trial_context(None, dict(WEAK_CLASSES)[trial.label]) is None:
            assert trial.outcome is Outcome.NOT_TESTED and trial.reason and "OpenSSL" in trial.reason
        else:
            assert trial.outcome is Outcome.REFUSED


@pytest.mark.parametrize(
    ("version", "cipher", "kind", "forward_secret"),
    [
        ("TLSv1.3", "TLS_AES_256_GCM_SHA384", "ECDHE/DHE (TLS 1.3)", True),
        ("TLSv1.2", "ECDHE-RSA-AES128-GCM-SHA256", "ECDHE", True),
        ("TLSv1.2", "DHE-RSA-AES256-SHA", "DHE", True),
        ("TLSv1.2", "AES128-SHA", "RSA key transport", False),
        ("TLSv1", "AECDH-AES256-SHA", "anonymous (EC)DH", True),
    ],
)
def test_key_exchange_from_the_suite(version: str, cipher: str, kind: str, forward_secret: bool) -> None:
    kex = key_exchange(version, cipher)
    assert (kex.kind, kex.forward_secret) == (kind, forward_secret)
    assert kex.authenticated is (kind != "anonymous (EC)DH")
