"""`mecsa.dns.reply.parse_reply` reads every reply to the message dnspython's `from_wire` reads,
and fails where it fails: signed answers and denials from the zone server, hand-made oddities,
and many mutations of both (issue 20: the quicker reader must not change what a reply says)."""

from __future__ import annotations

import random
import struct

import dns.edns
import dns.flags
import dns.message
import dns.name
import dns.opcode
import dns.rcode
import dns.rdatatype
import dns.rrset
import pytest

from mecsa.dns import names
from mecsa.dns import reply as fast
from mecsa.dns.names import name_from_text, name_of_labels, name_text
from mecsa.dns.reply import parse_reply
from mecsa.dns.zoneserver import ZoneData, answer
from tests.unit.dns.world import World

QUESTIONS = [
    ("top.test.", "MX"),
    ("top.test.", "TXT"),
    ("top.test.", "DNSKEY"),
    ("top.test.", "SOA"),
    ("top.test.", "NS"),
    ("alias.top.test.", "A"),  # a CNAME to follow
    ("Alias.TOP.test.", "TLSA"),  # mixed case, a CNAME and no data behind it
    ("_25._tcp.mx1.top.test.", "TLSA"),
    ("_25._tcp.mx2.top.test.", "TLSA"),  # wildcard
    ("nope.top.test.", "TXT"),  # NXDOMAIN with NSEC
    ("mx1.top.test.", "AAAA"),  # NODATA with NSEC
    ("nope.n3.test.", "TXT"),  # NXDOMAIN with NSEC3
    ("mx1.n3.test.", "AAAA"),
    ("top.test.", "DS"),
    ("weak.test.", "DS"),  # insecure delegation
    ("_dmarc.weak.test.", "TXT"),
    ("test.", "DNSKEY"),
    (".", "SOA"),
    ("elsewhere.example.", "A"),
]


def _outcome(read: object, wire: bytes) -> tuple[str, object]:
    try:
        message = read(wire)  # type: ignore[operator]
    except Exception as exc:  # the kind of failure is what is compared
        return "raises", type(exc)
    assert isinstance(message, dns.message.Message)
    return "reads", _portrait(message)


def _portrait(message: dns.message.Message) -> object:
    """Everything a reader decides, including TTLs and the exact octets of every name."""

    def section(rrsets: list[dns.rrset.RRset]) -> list[object]:
        return [
            (
                rrset.name.labels,
                (type(rrset.rdclass), type(rrset.rdtype), type(rrset.covers), rrset.deleting),
                rrset.rdclass,
                rrset.rdtype,
                rrset.covers,
                rrset.ttl,
                sorted(rd.to_wire() for rd in rrset),
                [rd.to_text() for rd in rrset],
            )
            for rrset in rrsets
        ]

    def place(rrset: dns.rrset.RRset) -> tuple[int, int]:
        return next((n, i) for n, s in enumerate(message.sections) for i, r in enumerate(s) if r is rrset)

    index = sorted(
        (repr(key), tuple(type(part) for part in key), place(rrset))
        for key, rrset in (message.index or {}).items()
    )
    opt = message.opt
    return (
        index,
        type(message),
        message.id,
        int(message.flags),
        message.rcode(),
        message.edns,
        message.ednsflags,
        message.payload,
        [o.to_wire() for o in message.options],
        None if opt is None else (opt.name.labels, opt.ttl),
        [section(s) for s in message.sections],
        message.wire,
        message.to_text(),
    )


def _assert_same(wire: bytes) -> None:
    theirs = _outcome(lambda w: dns.message.from_wire(w, raise_on_truncation=True), wire)
    assert _outcome(parse_reply, wire) == theirs
    if theirs[0] == "reads":
        ours, reference = parse_reply(wire), dns.message.from_wire(wire)
        # Set semantics hold (each rdata is found by its hash), and the messages compare equal.
        assert ours == reference
        for number, section in enumerate(ours.sections):
            for rrset in section:
                assert all(rd in rrset for rd in rrset)
                assert rrset in reference.sections[number]


