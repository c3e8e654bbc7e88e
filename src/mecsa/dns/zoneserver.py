"""A small in-process DNS server on loopback that plays a recursive resolver from zone text.

It serves the tests and the pre-lab demo. It answers from `dns.zone` data and can be told to
misbehave per name: SERVFAIL, REFUSED, silence (a timeout), truncation over UDP, or a bogus
DNSSEC answer (SERVFAIL with EDE 6, data with CD=1). Zones listed as `secure` get the AD bit
when `validating` is on, as a validating resolver would set it. No DNSSEC maths happens here:
the real thing is in the lab.
"""

from __future__ import annotations

import asyncio
import bisect
import struct
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import cast

import dns.edns
import dns.exception
import dns.flags
import dns.message
import dns.name
import dns.node
import dns.rcode
import dns.rdataclass
import dns.rdatatype
import dns.rrset
import dns.zone

from mecsa.dns.validation.denial import Nsec3Record, nsec3_hash


class Fault(StrEnum):
    SERVFAIL = "servfail"
    REFUSED = "refused"
    TIMEOUT = "timeout"
    TRUNCATE = "truncate"
    BOGUS = "bogus"
    BOGUS_NO_EDE = "bogus-no-ede"  # SERVFAIL without EDE, data with CD=1: a validator that says less


@dataclass
class ZoneData:
    """Zones to serve, keyed by origin, plus per-name faults and the DNSSEC picture."""

    zones: dict[dns.name.Name, dns.zone.Zone] = field(default_factory=dict)
    faults: dict[tuple[dns.name.Name, str | None], Fault] = field(default_factory=dict)
    secure_zones: set[dns.name.Name] = field(default_factory=set)
    validating: bool = True

    @classmethod
    def from_texts(
        cls,
        zones: Mapping[str, str],
        *,
        secure: Iterable[str] = (),
        validating: bool = True,
        faults: Mapping[str, Fault] | None = None,
    ) -> ZoneData:
        """Build from {origin: zone text}. Fault keys are `name` or `name/TYPE`."""
        data = cls(validating=validating)
        for origin, text in zones.items():
            data.add_zone(origin, text)
        data.secure_zones = {dns.name.from_text(z) for z in secure}
        for key, fault in (faults or {}).items():
            data.set_fault(key, fault)
        return data

    def add_zone(self, origin: str, text: str) -> None:
        zone = dns.zone.from_text(text, origin=origin, relativize=False, check_origin=False)
        self.zones[zone.origin] = zone  # type: ignore[index]

    def set_fault(self, key: str, fault: Fault) -> None:
        name, _, rdtype = key.partition("/")
        self.faults[(dns.name.from_text(name), rdtype.upper() or None)] = fault

    def fault_for(self, qname: dns.name.Name, rdtype: dns.rdatatype.RdataType) -> Fault | None:
        return self.faults.get((qname, dns.rdatatype.to_text(rdtype))) or self.faults.get((qname, None))

    def zone_for(self, qname: dns.name.Name) -> dns.zone.Zone | None:
        best: dns.zone.Zone | None = None
        for origin, zone in self.zones.items():
            if qname.is_subdomain(origin) and (best is None or len(origin) > len(best.origin)):  # type: ignore[arg-type]
                best = zone
        return best

    def is_secure(self, qname: dns.name.Name) -> bool:
        matches = [z for z in self.zones if qname.is_subdomain(z)]
        if not matches:
            return qname == dns.name.root and self.validating
        return max(matches, key=len) in self.secure_zones


