"""The TLS version sweep and the weak-cipher trials against loopback servers."""

from __future__ import annotations

import ssl
import warnings
from pathlib import Path

import pytest

from mecsa.probes.smtp import ConnectionLimits, SmtpTimeouts, TlsSession, probe_smtp
from mecsa.probes.tls import (
    OFFERS,
    TLS_VERSIONS,
    WEAK_CLASSES,
    TlsSweep,
    TrialOutcome,
    answered_by,
    key_exchange,
    sweep_tls,
    trial_context,
)
from tests.unit.transport.pki import Pki
from tests.unit.transport.servers import LoopbackServers, server_context

FAST = SmtpTimeouts.from_base(0.5)
MX = "mx.example.test"


def offers_here() -> int:
    """How many sessions a sweep of a server that refuses every offer takes with this OpenSSL."""
    singles = {
        **{v: trial_context(v, "ALL") for v in TLS_VERSIONS},
        **{name: trial_context(None, spec) for name, spec in WEAK_CLASSES},
    }
    return sum(any(singles[label] is not None for label in offer) for offer in OFFERS)


def _outcomes(sweep: TlsSweep) -> dict[str, TrialOutcome]:
    return {t.label: t.outcome for t in (*sweep.versions, *sweep.weak_ciphers)}


async def test_modern_server_accepts_only_tls12_and_13(
    servers: LoopbackServers, pki: Pki, tmp_path: Path
) -> None:
    await servers.add_smtpd("127.0.0.2", server_context(pki.leaf(MX), b"", tmp_path))
    sweep = await sweep_tls(MX, "127.0.0.2", servers.port, timeouts=FAST, limits=ConnectionLimits())
    got = _outcomes(sweep)
    assert sweep.accepted(sweep.versions) == ("TLSv1.2", "TLSv1.3")
    assert got["TLSv1"] is TrialOutcome.REFUSED and got["TLSv1.1"] is TrialOutcome.REFUSED
    assert got["NULL"] is TrialOutcome.REFUSED and got["anonymous"] is TrialOutcome.REFUSED


async def test_tls10_only_server(servers: LoopbackServers, pki: Pki, tmp_path: Path) -> None:
    # OpenSSL 3 still speaks TLS 1.0 on both sides at SECLEVEL=0 (server_context sets it).
    context = server_context(pki.leaf(MX), b"", tmp_path, version=ssl.TLSVersion.TLSv1)
    await servers.add_smtpd("127.0.0.2", context)
    sweep = await sweep_tls(MX, "127.0.0.2", servers.port, timeouts=FAST, limits=ConnectionLimits())
    assert sweep.accepted(sweep.versions) == ("TLSv1",)
    assert {t.label: t.outcome for t in sweep.versions}["TLSv1.2"] is TrialOutcome.REFUSED
    # "ALL:@SECLEVEL=0" on that server includes anonymous ECDH suites: the trial must see it.
    anonymous = next(t for t in sweep.weak_ciphers if t.label == "anonymous")
    assert anonymous.outcome is TrialOutcome.ACCEPTED and anonymous.cipher is not None
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
            assert trial.outcome is TrialOutcome.NOT_TESTED and trial.reason and "OpenSSL" in trial.reason
        else:
            assert trial.outcome is TrialOutcome.REFUSED


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


async def test_trials_the_main_session_answered_are_not_run_again(
    servers: LoopbackServers, pki: Pki, tmp_path: Path
) -> None:
    await servers.add_smtpd("127.0.0.2", server_context(pki.leaf(MX), b"", tmp_path))
    main = await probe_smtp(MX, "127.0.0.2", servers.port, timeouts=FAST)
    assert main.tls is not None and main.tls.version == "TLSv1.3"
    # one session per offer: TLSv1 + TLSv1.1, TLSv1.2, TLSv1.3, the weak classes (NULL and
    # anonymous here; OpenSSL 3 cannot offer EXPORT, RC4, 3DES), every one refused but the two
    runnable = offers_here()
    before = servers.connections["127.0.0.2"]
    full = await sweep_tls(MX, "127.0.0.2", servers.port, timeouts=FAST, limits=ConnectionLimits())
    between = servers.connections["127.0.0.2"]
    known = await sweep_tls(
        MX, "127.0.0.2", servers.port, timeouts=FAST, limits=ConnectionLimits(), known=main.tls
    )
    assert between - before == runnable
    assert servers.connections["127.0.0.2"] - between == runnable - 1  # no TLSv1.3 trial
    assert _outcomes(known) == _outcomes(full)
    tls13 = known.versions[TLS_VERSIONS.index("TLSv1.3")]
    assert (tls13.version, tls13.cipher) == ("TLSv1.3", main.tls.cipher)
    assert tls13.reason == "negotiated by the main session"