def _served_replies() -> list[bytes]:
    world = World()
    data = ZoneData.from_texts(world.zones(), secure=["top.test.", "n3.test.", "test.", "."])
    out = []
    for name, rdtype in QUESTIONS:
        for dnssec in (True, False):
            query = dns.message.make_query(name, rdtype, use_edns=0, payload=1232, want_dnssec=dnssec)
            reply = answer(data, query)
            assert reply is not None
            out.append(reply.to_wire())
    return out


SERVED = _served_replies()


def _made(rcode: dns.rcode.Rcode = dns.rcode.NOERROR, **sections: list[str]) -> dns.message.Message:
    message = dns.message.make_response(
        dns.message.make_query("x.example.", "A", use_edns=0, payload=1232, want_dnssec=True)
    )
    message.set_rcode(rcode)
    for where, lines in sections.items():
        target = getattr(message, where)
        for line in lines:
            name, ttl, rdtype, text = line.split(" ", 3)
            target.append(dns.rrset.from_text(name, int(ttl), "IN", rdtype, text))
    return message


def _handmade() -> list[bytes]:
    out = []
    duplicate = _made(answer=["x.example. 300 A 192.0.2.1", "X.example. 60 A 192.0.2.1"]).to_wire()
    out.append(duplicate)
    soa = "example. 300 SOA ns.example. hostmaster.example. 1 2 3 4 5"
    out.append(_made(dns.rcode.NXDOMAIN, authority=[soa]).to_wire())
    out.append(_made(answer=["x.example. 300 CNAME y.example.", "y.example. 30 A 192.0.2.7"]).to_wire())
    out.append(_made(answer=['x.example. 300 TXT "v=spf1" " -all" "é"']).to_wire())
    ede = _made(dns.rcode.SERVFAIL)
    ede.use_edns(0, dns.flags.DO, 1232, options=[dns.edns.EDEOption(dns.edns.EDECode.DNSSEC_BOGUS, "bad")])
    out.append(ede.to_wire())
    big_ttl = bytearray(_made(answer=["x.example. 300 A 192.0.2.1"]).to_wire())
    ttl_at = big_ttl.index(b"\x00\x01\x00\x01\x00\x00\x01\x2c", 12 + 14) + 4
    big_ttl[ttl_at : ttl_at + 4] = b"\xff\xff\xff\xff"  # TTL over 2^31-1 reads as 0 (RFC 2181 §8)
    out.append(bytes(big_ttl))
    truncated = _made(answer=["x.example. 300 A 192.0.2.1"])
    truncated.flags |= dns.flags.TC
    out.append(truncated.to_wire())
    notify = _made()
    notify.set_opcode(dns.opcode.NOTIFY)
    out.append(notify.to_wire())
    plain = _made(answer=["x.example. 300 A 192.0.2.1"]).to_wire()
    out.append(plain + b"\x00")  # trailing junk
    out.append(plain[:-3])  # cut short
    out.append(plain[:11])  # shorter than a header
    # A forward compression pointer, a pointer to itself, a reserved label type, an OPT in the
    # answer section, and a compressed NSEC next name (RFC 3597 §4: not to be decompressed).
    question_end = 12 + len(b"\x01x\x07example\x00") + 4
    header = struct.pack("!HHHHHH", 7, 0x8180, 1, 1, 0, 0)
    question = b"\x01x\x07example\x00\x00\x01\x00\x01"
    a_rdata = b"\x00\x01\x00\x01\x00\x00\x00\x3c\x00\x04\xc0\x00\x02\x01"
    out.append(header + question + b"\xc0" + bytes((question_end + 2,)) + a_rdata)
    out.append(header + question + b"\xc0" + bytes((question_end,)) + a_rdata)
    out.append(header + question + b"\x41x\x00" + a_rdata)
    out.append(header + question + b"\xc0\x0c" + b"\x00\x29\x04\xd0\x00\x00\x00\x00\x00\x00")
    nsec_rdata = b"\xc0\x0c\x00\x06\x40\x00\x00\x00\x00\x03"
    nsec = b"\xc0\x0c\x00\x2f\x00\x01\x00\x00\x00\x3c" + struct.pack("!H", len(nsec_rdata)) + nsec_rdata
    out.append(header + question + nsec)
    opt_header = struct.pack("!HHHHHH", 7, 0x8180, 1, 0, 0, 1)
    opt_rr = b"\x00\x29\x04\xd0\x00\x00\x00\x00\x00\x00"
    out.append(opt_header + question + b"\x01x\x00" + opt_rr)  # an OPT not owned by the root
    out.append(opt_header + question + b"\x00" + opt_rr)  # the same, owned by the root: read
    twice = struct.pack("!HHHHHH", 7, 0x8180, 1, 0, 0, 2)
    out.append(twice + question + b"\x00" + opt_rr + b"\x00" + opt_rr)  # two OPTs
    return out


