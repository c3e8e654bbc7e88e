"""DNS answers shared by every assessment of a scan process, within their TTL.

Each assessment keeps its own `Resolver` cache (the architecture's rule); below it, a scan's one
`SharedDnsClient` remembers whole replies for as long as their TTL allows, so that a thousand
domains that include the same SPF record, or name the same MX host, cause one question.

- Only NOERROR and NXDOMAIN replies are kept or shared. A timeout, SERVFAIL or REFUSED is never
  cached, and an asker who joined a query that failed asks again itself ("could not find out"
  must not spread to every domain that happened to wait for the same answer).
- The lifetime is the smallest TTL of the answer section; for a negative reply, the SOA's
  (min of its TTL and its MINIMUM field, RFC 2308 §5). It is capped at `max_ttl_s`, and a reply
  without a TTL to go by is not kept.
- Concurrent askers of one question share one query; at most `max_entries` replies are kept,
  the least recently used going first.
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from collections.abc import Sequence

import dns.message
import dns.name
import dns.rdatatype

from mecsa.dns.answer import Rcode
from mecsa.dns.resolver import DnsClient, Nameserver, _Reply

_CACHEABLE = frozenset({Rcode.NOERROR, Rcode.NXDOMAIN})
DEFAULT_MAX_TTL_S = 3600.0
# Most questions of a scan are a domain's own (its MX, TXT, _dmarc...) and never asked again; the
# shared ones (providers' hosts, SPF includes) are asked all the time. A small LRU keeps those hot
# and keeps memory flat: 200,000 whole replies held 700 MiB at 10,000 domains (benchmarks/README).
DEFAULT_MAX_ENTRIES = 5_000


def reply_lifetime(message: dns.message.Message) -> float | None:
    """How long a reply may be reused (RFC 1035 §3.2.1 TTL; RFC 2308 §5 for negative answers)."""
    if message.answer:
        return float(min(rrset.ttl for rrset in message.answer))
    for rrset in message.authority:
        if rrset.rdtype == dns.rdatatype.SOA:
            return float(min(rrset.ttl, *(rd.minimum for rd in rrset)))
    return None


class SharedDnsClient(DnsClient):
    """A `DnsClient` that reuses replies across the assessments of one process, within their TTL."""

    def __init__(
        self,
        nameservers: Sequence[Nameserver] | None = None,
        *,
        timeout: float = 2.0,
        attempts: int = 3,
        max_ttl_s: float = DEFAULT_MAX_TTL_S,
        max_entries: int = DEFAULT_MAX_ENTRIES,
    ) -> None:
        super().__init__(nameservers, timeout=timeout, attempts=attempts)
        self.max_ttl_s = max_ttl_s
        self.max_entries = max_entries
        self._replies: OrderedDict[tuple[dns.name.Name, int, bool], tuple[float, asyncio.Task[_Reply]]] = (
            OrderedDict()
        )
        self.hits = 0
        self.misses = 0

    async def ask(self, name: dns.name.Name, rdtype: dns.rdatatype.RdataType, *, cd: bool = False) -> _Reply:
        key = (name, int(rdtype), cd)
        now = time.monotonic()
        entry = self._replies.get(key)
        if entry is not None and (entry[0] > now or not entry[1].done()):
            self._replies.move_to_end(key)
            shared = await asyncio.shield(entry[1])
            if shared.rcode in _CACHEABLE:
                self.hits += 1
                return shared
            # The query we joined failed (its attempts timed out, say): ask ourselves, as an
            # unshared assessment would, so one unlucky query does not fail every domain that waited.
            self.misses += 1
            return await super().ask(name, rdtype, cd=cd)
        self.misses += 1
        task = asyncio.ensure_future(super().ask(name, rdtype, cd=cd))
        # Until the reply is in, the entry only shares the query in flight (expiry set on arrival).
        self._replies[key] = (now, task)
        self._replies.move_to_end(key)
        task.add_done_callback(lambda done: self._settle(key, done))
        while len(self._replies) > self.max_entries:
            self._replies.popitem(last=False)
        return await asyncio.shield(task)

    def _settle(self, key: tuple[dns.name.Name, int, bool], task: asyncio.Task[_Reply]) -> None:
        entry = self._replies.get(key)
        if entry is None or entry[1] is not task:
            return
        lifetime = None
        if not task.cancelled() and task.exception() is None:
            reply = task.result()
            if reply.rcode in _CACHEABLE and reply.message is not None:
                lifetime = reply_lifetime(reply.message)
        if lifetime is None or lifetime <= 0:
            del self._replies[key]
        else:
            self._replies[key] = (time.monotonic() + min(lifetime, self.max_ttl_s), task)

    def stats(self) -> dict[str, int]:
        return {"hits": self.hits, "misses": self.misses, "entries": len(self._replies)}
