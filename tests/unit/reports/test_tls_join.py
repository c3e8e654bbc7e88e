"""The TLS join end to end: a reported failure re-probed against a live loopback MX."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from mecsa.observe import AssessOptions
from mecsa.reports.intake import Intake
from mecsa.reports.join import JoinStatus, tls_join
from mecsa.reports.storage import ReportStore
from mecsa.reports.views import Window, build_view
from tests.conftest import ServeZones
from tests.unit.reports.samples import json_bytes, tls_report
from tests.unit.transport.pki import Pki
from tests.unit.transport.servers import LoopbackServers, server_context

HEAD = "@ 300 IN SOA ns hostmaster 1 300 300 300 300\n@ IN NS ns\nns IN A 127.0.0.53\n"
MX = "mx1.example.test"
REPORTED = (("certificate-expired", MX, 7), ("starttls-not-supported", MX, 2))


@pytest.fixture(scope="module")
def pki() -> Pki:
    return Pki.create("Join")


@pytest.fixture
async def servers() -> AsyncIterator[LoopbackServers]:
    running = LoopbackServers()
    yield running
    await running.close()


async def _join(
    serve_zones: ServeZones, servers: LoopbackServers, pki: Pki, tmp_path: Path
) -> dict[str, tuple[JoinStatus, str, list[str]]]:
    client = await serve_zones({"example.test.": HEAD + "@ IN MX 10 mx1\nmx1 IN A 127.0.0.2\n"})
    store = ReportStore.open(tmp_path / "s.sqlite")
    try:
        Intake(store).report_bytes("t.json", json_bytes(tls_report(failures=REPORTED)))
        view = build_view(store, Window())
    finally:
        store.close()
    options = AssessOptions(smtp_port=servers.port, smtp_timeout=1.0, ca_file=str(pki.write_root(tmp_path)))
    items = await tls_join(view, client, options)
    return {i.problem.split()[0]: (i.status, i.now, [f.key for f in i.fixes]) for i in items}


async def test_expired_certificate_still_there_gets_the_live_finding_and_fix(
    serve_zones: ServeZones, servers: LoopbackServers, pki: Pki, tmp_path: Path
) -> None:
    await servers.add_smtpd(
        "127.0.0.2", server_context(pki.leaf(MX, expired=True), pki.intermediate.pem, tmp_path)
    )
    joined = await _join(serve_zones, servers, pki, tmp_path)
    status, now, fixes = joined["certificate-expired"]
    assert status is JoinStatus.STILL_FAILING and "expired" in now
    assert fixes == ["x509.replace"]
    # STARTTLS works now: that part of the report is fixed since.
    assert joined["starttls-not-supported"][0] is JoinStatus.FIXED


async def test_renewed_certificate_is_fixed_since_the_report(
    serve_zones: ServeZones, servers: LoopbackServers, pki: Pki, tmp_path: Path
) -> None:
    await servers.add_smtpd("127.0.0.2", server_context(pki.leaf(MX), pki.intermediate.pem, tmp_path))
    joined = await _join(serve_zones, servers, pki, tmp_path)
    assert joined["certificate-expired"][0] is JoinStatus.FIXED


async def test_unreachable_mx_is_could_not_check_never_fixed(
    serve_zones: ServeZones, servers: LoopbackServers, pki: Pki, tmp_path: Path
) -> None:
    joined = await _join(serve_zones, servers, pki, tmp_path)  # nothing listens on 127.0.0.2
    assert {s for s, _, _ in joined.values()} == {JoinStatus.COULD_NOT_CHECK}
