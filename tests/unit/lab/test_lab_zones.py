"""The lab's one zone builder: TXT splitting, zone heads, and the senders' domains."""

from __future__ import annotations

import re

import dns.rdata
import dns.rdataclass
import dns.rdatatype
import dns.zone
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from mecsa.lab.plan import EXTRA_SENDERS, HARDENED, NS_HOST, SENDERS, SPF_ELSEWHERE
from mecsa.lab.zones import sender_zone, txt, zone_text


def _strings(rdata: str) -> list[bytes]:
    """The character-strings of TXT presentation text, as a DNS library reads them."""
    parsed = dns.rdata.from_text(dns.rdataclass.IN, dns.rdatatype.TXT, rdata)
    return list(parsed.strings)  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    "text",
    [
        "é" * 200,  # 400 bytes: byte 255 is the middle of an "é"
        "a" * 254 + "€" + "b" * 10,  # a 3-byte character across the 255-byte boundary
        "v=DMARC1; p=reject; rua=mailto:" + "ü" * 150,
    ],
)
def test_txt_never_cuts_a_utf8_character_in_two(text: str) -> None:
    strings = _strings(txt(text))
    assert len(strings) >= 2
    assert all(len(s) <= 255 for s in strings)
    assert [s.decode("utf-8") for s in strings]  # each string is whole UTF-8 on its own
    assert b"".join(strings).decode("utf-8") == text


def test_txt_keeps_a_short_text_in_one_string_and_escapes_quotes() -> None:
    assert txt('v=spf1 "quoted" \\ -all') == '"v=spf1 \\"quoted\\" \\\\ -all"'
    assert _strings(txt("")) == [b""]
    assert _strings(txt("x" * 255)) == [b"x" * 255]
    assert _strings(txt("x" * 256)) == [b"x" * 255, b"x"]


def test_zone_text_heads_a_child_zone_and_the_root_alike() -> None:
    child = zone_text("top.test", ["@ MX 10 mx1.top.test."]).splitlines()
    assert child == [
        "$ORIGIN top.test.",
        "$TTL 300",
        f"@ SOA {NS_HOST}. hostmaster.{NS_HOST}. 1 3600 600 86400 300",
        f"@ NS {NS_HOST}.",
        "@ MX 10 mx1.top.test.",
    ]
    assert zone_text("", []).splitlines()[0] == "$ORIGIN ."


def _key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=1024)  # small: only its text is used


def _records(text: str, origin: str) -> dict[tuple[str, str], list[str]]:
    zone = dns.zone.from_text(text, origin=origin, relativize=False)
    out: dict[tuple[str, str], list[str]] = {}
    for name, node in zone.nodes.items():
        for rdataset in node.rdatasets:
            key = (name.to_text(), dns.rdatatype.to_text(rdataset.rdtype))
            out[key] = sorted(r.to_text() for r in rdataset)
    return out


def test_sender_zone_of_the_dane_sender_publishes_what_its_mail_passes_with() -> None:
    records = _records(sender_zone(HARDENED, _key()), HARDENED.domain)
    d = f"{HARDENED.domain}."
    assert records[(d, "MX")] == [f"10 {HARDENED.host}."]
    assert records[(f"{HARDENED.host}.", "A")] == [HARDENED.address]
    assert records[(d, "TXT")] == [f'"v=spf1 ip4:{HARDENED.address} -all"']
    assert records[(f"_dmarc.{d}", "TXT")] == [
        f'"v=DMARC1; p=reject; sp=reject; np=reject; rua=mailto:postmaster@{HARDENED.domain}"'
    ]
    [dkim] = records[(f"lab._domainkey.{d}", "TXT")]
    assert re.fullmatch(r'"v=DKIM1; k=rsa; p=[A-Za-z0-9+/=]+"', dkim.replace('" "', ""))


def test_sender_zone_of_the_sender_not_in_its_spf_names_another_address() -> None:
    sender = SENDERS["not-in-spf"]
    records = _records(sender_zone(sender, _key()), sender.domain)
    assert records[(f"{sender.domain}.", "TXT")] == [f'"v=spf1 ip4:{SPF_ELSEWHERE} -all"']
    assert sender.address != SPF_ELSEWHERE
    assert records[(f"{sender.host}.", "A")] == [sender.address]


def test_every_sender_has_its_own_node_domain_and_address() -> None:
    senders = (HARDENED, *EXTRA_SENDERS)
    assert len({s.node for s in senders}) == len({s.domain for s in senders}) == len(senders)
    assert len({s.address for s in senders}) == len(senders)
