"""A streaming parser of DMARC aggregate reports: XML in, a `DmarcHeader` and `DmarcRecord`s out.

Two forms are read by one code path, because RFC 9990 kept RFC 7489 appendix C's element names:

- RFC 9990 §2.1 (and its XSD): root `feedback` in namespace `urn:ietf:params:xml:ns:dmarc-2.0`,
  optional `version` 1.0, `np`, `testing`, `discovery_method`, `generator`, DKIM `selector`
  required, `extension` elements (ignored, as §"Extensions" allows);
- RFC 7489 appendix C: no namespace (or dmarc.org's), `pct`, `selector` optional.

Safety: defusedxml's expat reader refuses DTDs, entity declarations (billion laughs) and
external references. The document is fed in chunks to a SAX handler that builds only one
top-level element (`report_metadata`, `policy_published`, one `record`) at a time, so memory stays
bounded however many records a report has; `Limits.max_records` bounds the count. (SAX, not
defusedxml's `iterparse`: that one runs the pure-Python ElementTree, measured 4x slower here.)
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import xml.sax
import xml.sax.handler
from collections.abc import Iterator
from typing import Any

import defusedxml
from defusedxml.expatreader import DefusedExpatParser

from mecsa.reports.limits import CHUNK, DEFAULT_LIMITS, ByteStream, Limits, ReportError, clip
from mecsa.reports.model import (
    DateRange,
    DkimAuth,
    DmarcForm,
    DmarcHeader,
    DmarcMetadata,
    DmarcRecord,
    PolicyOverride,
    PolicyPublished,
    SpfAuth,
)

RFC9990_NAMESPACE = "urn:ietf:params:xml:ns:dmarc-2.0"
# Elements in one top-level element (a record is ~20; RFC 9990 caps DKIM results at 100 a row):
# what one hostile `record` with millions of children could otherwise make us hold.
MAX_SUBTREE_NODES = 10_000
DISPOSITIONS = frozenset({"none", "pass", "quarantine", "reject"})  # "pass": RFC 9990 ActionDisposition
ALIGNED_RESULTS = frozenset({"pass", "fail"})


class _Node:
    """One element of a top-level subtree: its local name, text and children."""

    __slots__ = ("children", "first", "name", "parts", "size")

    def __init__(self, name: str) -> None:
        self.name = name
        self.parts: list[str] = []
        self.size = 0
        self.children: list[_Node] = []
        self.first: dict[str, _Node] = {}  # the first child of each name: most lookups want one

    @property
    def text(self) -> str:
        return "".join(self.parts)


class _Tree:
    """Namespace-blind access to one parsed element's children."""

    __slots__ = ("element", "limits")

    def __init__(self, element: _Node, limits: Limits) -> None:
        self.element = element
        self.limits = limits

    def children(self, name: str) -> list[_Tree]:
        return [_Tree(c, self.limits) for c in self.element.children if c.name == name]

    def child(self, name: str) -> _Tree | None:
        node = self.element.first.get(name)
        return None if node is None else _Tree(node, self.limits)

    def text(self, name: str) -> str | None:
        node = self.element.first.get(name)
        if node is None:
            return None
        value = clip(node.text, self.limits.max_text)
        return value or None

    def need(self, name: str, where: str) -> str:
        value = self.text(name)
        if value is None:
            raise ReportError(f"{where}: <{name}> is missing or empty")
        return value

    def need_child(self, name: str, where: str) -> _Tree:
        node = self.child(name)
        if node is None:
            raise ReportError(f"{where}: <{name}> is missing")
        return node


def _local(qname: str) -> str:
    return qname[qname.find(":") + 1 :]


