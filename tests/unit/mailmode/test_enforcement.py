"""The DANE / MTA-STS enforcement verdicts (pure) and the receiver's zone records."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import dns.zone

from mecsa.harden.records import spki_sha256
from mecsa.mailmode.addresses import AddressKind
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
