"""The DANE / MTA-STS enforcement verdicts (pure) and the receiver's zone records."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import dns.zone

from mecsa.harden.records import spki_sha256
from mecsa.mailmode.addresses import AddressKind
from mecsa.mailmode.connections import ConnectionAttempt
from mecsa.mailmode.enforcement import (
    Arrival,
    Enforcement,
    ReceiverZone,
    Trap,
    judge,
    receiver_zone_records,
)
from tests.unit.mailmode.certs import write_self_signed

T0 = dt.datetime(2024, 5, 1, 12, 0, tzinfo=dt.UTC)
WINDOW = dt.timedelta(minutes=30)
TOKEN = "abcdefgh12345678"
ASKED = (f"{TOKEN}@receiver.test", f"{TOKEN}@dane-trap.receiver.test", f"{TOKEN}@sts-trap.receiver.test")


def arrival(kind: AddressKind, minutes: float = 0, named: tuple[str, ...] = ASKED) -> Arrival:
    domain = {
        AddressKind.DANE_TRAP: "dane-trap.receiver.test",
        AddressKind.STS_TRAP: "sts-trap.receiver.test",
    }
    rcpt = f"{TOKEN}@{domain.get(kind, 'receiver.test')}"
    when = T0 + dt.timedelta(minutes=minutes)
    return Arrival(rcpt, kind, when, "127.0.0.10", "mail.sender.test", "TLSv1.3", named)


def test_delivery_to_the_dane_trap_means_no_enforcement() -> None:
    arrivals = [arrival(AddressKind.CONTROL), arrival(AddressKind.DANE_TRAP, 0.1)]
    result = judge(Trap.DANE, arrivals, T0 + dt.timedelta(minutes=1), WINDOW)
    assert (result.verdict, result.label) == (Enforcement.DOES_NOT_ENFORCE, "does not enforce DANE")
    assert result.evidence == (
        f"{TOKEN}@dane-trap.receiver.test at 2024-05-01 12:00:06Z "
        "from mail.sender.test [127.0.0.10] over TLSv1.3",
    )


def test_empty_trap_after_the_window_means_enforcement() -> None:
    arrivals = [arrival(AddressKind.CONTROL), arrival(AddressKind.DANE_TRAP, 0.1)]
    result = judge(Trap.MTA_STS, arrivals, T0 + dt.timedelta(minutes=31), WINDOW)
    assert (result.verdict, result.label) == (Enforcement.ENFORCES, "enforces MTA-STS")
    assert result.evidence[0].startswith(f"control: {TOKEN}@receiver.test at 2024-05-01 12:00:00Z")


def test_empty_trap_within_the_window_is_unknown_yet() -> None:
    result = judge(Trap.DANE, [arrival(AddressKind.CONTROL)], T0 + dt.timedelta(minutes=29), WINDOW)
    assert (result.verdict, result.label) == (Enforcement.UNKNOWN_YET, "unknown yet")
    assert "12:30:00Z" in result.reason


def test_no_control_or_trap_not_named_is_unknown_yet() -> None:
    late = T0 + dt.timedelta(days=1)
    assert judge(Trap.DANE, [], late, WINDOW).verdict is Enforcement.UNKNOWN_YET
    unasked = [arrival(AddressKind.CONTROL, named=(f"{TOKEN}@receiver.test",))]
    result = judge(Trap.DANE, unasked, late, WINDOW)
    assert result.verdict is Enforcement.UNKNOWN_YET and "never asked" in result.reason


def test_late_trap_delivery_overrides_an_earlier_enforces() -> None:
    arrivals = [arrival(AddressKind.CONTROL), arrival(AddressKind.DANE_TRAP, 120)]
    assert (
        judge(Trap.DANE, arrivals, T0 + dt.timedelta(hours=3), WINDOW).verdict is Enforcement.DOES_NOT_ENFORCE
    )


def test_zone_records_have_a_matching_and_a_never_matching_tlsa(tmp_path: Path) -> None:
    _, _, cert = write_self_signed(tmp_path, "mx.receiver.test")
    records = receiver_zone_records(ReceiverZone("receiver.test", ("127.0.0.20",)), cert)
    by_owner = {(r.owner, r.rtype): r.value for r in records.records}
    real = spki_sha256(cert)
    assert by_owner[("_25._tcp.mx.receiver.test", "TLSA")] == f"3 1 1 {real}"
    wrong = by_owner[("_25._tcp.mx.dane-trap.receiver.test", "TLSA")].split()[3]
    assert len(wrong) == 64 and all(int(a, 16) ^ int(b, 16) == 15 for a, b in zip(wrong, real, strict=True))
    assert by_owner[("dane-trap.receiver.test", "MX")] == "10 mx.dane-trap.receiver.test."
    assert by_owner[("sts-trap.receiver.test", "MX")] == "10 mx.sts-trap.receiver.test."
    assert ("_25._tcp.mx.sts-trap.receiver.test", "TLSA") not in by_owner  # DANE would take precedence
    assert "mode: enforce" in records.sts_trap.policy
    assert "mx: not-the-mx.sts-trap.receiver.test" in records.sts_trap.policy
    assert "mx.sts-trap" not in records.sts_trap.policy.replace("not-the-mx.sts-trap", "")
    assert by_owner[("receiver.test", "TXT")] == "v=spf1 ip4:127.0.0.20 -all"
    # the text is a loadable zone
    text = (
        "$ORIGIN receiver.test.\n@ 300 IN SOA ns hostmaster 1 300 300 300 300\n@ IN NS ns\n"
        + records.zone_text()
    )
    zone = dns.zone.from_text(text, relativize=False, check_origin=False)
    assert zone.get_rdataset("mx.dane-trap.receiver.test.", "A") is not None


def _attempt(sni: str | None, commands: tuple[str, ...], minutes: float = 0.05) -> ConnectionAttempt:
    when = T0 + dt.timedelta(minutes=minutes)
    tls = "TLSv1.3" if "STARTTLS" in commands else None
    return ConnectionAttempt(
        "127.0.0.10", "127.0.0.20", when, when, "mail.sender.test", commands, tls is not None, tls, sni
    )


def test_dane_enforces_at_once_on_a_connection_that_quit_after_seeing_the_trap_certificate() -> None:
    aborted = _attempt("mx.dane-trap.receiver.test", ("EHLO", "STARTTLS", "EHLO", "QUIT"))
    now = T0 + dt.timedelta(minutes=2)
    result = judge(Trap.DANE, [arrival(AddressKind.CONTROL)], now, WINDOW, [aborted])
    assert (result.verdict, result.label) == (Enforcement.ENFORCES, "enforces DANE")
    assert "quit without sending" in result.reason
    assert result.evidence[1].startswith("connection from mail.sender.test [127.0.0.10] to 127.0.0.20")
    assert "SNI mx.dane-trap.receiver.test" in result.evidence[1]
    assert result.to_json()["elapsed_minutes"] == 2.0


def test_dane_empty_trap_after_the_window_without_a_trap_connection_is_not_enforcement() -> None:
    # the old rule read mere absence as "enforces DANE": a trap that failed for any reason passed
    late = T0 + dt.timedelta(minutes=31)
    elsewhere = _attempt("mx.receiver.test", ("EHLO", "STARTTLS", "EHLO", "QUIT"))
    result = judge(Trap.DANE, [arrival(AddressKind.CONTROL)], late, WINDOW, [elsewhere])
    assert result.verdict is Enforcement.UNKNOWN_YET
    assert "failed for another reason" in result.reason


def test_a_connection_that_never_started_tls_is_no_dane_evidence() -> None:
    plain = _attempt("mx.dane-trap.receiver.test", ("EHLO", "QUIT"))
    result = judge(Trap.DANE, [arrival(AddressKind.CONTROL)], T0 + dt.timedelta(minutes=40), WINDOW, [plain])
    assert result.verdict is Enforcement.UNKNOWN_YET


def test_the_open_window_says_how_long_has_passed_and_what_is_pending() -> None:
    result = judge(Trap.MTA_STS, [arrival(AddressKind.CONTROL)], T0 + dt.timedelta(minutes=10), WINDOW)
    data = result.to_json()
    assert (data["elapsed_minutes"], data["window_minutes"]) == (10.0, 30.0)
    assert data["pending"] == "MTA-STS trap: 20 min of the window left"


def test_mta_sts_is_not_enforcement_when_the_sender_connected_to_the_excluded_mx() -> None:
    seen = _attempt(None, ("EHLO", "QUIT"))
    result = judge(
        Trap.MTA_STS,
        [arrival(AddressKind.CONTROL)],
        T0 + dt.timedelta(minutes=31),
        WINDOW,
        [seen],
        frozenset({"127.0.0.20"}),
    )
    assert result.verdict is Enforcement.UNKNOWN_YET and "another reason" in result.reason