class _Collector(xml.sax.handler.ContentHandler):
    """Builds each top-level element of `feedback` and queues it once it is complete."""

    def __init__(self, max_text: int) -> None:
        super().__init__()
        self.max_text = max_text
        self.root: str | None = None
        self.namespace = ""
        self.stack: list[_Node] = []
        self.done: list[_Node] = []
        self.nodes = 0  # in the current top-level element

    def startElement(self, name: str, attrs: Any) -> None:
        if self.root is None:
            self.root = _local(name)
            prefix = name.partition(":")[0] if ":" in name else ""
            self.namespace = str(attrs.get(f"xmlns:{prefix}" if prefix else "xmlns", ""))
            return
        local = name[name.find(":") + 1 :]
        node = _Node(local)
        self.nodes = self.nodes + 1 if self.stack else 1
        if self.nodes > MAX_SUBTREE_NODES:
            raise ReportError(f"<{self.stack[0].name}> has more than {MAX_SUBTREE_NODES} elements")
        if self.stack:
            parent = self.stack[-1]
            parent.children.append(node)
            parent.first.setdefault(local, node)
        self.stack.append(node)

    def endElement(self, name: str) -> None:
        if not self.stack:
            return  # the root's end
        node = self.stack.pop()
        if not self.stack:
            self.done.append(node)

    def characters(self, content: str) -> None:
        if self.stack:
            node = self.stack[-1]
            if node.size <= self.max_text:  # a giant text node is clipped while it streams
                node.parts.append(content)
                node.size += len(content)


def _timestamp(text: str, where: str) -> dt.datetime:
    try:
        return dt.datetime.fromtimestamp(int(text.strip()), dt.UTC)
    except (ValueError, OverflowError, OSError) as exc:
        raise ReportError(f"{where}: {text!r} is not a time in seconds since the epoch") from exc


def _metadata(node: _Tree) -> DmarcMetadata:
    where = "report_metadata"
    dates = node.need_child("date_range", where)
    begin = _timestamp(dates.need("begin", "date_range"), "date_range/begin")
    end = _timestamp(dates.need("end", "date_range"), "date_range/end")
    if end < begin:
        raise ReportError("date_range: end is before begin")
    errors = tuple(
        clip(e.element.text, node.limits.max_text) for e in node.children("error") if e.element.text
    )
    return DmarcMetadata(
        org_name=node.need("org_name", where),
        email=node.text("email") or "",  # REQUIRED, but its absence does not make the data wrong
        report_id=node.need("report_id", where),
        date_range=DateRange(begin, end),
        extra_contact_info=node.text("extra_contact_info"),
        errors=errors,
        generator=node.text("generator"),
    )


def _lower(value: str | None) -> str | None:
    return value.lower() if value is not None else None


def _policy(node: _Tree) -> PolicyPublished:
    where = "policy_published"
    pct_text = node.text("pct")
    pct: int | None = None
    if pct_text is not None:
        try:
            pct = int(pct_text)
        except ValueError as exc:
            raise ReportError(f"{where}: pct {pct_text!r} is not a number") from exc
    return PolicyPublished(
        domain=node.need("domain", where).lower().rstrip("."),
        p=node.need("p", where).lower(),
        sp=_lower(node.text("sp")),
        np=_lower(node.text("np")),
        adkim=_lower(node.text("adkim")),
        aspf=_lower(node.text("aspf")),
        pct=pct,
        fo=node.text("fo"),
        testing=_lower(node.text("testing")),
        discovery_method=_lower(node.text("discovery_method")),
    )


def _record(node: _Tree, number: int) -> DmarcRecord:
    where = f"record {number}"
    row = node.need_child("row", where)
    source = row.need("source_ip", where)
    try:
        source_ip = str(ipaddress.ip_address(source))
    except ValueError as exc:
        raise ReportError(f"{where}: source_ip {source!r} is not an IP address") from exc
    count_text = row.need("count", where)
    if not count_text.isdigit():
        raise ReportError(f"{where}: count {count_text!r} is not a whole number")
    evaluated = row.need_child("policy_evaluated", where)
    disposition = evaluated.need("disposition", where).lower()
    dkim_aligned = evaluated.need("dkim", where).lower()
    spf_aligned = evaluated.need("spf", where).lower()
    if disposition not in DISPOSITIONS:
        raise ReportError(f"{where}: disposition {disposition!r} is not one of {sorted(DISPOSITIONS)}")
    for name, value in (("dkim", dkim_aligned), ("spf", spf_aligned)):
        if value not in ALIGNED_RESULTS:
            raise ReportError(f"{where}: policy_evaluated/{name} {value!r} is not pass or fail")
    reasons = tuple(
        PolicyOverride((r.text("type") or "other").lower(), r.text("comment"))
        for r in evaluated.children("reason")
    )
    identifiers = node.need_child("identifiers", where)
    auth = node.child("auth_results")
    dkim: list[DkimAuth] = []
    spf: list[SpfAuth] = []
    if auth is not None:
        for d in auth.children("dkim"):
            domain = d.text("domain")
            if domain:
                result = (d.text("result") or "none").lower()
                dkim.append(DkimAuth(domain.lower(), result, d.text("selector"), d.text("human_result")))
        for s in auth.children("spf"):
            domain = s.text("domain")
            if domain:
                result = (s.text("result") or "none").lower()
                spf.append(SpfAuth(domain.lower(), result, _lower(s.text("scope")), s.text("human_result")))
    return DmarcRecord(
        source_ip=source_ip,
        count=int(count_text),
        disposition=disposition,
        dkim_aligned=dkim_aligned,
        spf_aligned=spf_aligned,
        header_from=identifiers.need("header_from", where).lower().rstrip("."),
        envelope_from=_lower(identifiers.text("envelope_from")),
        envelope_to=_lower(identifiers.text("envelope_to")),
        reasons=reasons,
        dkim=tuple(dkim),
        spf=tuple(spf),
    )


