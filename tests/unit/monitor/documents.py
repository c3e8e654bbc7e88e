"""Assessment documents for the monitor's tests: a real one from the lab, and edits of it.

`top.test.json` is `mecsa assess top.test --json` run against the lab's top-score scenario (every
protocol passes, DANE 3 1 1 matches, MTA-STS enforce). Each helper returns an edited deep copy, so
that a test states exactly what changed between two passes.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

Doc = dict[str, Any]
TOP = json.loads((Path(__file__).parent / "data" / "top.test.json").read_text())
HOST, ADDRESS = "mx1.top.test", "10.53.0.10"
OLD_KEY = "55195b1f568ebc1b8cfdef2bcbc72cad954df0f917c8b30d4c4127d9c6313bb1"
NEW_KEY = "ab" * 32


def top() -> Doc:
    return copy.deepcopy(TOP)


def _x509_address(doc: Doc) -> dict[str, Any]:
    address: dict[str, Any] = doc["checks"]["x509"]["hosts"][0]["addresses"][0]
    return address


def _dane_address(doc: Doc) -> dict[str, Any]:
    address: dict[str, Any] = doc["checks"]["dane"]["hosts"][0]["addresses"][0]
    return address


def with_days_left(doc: Doc, days: int) -> Doc:
    doc = copy.deepcopy(doc)
    _x509_address(doc)["days_left"] = days
    return doc


def with_new_key(doc: Doc, key: str = NEW_KEY, serial: str = "1234") -> Doc:
    """The MX presents a certificate with another key: the published TLSA (the old key) no longer matches."""
    doc = copy.deepcopy(doc)
    cert = _x509_address(doc)["certificate"]
    cert["spki_sha256"], cert["serial"] = key, serial
    dane = _dane_address(doc)
    dane["dane"], dane["outcome"] = "no_match", "fail"
    for record in dane["records"]:
        record["matched"], record["note"] = False, "no match"
    doc["protocols"]["dane"] = {"status": "fail", "reason": "0 of 1 reachable MX host(s) match", "share": 0.0}
    doc["scores"]["confidentiality"] = 7
    doc["findings"] = [f for f in doc["findings"] if f["id"] != "dane.match"] + [
        {
            "id": "dane.no_match",
            "status": "fail",
            "protocol": "dane",
            "message": f"{HOST} [{ADDRESS}]: no TLSA record matches the certificate",
            "evidence": [f"3 1 1 {OLD_KEY}: no match"],
            "remediation": "dane.publish",
            "subject": f"{HOST} {ADDRESS}",
        }
    ]
    return doc


def with_tlsa(doc: Doc, records: list[tuple[str, bool]]) -> Doc:
    doc = copy.deepcopy(doc)
    doc["checks"]["dane"]["hosts"][0]["tlsa"] = [r for r, _ in records]
    _dane_address(doc)["records"] = [{"record": r, "matched": m, "note": ""} for r, m in records]
    return doc


def with_dmarc_none(doc: Doc) -> Doc:
    doc = copy.deepcopy(doc)
    record = "v=DMARC1; p=none; rua=mailto:dmarc_reports@top.test"
    doc["protocols"]["dmarc_policy"] = {"status": "fail", "reason": "p=none: spoofed mail is delivered"}
    doc["scores"]["phishing"], doc["scores"]["integrity"] = 6, 6
    doc["findings"] = [f for f in doc["findings"] if f["id"] != "dmarc_policy.enforced"] + [
        {
            "id": "dmarc_policy.none",
            "status": "fail",
            "protocol": "dmarc_policy",
            "message": "p=none: receivers deliver mail that fails DMARC",
            "evidence": [record],
            "remediation": "dmarc.policy_reject",
        }
    ]
    return doc


def with_mta_sts(doc: Doc, txt_id: str, policy_sha256: str) -> Doc:
    doc = copy.deepcopy(doc)
    details = doc["protocols"]["mta-sts"]["details"]
    details["txt_id"], details["policy_sha256"] = txt_id, policy_sha256
    return doc


def with_mx(doc: Doc, hosts: dict[str, list[str]]) -> Doc:
    doc = copy.deepcopy(doc)
    doc["checks"]["mx"]["hosts"] = [
        {"name": h, "preference": 10, "addresses": a, "cname_chain": [], "dnssec": {}}
        for h, a in hosts.items()
    ]
    return doc


def with_port25_silent(doc: Doc) -> Doc:
    doc = copy.deepcopy(doc)
    smtp = doc["checks"]["starttls"]["hosts"][0]["addresses"][0]["smtp"]
    smtp.update(connected=False, failed_stage="connect", failure="network", reason="connect: timed out")
    doc["findings"].append(
        {
            "id": "starttls.unreachable",
            "status": "error",
            "protocol": "starttls",
            "message": f"{HOST} [{ADDRESS}]: could not complete SMTP up to EHLO (connect: timed out)",
            "evidence": ["stage=connect", "failure=network"],
            "subject": f"{HOST} {ADDRESS}",
        }
    )
    return doc


def with_error_finding(doc: Doc) -> Doc:
    doc = copy.deepcopy(doc)
    doc["findings"].append(
        {
            "id": "dkim.lookup_error",
            "status": "error",
            "protocol": "dkim",
            "message": "SERVFAIL",
            "evidence": [],
        }
    )
    return doc
