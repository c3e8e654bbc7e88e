"""Reading a DNS reply with less CPU than `dns.message.from_wire`, to the same message (issue 20).

In a warm bulk assessment, dnspython's reply parsing was a third of the CPU: about 150 µs for a
two-record NXDOMAIN, most of it spent building `dns.name.Name` objects (each label sequence is
decoded through one method call per octet, then validated). Here a reply is read by the same
steps as dnspython's `_WireReader` (the question, then each section's records through
`dns.rdata.from_wire_parser` and `Message.find_rrset`), with one difference: names are decoded
straight from the octets, by dnspython's own rules, and a name already seen is reused
(`mecsa.dns.names`: keyed by the exact label octets, case included, so a cached name is always
the one dnspython would have built).

Only the plain case takes this path: a QUERY reply, not truncated, without TSIG. Anything else,
and any reply this reader finds fault with, is read again by `dns.message.from_wire`, so its
result or its exception is dnspython's own. A unit test compares the two readers on many replies.
"""

from __future__ import annotations

import struct
from typing import Any

import dns.exception
import dns.flags
import dns.message
import dns.name
import dns.opcode
import dns.rdata
import dns.rdataclass
import dns.rdatatype
import dns.rdtypes.ANY.SOA
import dns.rrset
import dns.wire

from mecsa.dns import names
from mecsa.dns.names import name_of_labels

_HEADER = struct.Struct("!HHHHHH")
_RR_HEADER = struct.Struct("!HHIH")
_QUESTION = struct.Struct("!HH")
_OPT = int(dns.rdatatype.OPT)
_TSIG = int(dns.rdatatype.TSIG)
_ANSWER, _AUTHORITY, _ADDITIONAL = 1, 2, 3
_TC = int(dns.flags.TC)
_ROOT_LABELS = dns.name.root.labels
_SOA = int(dns.rdatatype.SOA)
_SOA_FIELDS = struct.Struct("!IIIII")
_SOA_CLASS: Any = dns.rdtypes.ANY.SOA.SOA  # dnspython leaves its constructor untyped
_IN = int(dns.rdataclass.IN)
# Types whose wire form holds no domain name: their rdata is a function of its octets alone, so one
# (immutable) object can stand for every copy. Others read names, which compression makes depend
# on the rest of the message.
_NAMELESS = frozenset(
    int(t)
    for t in (
        dns.rdatatype.A,
        dns.rdatatype.AAAA,
        dns.rdatatype.TXT,
        dns.rdatatype.TLSA,
        dns.rdatatype.DS,
        dns.rdatatype.DNSKEY,
        dns.rdatatype.NSEC3,
        dns.rdatatype.NSEC3PARAM,
        dns.rdatatype.OPT,
        dns.rdatatype.CAA,
    )
)
# Types whose one name may not be compressed (RFC 4034 §3.1.7: the RRSIG's signer; §4.1.1: the
# NSEC's next name), at this offset in the rdata. Written out, which the reader checks (a pointer
# would make the rdata depend on the message: an older dnspython follows it), the name is in the
# octets, and the rdata again a function of them alone. A denial repeats these in every reply.
_NAME_WRITTEN_OUT_AT = {int(dns.rdatatype.RRSIG): 18, int(dns.rdatatype.NSEC): 0}
_MAX_CACHED_RDATA = 4096
_MAX_CACHED_RDLEN = 512  # a bound on the memory the cache can hold (about 2 MiB)
# a reused rdata, and the storage of a set that holds it alone (see `_add`)
_Known = tuple[dns.rdata.Rdata, dict[dns.rdata.Rdata, None]]
_rdatas: dict[tuple[int, int, bytes], _Known] = {}
_soas: dict[tuple[tuple[bytes, ...], tuple[bytes, ...], tuple[int, ...]], _Known] = {}