HANDMADE = _handmade()


@pytest.mark.parametrize("wire", SERVED + HANDMADE)
def test_reads_what_dnspython_reads(wire: bytes) -> None:
    _assert_same(wire)


def test_the_quick_path_is_the_one_taken_for_plain_replies() -> None:
    # Not vacuous: the zone server's replies are read by the quick reader, not handed back.
    assert all(fast._read(wire) is not None for wire in SERVED)


def test_mutated_replies_read_or_fail_as_in_dnspython() -> None:
    shuffle = random.Random(20)
    for wire in SERVED + HANDMADE:
        for _ in range(40):
            mutated = bytearray(wire)
            for _ in range(shuffle.randint(1, 3)):
                at = shuffle.randrange(len(mutated))
                mutated[at] = shuffle.choice((0, 1, 0x3F, 0x40, 0xC0, 0xFF, shuffle.randrange(256)))
            _assert_same(bytes(mutated))
        for cut in range(12, len(wire), 7):
            _assert_same(wire[:cut])


def test_the_name_cache_is_keyed_by_the_exact_octets() -> None:
    lower = name_of_labels((b"mx", b"example", b""))
    upper = name_of_labels((b"MX", b"example", b""))
    assert lower == upper  # DNS names compare without case, ...
    assert lower.labels == (b"mx", b"example", b"")  # ... but each keeps its own octets
    assert upper.labels == (b"MX", b"example", b"")
    assert name_of_labels((b"mx", b"example", b"")) is lower
    assert name_of_labels((b"mx", b"example", b"test", b"")) != lower


def test_the_name_cache_stays_bounded() -> None:
    for n in range(names.MAX_CACHED + 10):
        name_of_labels((f"n{n}".encode(), b""))
    assert len(names._by_labels) <= names.MAX_CACHED


def test_an_invalid_name_is_refused_not_cached() -> None:
    with pytest.raises(dns.name.LabelTooLong):
        name_of_labels((b"a" * 64, b""))
    assert (b"a" * 64, b"") not in names._by_labels
    with pytest.raises(dns.name.EmptyLabel):
        name_of_labels((b"a", b"", b"b", b""))
    with pytest.raises(dns.name.NameTooLong):
        name_of_labels((b"a" * 63,) * 4 + (b"",))


def test_a_cached_name_is_a_dnspython_name_as_built() -> None:
    built = name_of_labels((b"Mx1", b"example", b""))
    assert type(built) is dns.name.Name
    assert built == dns.name.Name((b"mx1", b"example", b""))
    assert hash(built) == hash(dns.name.Name((b"MX1", b"EXAMPLE", b"")))
    assert built.labels == dns.name.Name((b"Mx1", b"example", b"")).labels
    with pytest.raises(TypeError):
        built.labels = ()


def test_text_caches_are_keyed_by_the_exact_text_and_octets() -> None:
    assert name_from_text("MX.example.test").labels == (b"MX", b"example", b"test", b"")
    assert name_from_text("mx.example.test").labels == (b"mx", b"example", b"test", b"")
    assert name_from_text("a\\.b.test.").labels == (b"a.b", b"test", b"")
    assert name_text(name_from_text("MX.Example.test.")) == "MX.Example.test."
    assert name_text(name_from_text("mx.example.test.")) == "mx.example.test."
    assert name_text(name_from_text("mx.example.test."), omit_final_dot=True) == "mx.example.test"
    assert name_text(dns.name.root, omit_final_dot=True) == dns.name.root.to_text(omit_final_dot=True)
    with pytest.raises(dns.name.EmptyLabel):
        name_from_text("a..test")