def answer(data: ZoneData, query: dns.message.Message) -> dns.message.Message | None:
    """The reply to one query, or None to stay silent."""
    response = dns.message.make_response(query)
    response.flags |= dns.flags.RA
    if not query.question:
        response.set_rcode(dns.rcode.FORMERR)
        return response
    question = query.question[0]
    qname, rdtype = question.name, question.rdtype
    fault = data.fault_for(qname, rdtype)
    if fault is Fault.TIMEOUT:
        return None
    if fault is Fault.SERVFAIL:
        response.set_rcode(dns.rcode.SERVFAIL)
        return response
    if fault is Fault.REFUSED:
        response.set_rcode(dns.rcode.REFUSED)
        return response
    if fault is Fault.BOGUS_NO_EDE and not query.flags & dns.flags.CD:
        response.set_rcode(dns.rcode.SERVFAIL)
        return response
    if fault is Fault.BOGUS and not query.flags & dns.flags.CD:
        response.set_rcode(dns.rcode.SERVFAIL)
        response.use_edns(
            0, 0, 1232, options=[dns.edns.EDEOption(dns.edns.EDECode.DNSSEC_BOGUS, "signature invalid")]
        )
        return response
    bogus = fault in (Fault.BOGUS, Fault.BOGUS_NO_EDE)
    secure = data.validating and not bogus and not query.flags & dns.flags.CD
    _fill(data, response, qname, rdtype, bool(query.ednsflags & dns.flags.DO))
    if secure and all(data.is_secure(rrset.name) for rrset in response.answer) and data.is_secure(qname):
        response.flags |= dns.flags.AD
    return response


def _fill(
    data: ZoneData,
    response: dns.message.Message,
    qname: dns.name.Name,
    rdtype: dns.rdatatype.RdataType,
    dnssec_ok: bool = False,
) -> None:
    if qname == dns.name.root and rdtype == dns.rdatatype.SOA and data.zone_for(qname) is None:
        rrset = dns.rrset.from_text(".", 86400, "IN", "SOA", ". . 1 1800 900 604800 86400")
        response.answer.append(rrset)
        return
    current = qname
    for _ in range(16):
        # RFC 4035 §3.1.4.1: the DS RRset lives on the parent side of a zone cut.
        zone = data.zone_for(
            current.parent()
            if rdtype == dns.rdatatype.DS and current in data.zones and current != dns.name.root
            else current
        )
        if zone is None:
            response.set_rcode(dns.rcode.REFUSED if not response.answer else dns.rcode.NOERROR)
            return
        node = zone.get_node(current)
        owner = current
        if node is None:
            exists = any(n.is_subdomain(current) for n in zone.nodes)
            wildcard = None if exists else _wildcard_node(zone, current)
            if wildcard is None:
                response.set_rcode(dns.rcode.NOERROR if exists else dns.rcode.NXDOMAIN)
                _deny(zone, response, dnssec_ok, current)
                return
            owner, node = wildcard
        found = node.get_rdataset(dns.rdataclass.IN, rdtype)
        if found is not None:
            response.answer.append(dns.rrset.from_rdata_list(current, found.ttl, list(found)))
            _add_rrsig(response.answer, node, current, rdtype, dnssec_ok)
            if owner != current:
                _deny(
                    zone, response, dnssec_ok, current, soa=False
                )  # RFC 4035 §3.1.3.3: prove the name absent
            return
        cname = node.get_rdataset(dns.rdataclass.IN, dns.rdatatype.CNAME)
        if cname is None or rdtype == dns.rdatatype.CNAME:
            _deny(zone, response, dnssec_ok, current)
            return
        response.answer.append(dns.rrset.from_rdata_list(current, cname.ttl, list(cname)))
        _add_rrsig(response.answer, node, current, dns.rdatatype.CNAME, dnssec_ok)
        current = cname[0].target


def _wildcard_node(zone: dns.zone.Zone, name: dns.name.Name) -> tuple[dns.name.Name, dns.node.Node] | None:
    """The wildcard that synthesises `name` (RFC 4592 §3.3.1): `*.` at the closest encloser."""
    encloser = name.parent()
    origin = cast(dns.name.Name, zone.origin)
    while encloser.is_subdomain(origin):
        if zone.get_node(encloser) is not None or any(
            n.is_subdomain(encloser) for n in zone.nodes if n != origin
        ):
            node = zone.get_node(dns.name.Name((b"*",)).concatenate(encloser))
            return (encloser, node) if node is not None else None
        if encloser == origin:
            return None
        encloser = encloser.parent()
    return None


