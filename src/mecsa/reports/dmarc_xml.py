"""A streaming parser of DMARC aggregate reports: XML in, a `DmarcHeader` and `DmarcRecord`s out.

Two forms are read by one code path, because RFC 9990 kept RFC 7489 appendix C's element names:

- RFC 9990 §2.1 (and its XSD): root `feedback` in namespace `urn:ietf:params:xml:ns:dmarc-2.0`,
  optional `version` 1.0, `np`, `testing`, `discovery_method`, `generator`, DKIM `selector`
  required, `extension` elements (ignored, as §"Extensions" allows);
- RFC 7489 appendix C: no namespace (or dmarc.org's), `pct`, `selector` optional.

Safety: defusedxml refuses DTDs, entity declarations (billion laughs) and external references.
Records are parsed one by one with `iterparse` and dropped from the tree once yielded, so memory
stays bounded however many records a report has; `Limits.max_records` bounds the count.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
from collections.abc import Iterator
from typing import Any
from xml.etree.ElementTree import Element, ParseError

import defusedxml
import defusedxml.ElementTree as safe_et

from mecsa.reports.limits import DEFAULT_LIMITS, ByteStream, Limits, ReportError, clip
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
DISPOSITIONS = frozenset({"none", "pass", "quarantine", "reject"})  # "pass": RFC 9990 ActionDisposition
ALIGNED_RESULTS = frozenset({"pass", "fail"})


def _local(tag: Any) -> str:
    return str(tag).rpartition("}")[2] if isinstance(tag, str) else ""


def _namespace(tag: str) -> str:
    return tag[1:].partition("}")[0] if tag.startswith("{") else ""


class _Tree:
    """Namespace-blind access to one parsed element's children."""

    def __init__(self, element: Element, limits: Limits) -> None:
        self.element = element
        self.limits = limits

    def children(self, name: str) -> list[_Tree]:
        return [_Tree(c, self.limits) for c in self.element if _local(c.tag) == name]

    def child(self, name: str) -> _Tree | None:
        found = self.children(name)
        return found[0] if found else None

    def text(self, name: str) -> str | None:
        node = self.child(name)
        if node is None or node.element.text is None:
            return None
        value = clip(node.element.text, self.limits.max_text)
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
        self._events = self._iterate(stream)
        self._header: DmarcHeader | None = None
        self._root = Element("feedback")
        self._in_record = False  # header() stopped at the start of the first record
        self.records_read = 0

    @staticmethod
    def _iterate(stream: ByteStream) -> Iterator[tuple[str, Element]]:
        try:
            parser = safe_et.iterparse(
                stream, events=("start", "end"), forbid_dtd=True, forbid_entities=True, forbid_external=True
            )
            yield from parser
        except defusedxml.DefusedXmlException as exc:
            raise ReportError(f"refused XML: {type(exc).__name__} ({exc})") from exc
        except ParseError as exc:
            raise ReportError(f"not well-formed XML: {exc}") from exc

    def header(self) -> DmarcHeader:
        if self._header is not None:
            return self._header
        root: Element | None = None
        metadata: DmarcMetadata | None = None
        policy: PolicyPublished | None = None
        version: str | None = None
        depth = 0
        for event, element in self._events:
            if event == "start":
                depth += 1
                if root is None:
                    root = element
                    if _local(element.tag) != "feedback":
                        raise ReportError(f"not a DMARC aggregate report: root <{_local(element.tag)}>")
                    self._root = element
                elif depth == 2 and _local(element.tag) == "record":
                    if metadata is None or policy is None:
                        raise ReportError("report_metadata and policy_published must come before the records")
                    self._in_record = True
                    break
                continue
            depth -= 1
            if depth != 1:
                continue
            name = _local(element.tag)
            if name == "report_metadata":
                metadata = _metadata(_Tree(element, self.limits))
            elif name == "policy_published":
                policy = _policy(_Tree(element, self.limits))
            elif name == "version" and element.text:
                version = element.text.strip()
        else:
            if root is None:
                raise ReportError("empty document")
            if metadata is None or policy is None:
                missing = "report_metadata" if metadata is None else "policy_published"
                raise ReportError(f"<{missing}> is missing")
        assert root is not None and metadata is not None and policy is not None
        form = DmarcForm.RFC9990 if _namespace(str(root.tag)) == RFC9990_NAMESPACE else DmarcForm.RFC7489
        self._header = DmarcHeader(form, metadata, policy, version)
        return self._header

    def records(self) -> Iterator[DmarcRecord]:
        self.header()
        if not self._in_record:
            return
        depth = 2  # inside the first <record>: header() consumed its start event
        for event, element in self._events:
            if event == "start":
                depth += 1
                continue
            depth -= 1
            if depth == 1 and _local(element.tag) == "record":
                self.records_read += 1
                if self.records_read > self.limits.max_records:
                    raise ReportError(f"more than {self.limits.max_records} records")
                record = _record(_Tree(element, self.limits), self.records_read)
                # Drop what was parsed: the root keeps no children, so memory does not grow.
                self._root.clear()
                yield record