def _a_reply(*records: str, rcode: dns.rcode.Rcode = dns.rcode.NOERROR, where: str = "answer") -> bytes:
    return _made(rcode, **{where: list(records)}).to_wire()


def test_the_rdata_cache_is_keyed_by_class_type_and_octets() -> None:
    first = parse_reply(_a_reply("x.example. 300 A 192.0.2.1"))
    second = parse_reply(_a_reply("x.example. 300 A 192.0.2.2"))
    assert [rd.address for rd in first.answer[0]] == ["192.0.2.1"]
    assert [rd.address for rd in second.answer[0]] == ["192.0.2.2"]
    # The same four octets as a TXT record (a 3-octet string) are not the A record.
    txt = parse_reply(_a_reply('x.example. 300 TXT "\\192\\000\\002"'))
    a = parse_reply(_a_reply("x.example. 300 A 3.192.0.2"))
    assert txt.answer[0][0].to_wire() == a.answer[0][0].to_wire()
    assert txt.answer[0].rdtype == dns.rdatatype.TXT and a.answer[0].rdtype == dns.rdatatype.A
    assert txt.answer[0][0].strings == (b"\xc0\x00\x02",)
    assert a.answer[0][0].address == "3.192.0.2"


def test_two_rrsets_under_one_name_are_not_confused() -> None:
    one = parse_reply(_a_reply('x.example. 300 TXT "v=spf1 -all"', 'x.example. 300 TXT "v=DMARC1; p=none"'))
    assert sorted(rd.strings for rd in one.answer[0]) == [(b"v=DMARC1; p=none",), (b"v=spf1 -all",)]
    other = parse_reply(_a_reply('x.example. 300 TXT "v=spf1 -all"'))
    assert [rd.strings for rd in other.answer[0]] == [(b"v=spf1 -all",)]


def test_the_soa_cache_keeps_each_zones_numbers_and_the_case_of_its_names() -> None:
    soa = "example. 300 SOA ns.example. hostmaster.example. {} 7200 3600 1209600 {}"
    one = parse_reply(_a_reply(soa.format(1, 300), rcode=dns.rcode.NXDOMAIN, where="authority"))
    two = parse_reply(_a_reply(soa.format(2, 60), rcode=dns.rcode.NXDOMAIN, where="authority"))
    upper = parse_reply(
        _a_reply(soa.format(1, 300).replace("ns.", "NS."), rcode=dns.rcode.NXDOMAIN, where="authority")
    )
    assert (one.authority[0][0].serial, one.authority[0][0].minimum) == (1, 300)
    assert (two.authority[0][0].serial, two.authority[0][0].minimum) == (2, 60)
    assert upper.authority[0][0].mname.labels[0] == b"NS"
    assert one.authority[0][0].mname.labels[0] == b"ns"


def _from_text_outcome(read: object, text: str) -> object:
    try:
        name = read(text)  # type: ignore[operator]
    except Exception as exc:  # the kind of failure is what is compared
        return type(exc)
    assert isinstance(name, dns.name.Name)
    return name.labels


def test_names_from_text_as_dnspython_reads_them() -> None:
    texts = ["a.test", "a.test.", "A.Test.", ".", "@", "", "a..test", ".a", "a.", "a\\.b.test", "\\065.test",
             "é.test", "xn--bcher-kva.test", "a b.test", "a@b.test", "_25._tcp.mx1.test", "*.test", "a" * 64,
             ".".join(["a" * 63] * 4), "a\\", "a\\999.test", "\t.test"]  # fmt: skip
    shuffle = random.Random(7)
    alphabet = 'ab-_.\\@"();$ 09Zé\x7f'
    texts += ["".join(shuffle.choice(alphabet) for _ in range(shuffle.randint(0, 12))) for _ in range(3000)]
    for text in texts:
        names.forget()
        assert _from_text_outcome(name_from_text, text) == _from_text_outcome(dns.name.from_text, text), text