class _Parser(dns.wire.Parser):
    """dnspython's wire parser with a quicker `get_name`: the same rules, the same position after."""

    def take(self, fields: struct.Struct) -> tuple[Any, ...]:
        """`get_struct`, without its per-call format parsing."""
        at = self.current
        if at + fields.size > self.end:
            raise dns.exception.FormError
        self.current = at + fields.size
        if self.current > self.furthest:
            self.furthest = self.current
        return fields.unpack_from(self.wire, at)

    def get_name(self, origin: dns.name.Name | None = None, decompress: bool = False) -> dns.name.Name:
        # The steps of `dns.name.from_wire_parser`, on the octets: a pointer must point before the
        # name part it follows and the target may not overlap it (the end moves down to the
        # start), at most MAX_COMPRESSION_POINTER_CHAIN hops, label types 01 and 10 are refused.
        wire = self.wire
        pos = self.current
        end = self.end
        start = pos
        biggest_pointer = pos
        furthest = self.furthest
        hops = 0
        labels: list[bytes] = []
        while True:
            if pos >= end:
                raise dns.exception.FormError
            count = wire[pos]
            pos += 1
            if count == 0:
                break
            if count < 64:
                if pos + count > end:
                    raise dns.exception.FormError
                labels.append(wire[pos : pos + count])
                pos += count
            elif count >= 192:
                if not decompress:
                    raise dns.name.DecompressionForbidden
                if pos >= end:
                    raise dns.exception.FormError
                target = (count & 0x3F) * 256 + wire[pos]
                pos += 1
                if pos > furthest:
                    furthest = pos
                if target >= biggest_pointer:
                    raise dns.name.BadPointer
                biggest_pointer = target
                hops += 1
                if hops > dns.name.MAX_COMPRESSION_POINTER_CHAIN:
                    raise dns.name.PointerChainTooLong
                end = start  # restrict_end(start): start is never past the current end
                if target > end:
                    raise dns.exception.FormError
                pos = start = target
                continue
            else:
                raise dns.name.BadLabelType
            if pos > furthest:
                furthest = pos
        if pos > furthest:
            furthest = pos
        labels.append(b"")
        self.current = self.furthest = furthest
        name = name_of_labels(tuple(labels))
        if origin:
            name = name.relativize(origin)
        return name


def parse_reply(wire: bytes) -> dns.message.Message:
    """`dns.message.from_wire(wire, raise_on_truncation=True)`, quicker for a plain reply."""
    try:
        message = _read(wire)
    except Exception:  # dnspython's reader decides what the fault is
        message = None
    if message is None:
        return dns.message.from_wire(wire, raise_on_truncation=True)
    return message


def _read(wire: bytes) -> dns.message.Message | None:
    """The message, or None when the reply is not the plain case (dnspython reads it then)."""
    if len(wire) < 12:
        return None
    ident, flags, qdcount, ancount, nscount, arcount = _HEADER.unpack_from(wire)
    if flags & _TC or dns.opcode.from_flags(flags) != dns.opcode.QUERY:
        return None
    message = dns.message.QueryMessage(id=ident)
    message.flags = dns.flags.Flag(flags)
    message.wire = wire  # as dnspython's reader sets it
    parser = _Parser(wire, 12)
    for _ in range(qdcount):
        qname = parser.get_name(None, True)
        rdtype, rdclass = parser.take(_QUESTION)
        _rrset(message, 0, qname, rdclass, rdtype, dns.rdatatype.NONE, unique=True)
    for number, count in ((_ANSWER, ancount), (_AUTHORITY, nscount), (_ADDITIONAL, arcount)):
        if not _read_section(message, parser, number, count):
            return None
    if parser.remaining() != 0:
        return None  # trailing octets: dnspython raises TrailingJunk
    return message


def _read_section(message: dns.message.Message, parser: _Parser, number: int, count: int) -> bool:
    for _ in range(count):
        name = parser.get_name(None, True)
        rdtype, rdclass, ttl, rdlen = parser.take(_RR_HEADER)
        if rdtype == _TSIG:
            return False
        # (a name is the root exactly when its one label is the empty one: no case to compare)
        if rdtype == _OPT and (number != _ADDITIONAL or message.opt or name.labels != _ROOT_LABELS):
            return False  # dnspython raises BadEDNS
        rd, alone = _rdata(parser, rdclass, rdtype, rdlen)
        if rdtype == _OPT:  # dns.rrset.from_rdata(name, ttl, rd)
            message.opt = dns.rrset.RRset(name, rd.rdclass, rd.rdtype)
            message.opt.update_ttl(ttl)
            _add(message.opt, rd, alone)
            continue
        rrset = _rrset(message, number, name, rdclass, rdtype, rd.covers())
        rrset.update_ttl(0 if ttl > 0x7FFFFFFF else ttl)
        _add(rrset, rd, alone)
    return True


def _add(rrset: dns.rrset.RRset, rd: dns.rdata.Rdata, alone: dict[dns.rdata.Rdata, None] | None) -> None:
    """`rrset.add(rd)` after its TTL is updated. An rdata's hash is its canonical wire form, made
    anew each time (for an SOA, 40% of reading an NXDOMAIN reply); the storage of a one-rdata set,
    kept with a reused rdata, carries it already, and a dict copy does not hash again."""
    if alone is not None and not rrset.items:
        # Rdataset.add on an empty set of the rdata's class and type: nothing to check or clear.
        rrset.items = alone.copy()
    else:
        rrset.add(rd)