def _session(version: str, cipher: str) -> TlsSession:
    return TlsSession(version, cipher, 256, (), False)


def test_what_the_main_session_proves() -> None:
    all_versions = {v: trial_context(v, "ALL") for v in TLS_VERSIONS}
    tls12 = _session("TLSv1.2", "ECDHE-RSA-AES128-GCM-SHA256")
    assert answered_by(tls12, "TLSv1.3", all_versions["TLSv1.3"]) is None
    proven = answered_by(tls12, "TLSv1.2", all_versions["TLSv1.2"])
    assert proven is not None and proven.outcome is TrialOutcome.ACCEPTED and proven.version == "TLSv1.2"
    assert answered_by(None, "TLSv1.2", all_versions["TLSv1.2"]) is None
    anonymous = trial_context(None, "aNULL")
    assert anonymous is not None
    # An anonymous suite negotiated on TLS 1.2 proves the anonymous class; a strong suite does not.
    anon = answered_by(_session("TLSv1.2", "AECDH-AES256-SHA"), "anonymous", anonymous)
    assert anon is not None and anon.outcome is TrialOutcome.ACCEPTED and anon.cipher == "AECDH-AES256-SHA"
    assert answered_by(tls12, "anonymous", anonymous) is None
    # Every context lists the TLS 1.3 suites; a TLS 1.3 session proves no weak class.
    tls13_suite = next(c["name"] for c in anonymous.get_ciphers() if c["name"].startswith("TLS_"))
    assert answered_by(_session("TLSv1.3", tls13_suite), "anonymous", anonymous) is None
    # What this OpenSSL cannot offer stays not tested, whatever the session says.
    assert answered_by(tls12, "RC4", None) is None


async def test_an_accepted_offer_of_two_versions_asks_again_for_the_other(
    servers: LoopbackServers, pki: Pki, tmp_path: Path
) -> None:
    """TLSv1 + TLSv1.1 go out in one ClientHello; a server taking TLSv1.1 is then asked for TLSv1 alone."""
    context = server_context(pki.leaf(MX), b"", tmp_path, version=ssl.TLSVersion.TLSv1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        context.maximum_version = ssl.TLSVersion.TLSv1_1  # accepts TLS 1.0 and 1.1
    await servers.add_smtpd("127.0.0.2", context)
    sweep = await sweep_tls(MX, "127.0.0.2", servers.port, timeouts=FAST, limits=ConnectionLimits())
    assert sweep.accepted(sweep.versions) == ("TLSv1", "TLSv1.1")
    versions = {t.label: t for t in sweep.versions}
    assert versions["TLSv1"].version == "TLSv1" and versions["TLSv1.1"].version == "TLSv1.1"
    assert versions["TLSv1.2"].outcome is TrialOutcome.REFUSED
    # anonymous suites are in the server's ALL, NULL ones are not: the weak offer is accepted with
    # an anonymous suite, then NULL is offered alone and refused
    weak = {t.label: t.outcome for t in sweep.weak_ciphers}
    assert weak["anonymous"] is TrialOutcome.ACCEPTED and weak["NULL"] is TrialOutcome.REFUSED
    # old versions, TLSv1 again, TLSv1.2, TLSv1.3, the weak classes, NULL again
    assert servers.connections["127.0.0.2"] == 6


async def test_a_refused_offer_answers_every_trial_in_it(
    servers: LoopbackServers, pki: Pki, tmp_path: Path
) -> None:
    await servers.add_smtpd("127.0.0.2", server_context(pki.leaf(MX), b"", tmp_path))
    sweep = await sweep_tls(MX, "127.0.0.2", servers.port, timeouts=FAST, limits=ConnectionLimits())
    old = [t for t in sweep.versions if t.label in ("TLSv1", "TLSv1.1")]
    assert [t.outcome for t in old] == [TrialOutcome.REFUSED] * 2
    assert old[0].reason and old[0].reason == old[1].reason  # one handshake's refusal, for both
    assert servers.connections["127.0.0.2"] == offers_here()