def _add_rrsig(
    section: list[dns.rrset.RRset],
    node: dns.node.Node,
    owner: dns.name.Name,
    covers: dns.rdatatype.RdataType,
    dnssec_ok: bool,
) -> None:
    if not dnssec_ok:
        return
    sigs = node.get_rdataset(dns.rdataclass.IN, dns.rdatatype.RRSIG, covers)
    if sigs is not None:
        section.append(dns.rrset.from_rdata_list(owner, sigs.ttl, list(sigs)))


def _deny(
    zone: dns.zone.Zone,
    response: dns.message.Message,
    dnssec_ok: bool,
    qname: dns.name.Name,
    *,
    soa: bool = True,
) -> None:
    """The authority section of a negative (or wildcard) answer: SOA, and with DO the NSEC/NSEC3
    records (with RRSIGs) that match or cover the name, its ancestors and their wildcards, which
    is what RFC 4035 §3.1.3 and RFC 5155 §7.2 proofs draw on."""
    origin = cast(dns.name.Name, zone.origin)
    apex = zone.get_node(origin)
    if soa and apex is not None and (found := apex.get_rdataset(dns.rdataclass.IN, dns.rdatatype.SOA)):
        response.authority.append(dns.rrset.from_rdata_list(origin, found.ttl, list(found)))
        _add_rrsig(response.authority, apex, origin, dns.rdatatype.SOA, dnssec_ok)
    if not dnssec_ok:
        return
    targets: list[dns.name.Name] = []
    name = qname
    while name.is_subdomain(origin):
        targets.extend((name, dns.name.Name((b"*",)).concatenate(name)))
        if name == origin:
            break
        name = name.parent()
    index = _denial_index(zone)
    chosen: set[tuple[dns.name.Name, dns.rdatatype.RdataType]] = set()
    for target in targets:
        if index.nsec_owners:
            # The NSEC at or before the name in canonical order matches or covers it (wrapping).
            at = bisect.bisect_right(index.nsec_owners, target) - 1
            chosen.add((index.nsec_owners[at], dns.rdatatype.NSEC))
        for (salt, iterations), (hashes, owners) in index.nsec3.items():
            at = bisect.bisect_right(hashes, nsec3_hash(target, salt, iterations)) - 1
            chosen.add((owners[at], dns.rdatatype.NSEC3))
    for owner, kind in sorted(chosen):
        node = zone.get_node(owner)
        if node is not None:
            _add_denial(response, node, owner, kind)


@dataclass(frozen=True, slots=True)
class _DenialIndex:
    nsec_owners: list[dns.name.Name]  # canonical order (dns.name comparison is RFC 4034 §6.1)
    # (salt, iterations) -> the sorted owner hashes and, in the same order, the owner names
    nsec3: dict[tuple[bytes, int], tuple[list[bytes], list[dns.name.Name]]]


_INDEXES: dict[int, tuple[dns.zone.Zone, _DenialIndex]] = {}


def _denial_index(zone: dns.zone.Zone) -> _DenialIndex:
    """The zone's NSEC owners and NSEC3 hashes, sorted once (zones here are not changed once served)."""
    cached = _INDEXES.get(id(zone))
    if cached is not None and cached[0] is zone:
        return cached[1]
    owners: list[dns.name.Name] = []
    hashed: dict[tuple[bytes, int], list[tuple[bytes, dns.name.Name]]] = {}
    for owner, node in zone.nodes.items():
        if node.get_rdataset(dns.rdataclass.IN, dns.rdatatype.NSEC) is not None:
            owners.append(owner)
        nsec3 = node.get_rdataset(dns.rdataclass.IN, dns.rdatatype.NSEC3)
        if nsec3 is not None and (record := Nsec3Record.of(owner, nsec3[0])) is not None:
            hashed.setdefault((record.rd.salt or b"", record.rd.iterations), []).append(
                (record.owner_hash, owner)
            )
    chains = {k: ([h for h, _ in sorted(v)], [o for _, o in sorted(v)]) for k, v in hashed.items()}
    index = _DenialIndex(sorted(owners), chains)
    _INDEXES[id(zone)] = (zone, index)
    return index


