"""The compact per-MX table picks the real detail keys of the mx, starttls, x509, dane and mta-sts checks."""

from __future__ import annotations

from mecsa.model import Assessment, CheckResult, Finding, ProtocolVerdict, Status, VerdictStatus
from mecsa.report.html import render_html
from mecsa.report.text import render_text
from mecsa.report.view import AddressRow, build_view
from tests.unit.report.samples import RESOLVER, TODAY

HOST = "mx1.t.test"


def _assessment() -> Assessment:
    mx = CheckResult(
        "mx",
        (),
        (),
        {
            "hosts": [
                {
                    "name": HOST,
                    "preference": 5,
                    "addresses": ["127.0.0.10", "127.0.0.11"],
                    "dnssec": {"A": "secure", "AAAA": "insecure"},
                }
            ]
        },
    )
    sweep = {
        "versions": [
            {"label": "TLSv1", "outcome": "accepted"},
            {"label": "TLSv1.2", "outcome": "accepted"},
            {"label": "TLSv1.3", "outcome": "refused"},
        ]
    }
    ok = {"connected": True, "starttls_offered": True, "tls": {"version": "TLSv1.2", "cipher": "AES128-SHA"}}
    starttls = CheckResult(
        "starttls",
        (),
        (),
        {
            "hosts": [
                {
                    "name": HOST,
                    "addresses": [
                        {"address": "127.0.0.10", "smtp": ok, "tls_sweep": sweep},
                        {"address": "127.0.0.11", "smtp": {"connected": False, "failed_stage": "connect"}},
                    ],
                }
            ]
        },
    )
    expired = Finding("x509.expired", Status.FAIL, "x509", "expired", subject=f"{HOST} 127.0.0.10")
    x509 = CheckResult(
        "x509",
        (expired,),
        (),
        {
            "hosts": [
                {
                    "name": HOST,
                    "addresses": [
                        {
                            "address": "127.0.0.10",
                            "outcome": "fail",
                            "days_left": -3,
                            "certificate": {
                                "subject": "CN=cn.t.test",
                                "dns_names": ["san.t.test", "x.t.test"],
                            },
                        },
                    ],
                }
            ]
        },
    )
    dane = CheckResult(
        "dane",
        (),
        (),
        {
            "hosts": [
                {
                    "name": HOST,
                    "addresses": [
                        {"address": "127.0.0.10", "dane": "no_match"},
                        {"address": "127.0.0.11", "dane": "error"},
                    ],
                }
            ]
        },
    )
    sts = ProtocolVerdict(
        "mta-sts",
        VerdictStatus.PASS,
        "covers 1 of 1 (100%; MECSA needs 80%)",
        share=1.0,
        details={"mx": [{"host": HOST, "covered": True, "pattern": "*.t.test"}]},
    )
    return Assessment(
        "t.test", "0.1.0", (mx, starttls, x509, dane, CheckResult("mta-sts", (), (sts,))), RESOLVER, 0.1
    )


def test_one_compact_row_per_address_from_the_real_detail_keys() -> None:
    (host,) = build_view(_assessment(), today=TODAY).hosts
    assert host.facts == (("preference", "5"), ("DNSSEC A", "secure"), ("DNSSEC AAAA", "insecure"))
    assert host.addresses == (
        AddressRow(
            "127.0.0.10",
            "offered; TLSv1.2; AES128-SHA",
            "1.0, 1.2",
            "expired; san.t.test; -3 days left",
            "no match",
            "covered; by *.t.test",
        ),
        AddressRow(
            "127.0.0.11", "unreachable (connect)", "—", "—", "could not check", "covered; by *.t.test"
        ),
    )
    assert any(key.startswith("starttls.addresses[127.0.0.10]") for key, _ in host.rows)  # full detail kept


def test_text_is_compact_and_states_the_share_once() -> None:
    text = render_text(_assessment(), today=TODAY)
    assert "MX mx1.t.test  (preference 5; DNSSEC A secure; DNSSEC AAAA insecure)" in text
    assert "tls_sweep" not in text and "starttls.addresses" not in text
    assert "covers 1 of 1 (100%; MECSA needs 80%)" in text
    assert "of MX hosts" not in text


def test_html_folds_the_full_detail_under_the_compact_table() -> None:
    page = render_html(_assessment(), today=TODAY)
    table, folded = page.split("<summary>All details</summary>")
    assert "<td>expired; san.t.test; -3 days left</td>" in table
    assert "starttls.addresses[127.0.0.10].tls_sweep.versions[TLSv1].outcome" in folded
