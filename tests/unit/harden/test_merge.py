"""Merging into files that hold other people's settings: append, never replace; change nothing twice."""

from __future__ import annotations

from mecsa.harden.conffile import main_cf_values, merge_aliases, merge_main_cf, merge_master_cf
from mecsa.harden.layout import Layout
from mecsa.harden.postfix import HEADER, main_cf_settings, master_cf_services, recipient_restrictions
from mecsa.harden.settings import HardenSettings

POLICY = "check_policy_service unix:private/policy-spf"


def _merge(settings: HardenSettings, text: str) -> str:
    return merge_main_cf(text, main_cf_settings(settings, Layout(), main_cf_values(text)), HEADER)


def test_milters_are_appended_after_existing_ones_dkim_then_dmarc(settings: HardenSettings) -> None:
    text = "# my milters\nsmtpd_milters = unix:/run/clamav/clamav-milter.ctl\nnon_smtpd_milters =\n"
    merged = _merge(settings, text)
    values = main_cf_values(merged)
    assert values["smtpd_milters"] == (
        "unix:/run/clamav/clamav-milter.ctl, inet:127.0.0.1:8891, inet:127.0.0.1:8893"
    )
    assert values["non_smtpd_milters"] == "inet:127.0.0.1:8891, inet:127.0.0.1:8893"
    assert merged.startswith("# my milters\nsmtpd_milters = unix:/run/clamav/clamav-milter.ctl, inet:")


def test_merging_twice_changes_nothing_and_does_not_append_twice(settings: HardenSettings) -> None:
    once = _merge(settings, "smtpd_milters = inet:127.0.0.1:8891\n")
    assert main_cf_values(once)["smtpd_milters"] == "inet:127.0.0.1:8891, inet:127.0.0.1:8893"
    assert _merge(settings, once) == once
    assert once.count(HEADER) == 1


def test_comments_order_and_unmanaged_continued_settings_survive(settings: HardenSettings) -> None:
    text = (
        "# top comment\n"
        "smtpd_banner = $myhostname ESMTP\n"
        "header_checks = regexp:/etc/postfix/h1\n"
        "    regexp:/etc/postfix/h2\n"
        "# between\n"
        "myhostname = old.example.test\n"
        "relayhost =\n"
    )
    merged = _merge(settings, text)
    assert merged.startswith(
        "# top comment\nsmtpd_banner = $myhostname ESMTP\nheader_checks = regexp:/etc/postfix/h1\n"
        "    regexp:/etc/postfix/h2\n# between\nmyhostname = mx.example.test\nrelayhost =\n"
    )


def test_a_value_that_only_differs_in_whitespace_is_left_as_written(settings: HardenSettings) -> None:
    text = "smtpd_tls_security_level   =   may\n"
    assert _merge(settings, text).startswith(text)


def test_the_last_definition_is_the_one_replaced(settings: HardenSettings) -> None:
    merged = _merge(settings, "myhostname = a\nmyhostname = b\n")
    assert merged.startswith("myhostname = a\nmyhostname = mx.example.test\n")
    assert main_cf_values(merged)["myhostname"] == "mx.example.test"


def test_spf_policy_goes_right_after_reject_unauth_destination() -> None:
    existing = (
        "permit_mynetworks, permit_sasl_authenticated, reject_unauth_destination, reject_rbl_client zen.x"
    )
    assert recipient_restrictions(existing) == (
        f"permit_mynetworks, permit_sasl_authenticated, reject_unauth_destination, {POLICY}, "
        "reject_rbl_client zen.x"
    )
    assert recipient_restrictions(recipient_restrictions(existing)) == recipient_restrictions(existing)


def test_spf_policy_brings_the_relay_guard_when_missing() -> None:
    assert recipient_restrictions("") == f"permit_mynetworks, reject_unauth_destination, {POLICY}"
    assert recipient_restrictions("permit_mynetworks reject_non_fqdn_sender") == (
        f"permit_mynetworks, reject_unauth_destination, {POLICY}, reject_non_fqdn_sender"
    )


def test_master_cf_gets_the_policy_service_once_and_keeps_the_rest() -> None:
    text = "smtp      inet  n       -       y       -       -       smtpd\n  -o syslog_name=x\n"
    services = master_cf_services(Layout())
    once = merge_master_cf(text, services)
    assert once.startswith(text)
    assert once.count("policy-spf  unix") == 1
    assert merge_master_cf(once, services) == once


def test_master_cf_replaces_an_older_policy_service_entry() -> None:
    old = "policy-spf unix - n n - - spawn\n  user=nobody argv=/usr/bin/policyd-spf\nlast unix - - - - - x\n"
    merged = merge_master_cf(old, master_cf_services(Layout()))
    assert "user=nobody" not in merged and merged.endswith("last unix - - - - - x\n")
    assert "user=policyd-spf argv=/usr/bin/policyd-spf" in merged


def test_aliases_are_set_and_others_kept() -> None:
    text = "# aliases\npostmaster:    root\nroot: alice\n"
    merged = merge_aliases(text, {"postmaster": "admin", "dmarc_reports": "admin"})
    assert merged == "# aliases\npostmaster: admin\nroot: alice\ndmarc_reports: admin\n"
    assert merge_aliases(merged, {"postmaster": "admin", "dmarc_reports": "admin"}) == merged