class AggregateReader:
    """Reads one aggregate report from a binary stream.

    `header()` parses up to the first `record`; `records()` then yields the records one by one.
    Both raise `ReportError` with a one-line reason for a malformed or refused report.
    """

    def __init__(self, stream: ByteStream, limits: Limits = DEFAULT_LIMITS) -> None:
        self.limits = limits
        self._stream = stream
        self._collector = _Collector(limits.max_text)
        self._parser = DefusedExpatParser(forbid_dtd=True, forbid_entities=True, forbid_external=True)
        self._parser.setContentHandler(self._collector)
        self._elements = self._top_level()
        self._header: DmarcHeader | None = None
        self._first_record: _Node | None = None
        self.records_read = 0

    def _top_level(self) -> Iterator[_Node]:
        """The complete top-level elements, in document order, as the stream is fed in chunks."""
        collector = self._collector
        try:
            while True:
                chunk = self._stream.read(CHUNK)
                if chunk:
                    self._parser.feed(chunk)
                else:
                    self._parser.close()
                if collector.root is not None and collector.root != "feedback":
                    raise ReportError(f"not a DMARC aggregate report: root <{collector.root}>")
                done, collector.done = collector.done, []
                yield from done
                if not chunk:
                    return
        except defusedxml.DefusedXmlException as exc:
            raise ReportError(f"refused XML: {type(exc).__name__} ({exc})") from exc
        except xml.sax.SAXParseException as exc:
            where = f"line {exc.getLineNumber()}, column {exc.getColumnNumber()}"
            raise ReportError(f"not well-formed XML: {exc.getMessage()} ({where})") from exc

    def header(self) -> DmarcHeader:
        if self._header is not None:
            return self._header
        metadata: DmarcMetadata | None = None
        policy: PolicyPublished | None = None
        version: str | None = None
        for node in self._elements:
            if node.name == "record":
                if metadata is None or policy is None:
                    raise ReportError("report_metadata and policy_published must come before the records")
                self._first_record = node
                break
            if node.name == "report_metadata":
                metadata = _metadata(_Tree(node, self.limits))
            elif node.name == "policy_published":
                policy = _policy(_Tree(node, self.limits))
            elif node.name == "version":
                version = node.text.strip() or None
        if self._collector.root is None:
            raise ReportError("empty document")
        if metadata is None or policy is None:
            raise ReportError(f"<{'report_metadata' if metadata is None else 'policy_published'}> is missing")
        form = DmarcForm.RFC9990 if self._collector.namespace == RFC9990_NAMESPACE else DmarcForm.RFC7489
        self._header = DmarcHeader(form, metadata, policy, version)
        return self._header

    def records(self) -> Iterator[DmarcRecord]:
        self.header()
        if self._first_record is None:
            return
        pending: Iterator[_Node] = iter((self._first_record,))
        self._first_record = None
        for source in (pending, self._elements):
            for node in source:
                if node.name != "record":
                    continue  # extension, or a misplaced element: ignored (RFC 9990 §"Extensions")
                self.records_read += 1
                if self.records_read > self.limits.max_records:
                    raise ReportError(f"more than {self.limits.max_records} records")
                yield _record(_Tree(node, self.limits), self.records_read)
