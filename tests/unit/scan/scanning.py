"""Helpers for scan tests: a zone of mail domains, and a scan run in this process."""

from __future__ import annotations

import io
import json
from collections.abc import Iterable
from dataclasses import replace
from pathlib import Path
from typing import Any

from mecsa.dns.resolver import DnsClient
from mecsa.observe import AssessOptions
from mecsa.scan.assessor import ScanConfig
from mecsa.scan.run import ScanRequest, ScanRun, scan
from mecsa.store import Store

ORIGIN = "scan.test"
HEAD = f"$TTL 300\n@ SOA ns.{ORIGIN}. h.{ORIGIN}. 1 300 300 300 300\n@ NS ns\nns A 127.0.0.53\n"
DNS_ONLY = frozenset({"mx", "spf", "dmarc"})
# The TLD's zone: DMARC discovery walks up the tree (RFC 9989), where a real resolver says NXDOMAIN.
TLD = {"test": "$TTL 300\n@ SOA ns.test. h.test. 1 300 300 300 300\n@ NS ns.test.\nns A 127.0.0.53\n"}


def zone(names: Iterable[str], *, mx_address: str = "127.0.0.1") -> str:
    """Each name gets an MX at the shared provider host, SPF and DMARC; `bad*` names get no DMARC."""
    body = [HEAD, f"mx.provider A {mx_address}"]
    for name in names:
        body.append(f"{name} MX 10 mx.provider.{ORIGIN}.")
        body.append(f'{name} TXT "v=spf1 mx -all"')
        if not name.startswith("bad"):
            body.append(f'_dmarc.{name} TXT "v=DMARC1; p=reject"')
    return "\n".join(body) + "\n"


def config(client: DnsClient, **changes: Any) -> ScanConfig:
    server = client.nameservers[0]
    base = ScanConfig(
        options=AssessOptions(only=DNS_ONLY, smtp_timeout=1.0, check_deadline=20.0),
        resolvers=(f"{server.host}:{server.port}",),
        dns_timeout=client.timeout,
        concurrency=10,
    )
    return replace(base, **changes)


def write_list(tmp_path: Path, lines: Iterable[str], name: str = "list.txt") -> str:
    path = tmp_path / name
    path.write_text("".join(f"{line}\n" for line in lines), encoding="utf-8")
    return str(path)


async def run(
    store: Store, source: str, scan_config: ScanConfig, **request: Any
) -> tuple[ScanRun, list[dict[str, Any]]]:
    """Run a scan; the records it wrote to stdout (JSONL)."""
    stdout = io.StringIO()
    result = await scan(
        ScanRequest(source=source, config=scan_config, **request), store, stdout, io.StringIO()
    )
    return result, [json.loads(line) for line in stdout.getvalue().splitlines()]