def _add_denial(
    response: dns.message.Message, node: dns.node.Node, owner: dns.name.Name, kind: dns.rdatatype.RdataType
) -> None:
    records = node.get_rdataset(dns.rdataclass.IN, kind)
    if records is not None:
        response.authority.append(dns.rrset.from_rdata_list(owner, records.ttl, list(records)))
        _add_rrsig(response.authority, node, owner, kind, True)


class _Udp(asyncio.DatagramProtocol):
    def __init__(self, data: ZoneData) -> None:
        self.data = data
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, wire: bytes, addr: tuple[str, int]) -> None:
        try:
            query = dns.message.from_wire(wire)
        except Exception:
            return
        reply = answer(self.data, query)
        if reply is None or self.transport is None:
            return
        q = query.question[0] if query.question else None
        if q is not None and self.data.fault_for(q.name, q.rdtype) is Fault.TRUNCATE:
            reply.answer.clear()
            reply.flags |= dns.flags.TC
        try:
            wire = reply.to_wire()
        except dns.exception.TooBig:
            # Over the asker's UDP size (DNSSEC denials are large): truncate, as a server must.
            for section in (reply.answer, reply.authority, reply.additional):
                section.clear()
            reply.flags |= dns.flags.TC
            wire = reply.to_wire()
        self.transport.sendto(wire, addr)


class ZoneServer:
    """UDP and TCP on one loopback port, inside the running event loop."""

    def __init__(self, data: ZoneData, host: str = "127.0.0.1", port: int = 0) -> None:
        self.data = data
        self.host = host
        self.port = port
        self._udp: asyncio.DatagramTransport | None = None
        self._tcp: asyncio.Server | None = None

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    async def start(self) -> ZoneServer:
        loop = asyncio.get_running_loop()
        # Bind TCP first on the wanted port, then UDP on the same number.
        for _ in range(20):
            tcp = await asyncio.start_server(self._serve_tcp, self.host, self.port)
            port = tcp.sockets[0].getsockname()[1]
            try:
                transport, _ = await loop.create_datagram_endpoint(
                    lambda: _Udp(self.data), local_addr=(self.host, port)
                )
            except OSError:
                tcp.close()
                if self.port:
                    raise
                continue
            self._tcp, self._udp, self.port = tcp, transport, port
            return self
        raise OSError("could not bind UDP and TCP on one port")

    async def stop(self) -> None:
        if self._udp is not None:
            self._udp.close()
        if self._tcp is not None:
            self._tcp.close()
            await self._tcp.wait_closed()

    async def _serve_tcp(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                size = struct.unpack("!H", await reader.readexactly(2))[0]
                query = dns.message.from_wire(await reader.readexactly(size))
                reply = answer(self.data, query)
                if reply is None:
                    continue
                wire = reply.to_wire(max_size=65535)
                writer.write(struct.pack("!H", len(wire)) + wire)
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError, dns.exception.DNSException):
            pass
        finally:
            writer.close()


class ThreadedZoneServer:
    """The same server on its own loop in a thread, for driving the CLI in a subprocess."""

    def __init__(self, data: ZoneData, host: str = "127.0.0.1", port: int = 0) -> None:
        self._server = ZoneServer(data, host, port)
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)

    @property
    def address(self) -> str:
        return self._server.address

    def __enter__(self) -> ThreadedZoneServer:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._server.start(), self._loop).result(10)
        return self

    def __exit__(self, *exc: object) -> None:
        asyncio.run_coroutine_threadsafe(self._server.stop(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._loop.close()
