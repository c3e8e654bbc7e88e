"""Settings: each bad input gives one clear error; defaults are the documented ones."""

from __future__ import annotations

import datetime as dt
import tomllib
from pathlib import Path

import pytest

from mecsa.harden.settings import SettingsError, default_selector, load_settings, settings_from_mapping

from .conftest import FIXTURES, base_settings, make_settings

EXAMPLE = Path(__file__).parents[3] / "src" / "mecsa" / "harden" / "example.toml"


def test_default_selector_comes_from_the_date() -> None:
    assert default_selector(dt.date(2026, 11, 3)) == "s202611"
    raw = base_settings()
    del raw["selector"]
    assert settings_from_mapping(raw, today=dt.date(2027, 1, 31)).selector == "s202701"


def test_defaults() -> None:
    s = make_settings(dkim_ed25519=False)
    assert s.dmarc_rua == "dmarc_reports@example.test"
    assert s.tls_rpt_rua == s.dmarc_rua
    assert s.dmarc_policy == "reject" and s.dmarc_reject_failures
    assert s.spf_mechanisms == ("mx",)
    assert s.dmarc_reports_to == "root"
    assert s.selectors == ("s202611",)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"domain": "exa mple.test"}, "domain: .* invalid label"),
        ({"domain": "192.0.2.1"}, "domain: .* is an IP address"),
        ({"mx_host": ""}, "missing setting 'mx_host'"),
        ({"ipv4": ["192.0.2.300"]}, "ipv4: '192.0.2.300' is not an IP address"),
        ({"ipv4": ["2001:db8::1"]}, "ipv4: .* is an IPv6 address"),
        ({"ipv4": [], "ipv6": []}, "give the MX's public address"),
        ({"key": str(FIXTURES / "tls-next-key.pem")}, "does not match the first certificate"),
        ({"key": str(FIXTURES / "nope.pem")}, "key: cannot read"),
        ({"cert": str(FIXTURES / "tls-key.pem")}, "cert: .* no readable PEM certificate"),
        ({"mx_host": "mx2.example.test"}, "not valid for mx2.example.test"),
        ({"selector": "bad_selector!"}, "selector: 'bad_selector!' is not one or more DNS labels"),
        ({"dmarc_rua": "not-an-address"}, "dmarc_rua: 'not-an-address' is not a mail address"),
        ({"mynetworks": ["192.0.2.1/24"]}, "mynetworks: '192.0.2.1/24' is not a network"),
        ({"postmaster": "Root User"}, "postmaster: 'Root User' is neither"),
        ({"dmarc_policy": "none"}, "dmarc_policy must be one of reject, quarantine"),
        ({"spf_mechanisms": ["mx", "+all"]}, "leave out 'all'"),
        ({"spf_mechanisms": ["bogus"]}, "'bogus' is not an SPF mechanism"),
        ({"mta_sts_max_age": 60}, "mta_sts_max_age must be seconds"),
        ({"colour": "blue"}, "unknown setting\\(s\\): colour"),
        ({"resolver": "bind"}, "resolver must be one of unbound, existing"),
    ],
)
def test_bad_input_gives_a_clear_one_line_error(change: dict[str, object], message: str) -> None:
    with pytest.raises(SettingsError, match=message) as caught:
        make_settings(**change)
    assert "\n" not in str(caught.value)


def test_values_are_normalised() -> None:
    s = make_settings(
        domain="Example.TEST.",
        ipv6=["2001:DB8:0::25"],
        dmarc_rua="mailto:Reports@Example.test",
        selector="S1",
    )
    assert (s.domain, s.ipv6, s.dmarc_rua, s.selector) == (
        "example.test",
        ("2001:db8::25",),
        "Reports@example.test",
        "s1",
    )


def test_toml_file_and_flags_flags_win(tmp_path: Path) -> None:
    config = tmp_path / "harden.toml"
    config.write_text(
        'domain = "example.test"\nmx_host = "mx.example.test"\nipv4 = "127.0.0.25"\n'
        f'cert = "{FIXTURES / "tls-cert.pem"}"\nkey = "{FIXTURES / "tls-key.pem"}"\n'
        'postmaster = "admin"\nselector = "s1"\nmynetworks = ["192.0.2.0/24"]\n'
    )
    s = load_settings(config, {"selector": "s2", "ipv6": None, "mynetworks": []})
    assert s.selector == "s2" and s.ipv4 == ("127.0.0.25",) and s.mynetworks == ("192.0.2.0/24",)


def test_broken_toml_is_a_settings_error(tmp_path: Path) -> None:
    config = tmp_path / "bad.toml"
    config.write_text("domain = \n")
    with pytest.raises(SettingsError, match="is not valid TOML"):
        load_settings(config)


def test_the_example_file_uses_only_known_keys() -> None:
    raw = tomllib.loads(EXAMPLE.read_text())
    raw.update(cert=str(FIXTURES / "tls-cert.pem"), key=str(FIXTURES / "tls-key.pem"))
    raw.update(domain="example.test", mx_host="mx.example.test")
    s = settings_from_mapping(raw)
    assert s.ipv6 == ("2001:db8::25",) and s.postmaster == "admin"