def test_names_to_text_as_dnspython_prints_them() -> None:
    shuffle = random.Random(8)
    octets = b'ab-_.\\@"();$ 09Z\x00\x7f\xff'
    cases: list[tuple[bytes, ...]] = [(), (b"",), (b"a",), (b"a", b""), (b"a.b", b"c", b""), (b"MX", b"")]
    for _ in range(2000):
        parts = [bytes(shuffle.choice(octets) for _ in range(shuffle.randint(1, 5))) for _ in range(3)]
        cases.append(tuple(parts) + ((b"",) if shuffle.random() < 0.7 else ()))
    for labels in cases:
        name = dns.name.Name(labels)
        for omit in (False, True):
            names.forget()
            assert name_text(name, omit) == name.to_text(omit_final_dot=omit), labels


_NSEC = "x.example. 300 NSEC z.example. A RRSIG NSEC"
_RRSIG = "x.example. 300 RRSIG NSEC 13 2 300 20300101000000 20200101000000 12345 example. {}"
_SIGNATURE = "Zm9vYmFyYmF6cXV4Zm9vYmFyYmF6cXV4Zm9vYmFyYmF6cXV4Zm9vYmFyYmF6cXV4"


def test_a_denials_nsec_and_rrsig_are_read_once_for_every_reply_that_repeats_them() -> None:
    wires = [
        _a_reply(_NSEC, _RRSIG.format(_SIGNATURE), rcode=dns.rcode.NXDOMAIN, where="authority")
        for _ in range(2)
    ]
    one, two = (parse_reply(w) for w in wires)
    for wire in wires:
        _assert_same(wire)
    assert one.authority[0][0] is two.authority[0][0]  # NSEC
    assert one.authority[1][0] is two.authority[1][0]  # its RRSIG
    other = parse_reply(
        _a_reply(_NSEC, _RRSIG.format(_SIGNATURE[::-1]), rcode=dns.rcode.NXDOMAIN, where="authority")
    )
    assert other.authority[1][0] is not one.authority[1][0]
    assert other.authority[1][0].signature != one.authority[1][0].signature


def test_an_rrsig_whose_signer_is_a_pointer_is_read_as_dnspython_reads_it_and_not_kept() -> None:
    """RFC 4034 §3.1.7 forbids compressing the signer's name; an older dnspython follows the
    pointer anyway, so such an rdata depends on the message and must never be reused by octets."""
    header = struct.pack("!HHHHHH", 1, 0x8180, 1, 1, 0, 0)
    question = b"\x01x\x07example\x00" + struct.pack("!HH", 46, 1)
    fields = struct.pack("!HBBIIIH", 47, 13, 2, 300, 1893456000, 1577836800, 12345)
    rdata = fields + b"\xc0\x0c" + b"\x01" * 64  # the signer: a pointer to the question's name
    record = b"\xc0\x0c" + struct.pack("!HHIH", 46, 1, 300, len(rdata)) + rdata
    wire = header + question + record
    _assert_same(wire)
    assert not any(key[2] == rdata for key in fast._rdatas)


@pytest.mark.parametrize(
    ("octets", "written_out"),
    [
        (b"\x07example\x00rest", True),
        (b"\x00", True),  # the root
        (b"\x07example\xc0\x0c", False),  # ends in a pointer
        (b"\xc0\x0c", False),
        (b"\x47example\x00", False),  # label type 01 (RFC 6891 §5): dnspython refuses it
        (b"\x07examp", False),  # runs past the rdata's end
        (b"\x07example", False),  # no root label before the end
    ],
)
def test_a_name_counts_as_written_out_only_up_to_its_root_label_without_a_pointer(
    octets: bytes, written_out: bool
) -> None:
    assert fast._written_out(b"\xff" + octets, 1, 1 + len(octets)) is written_out