_SECTIONS = tuple(dns.message.MessageSection(n) for n in range(4))
_enums: dict[tuple[type[Any], int], Any] = {}


def _enum(kind: type[Any], value: int) -> Any:
    """`kind.make(value)` (dnspython's enums, which also name unknown values), once per value."""
    member = _enums.get((kind, value))
    if member is None:
        member = kind.make(value)
        if len(_enums) >= _MAX_CACHED_RDATA:  # a server inventing types cannot grow it for ever
            _enums.clear()
        _enums[(kind, value)] = member
    return member


def _rrset(
    message: dns.message.Message,
    number: int,
    name: dns.name.Name,
    rdclass: int,
    rdtype: int,
    covers: int,
    unique: bool = False,
) -> dns.rrset.RRset:
    """`message.find_rrset(section, name, rdclass, rdtype, covers, None, create=True, force_unique=unique)`
    with the enums looked up once: the same key in `message.index`, the same RRset appended."""
    key = (
        _SECTIONS[number],
        name,
        _enum(dns.rdataclass.RdataClass, rdclass),
        _enum(dns.rdatatype.RdataType, rdtype),
        _enum(dns.rdatatype.RdataType, covers),
        None,
    )
    index = message.index
    assert index is not None  # a message read from the wire keeps one
    rrset = None if unique else index.get(key)
    if rrset is None:
        rrset = dns.rrset.RRset(name, key[2], key[3], key[4], None)
        message.sections[number].append(rrset)
        index[key] = rrset
    return rrset


def _rdata(parser: _Parser, rdclass: Any, rdtype: Any, rdlen: int) -> _Known | tuple[Any, None]:
    """`dns.rdata.from_wire_parser` on the next `rdlen` octets; the same rdata seen before is reused,
    with a one-rdata set's storage (or None when the rdata is not one that is kept).

    The key is everything the result is a function of: the class, the type and the exact octets
    (for SOA, the names as read, with their case, and the five numbers; RRSIG and NSEC only when
    their name is written out). A failure is never kept.
    """
    at = parser.current
    name_at = _NAME_WRITTEN_OUT_AT.get(rdtype)
    if rdlen <= _MAX_CACHED_RDLEN and (
        rdtype in _NAMELESS
        or (name_at is not None and _written_out(parser.wire, at + name_at, min(at + rdlen, parser.end)))
    ):
        key = (rdclass, rdtype, parser.wire[at : at + rdlen])
        known = _rdatas.get(key)
        if known is None or at + rdlen > parser.end:
            with parser.restrict_to(rdlen):
                rd = dns.rdata.from_wire_parser(rdclass, rdtype, parser, None)
            known = _remember(_rdatas, key, rd)
        else:
            parser.seek(at + rdlen)
            parser.furthest = max(parser.furthest, parser.current)
        return known
    if rdtype == _SOA and rdclass == _IN:
        # SOA.from_wire_parser's steps: two names (compression allowed), then five 32-bit numbers.
        with parser.restrict_to(rdlen):
            mname = parser.get_name(None, True)
            rname = parser.get_name(None, True)
            fields = parser.take(_SOA_FIELDS)
        soa_key = (mname.labels, rname.labels, fields)
        known = _soas.get(soa_key)
        if known is None:
            known = _remember(_soas, soa_key, _SOA_CLASS(rdclass, rdtype, mname, rname, *fields))
        return known
    with parser.restrict_to(rdlen):
        return dns.rdata.from_wire_parser(rdclass, rdtype, parser, None), None


def _written_out(wire: bytes, pos: int, end: int) -> bool:
    """Whether the name at `pos` ends, before `end`, in its root label with no pointer on the way."""
    while pos < end:
        count = wire[pos]
        if count == 0:
            return True
        if count >= 64:  # a pointer, or a label type RFC 6891 §5 retired: dnspython decides
            return False
        pos += 1 + count
    return False


def _remember(cache: dict[Any, _Known], key: Any, rd: dns.rdata.Rdata) -> _Known:
    if len(cache) >= _MAX_CACHED_RDATA:
        cache.clear()
    known = cache[key] = (rd, {rd: None})
    return known


def forget() -> None:
    """Empty this reader's caches and the names' (see `mecsa.dns.names.forget`)."""
    _rdatas.clear()
    _soas.clear()
    _enums.clear()
    names.forget()
