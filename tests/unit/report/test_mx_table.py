"""The compact per-MX table, read from the typed facts of a real assessment of the mx, starttls, x509,
dane and mta-sts checks: one MX host with a secure A and a bogus AAAA answer; its first address
offers TLS 1.0-1.2 only, with an expired certificate that does not name the host (CN cn.t.test,
SANs san.t.test and x.t.test: the table shows the first SAN) and a TLSA record that does not match;
nothing answers at its second address.
"""

from __future__ import annotations

import functools
import ssl
import warnings

from mecsa.dns.zoneserver import Fault
from mecsa.model import Assessment
from mecsa.observe.mx import MxFacts
from mecsa.report.html import render_html
from mecsa.report.text import render_text
from mecsa.report.view import AddressRow, build_view
from tests.unit.report.samples import HEAD, MX_KEY_SEED, TODAY, normalise, run_sample, sample_lab
from tests.unit.transport.servers import server_context

HOST = "mx1.t.test"


async def _build() -> Assessment:
    async with sample_lab() as lab:
        leaf = lab.pki.leaf("san.t.test", "x.t.test", subject="cn.t.test", expired=True)
        context = server_context(leaf, lab.pki.intermediate.pem, lab.directory)
        context.set_ciphers("ECDHE-ECDSA-AES128-SHA:@SECLEVEL=0")  # a CBC suite with SHA-1 MACs
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            context.minimum_version = ssl.TLSVersion.TLSv1
            context.maximum_version = ssl.TLSVersion.TLSv1_2
        await lab.smtp.add_smtpd("127.0.0.10", context)  # nothing listens at 127.0.0.11
        not_presented = lab.leaf("other.t.test", MX_KEY_SEED)  # the server presents another key
        policy = b"version: STSv1\r\nmode: enforce\r\nmx: *.t.test\r\nmax_age: 604800\r\n"
        await lab.policy_host("127.0.0.12", "mta-sts.t.test", policy)
        zone = HEAD + "\n".join(
            (
                "@ IN MX 5 mx1",
                "mx1 IN A 127.0.0.10",
                "mx1 IN A 127.0.0.11",
                "mta-sts IN A 127.0.0.12",
                f"_{lab.smtp.port}._tcp.mx1 IN TLSA 3 1 1 {not_presented.spki_sha256()}",
                '_mta-sts IN TXT "v=STSv1; id=1;"',
                "",
            )
        )
        return await lab.assess("t.test", zone, secure=True, faults={f"{HOST}/AAAA": Fault.BOGUS})


@functools.cache
def _assessment() -> Assessment:
    return run_sample(_build)


def test_one_compact_row_per_address_from_the_typed_facts() -> None:
    (host,) = build_view(_assessment(), today=TODAY).hosts
    assert host.facts == (("preference", "5"), ("DNSSEC A", "secure"), ("DNSSEC AAAA", "bogus"))
    # The rows follow the MX check's address order, which is the DNS answer's (servers shuffle it).
    mx = _assessment().facts(MxFacts)
    assert mx is not None and mx.host(HOST) is not None
    assert tuple(row.address for row in host.addresses) == mx.host(HOST).addresses  # type: ignore[union-attr]
    assert {row.address: row for row in host.addresses} == {
        "127.0.0.10": AddressRow(
            "127.0.0.10",
            "offered; TLSv1.2; ECDHE-ECDSA-AES128-SHA",
            "1.0, 1.1, 1.2",
            "name_mismatch, expired; san.t.test; -11 days left",
            "no match",
            "covered; by *.t.test",
        ),
        "127.0.0.11": AddressRow(
            "127.0.0.11",
            "unreachable (connect)",
            "—",
            "unreachable",
            "could not check",
            "covered; by *.t.test",
        ),
    }
    assert any(key.startswith("starttls.addresses[127.0.0.10]") for key, _ in host.rows)  # full detail kept


def test_text_is_compact_and_states_the_share_once() -> None:
    text = render_text(_assessment(), color=False, width=140, today=TODAY)
    assert "MX mx1.t.test  (preference 5; DNSSEC A secure; DNSSEC AAAA bogus)" in text
    assert "tls_sweep" not in text and "starttls.addresses" not in text
    # a reason that states the share already gets no second one; one that does not gets it once
    (mta_sts,) = [line for line in text.splitlines() if line.startswith("✔ mta-sts  ")]
    assert mta_sts.endswith("covers all 1 MX host(s) (100% of MX hosts)")
    (x509,) = [line for line in text.splitlines() if line.startswith("✘ x509  ")]
    assert x509.endswith("present a valid certificate (0%; MECSA needs 80%)") and "of MX hosts" not in x509


def test_html_folds_the_full_detail_under_the_compact_table() -> None:
    page = normalise(render_html(_assessment(), today=TODAY), _assessment())
    table, folded = page.split("<summary>All details</summary>")
    assert "<td>name_mismatch, expired; san.t.test; -11 days left</td>" in table
    assert "<td>offered; TLSv1.2; ECDHE-ECDSA-AES128-SHA</td>" in table
    assert "starttls.addresses[127.0.0.10].tls_sweep.versions[TLSv1].outcome</th><td>accepted" in folded
    assert "x509.addresses[127.0.0.10].certificate.dns_names</th><td>san.t.test, x.t.test" in folded
