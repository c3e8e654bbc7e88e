"""The programs the lab runs: one list, for the lab tests' skip reason and the demo's fallback."""

from __future__ import annotations

import shutil

REQUIRED_PROGRAMS = (
    "ip",
    "knotd",
    "keymgr",
    "knotc",
    "unbound",
    "postfix",
    "opendkim",
    "opendmarc",
    "policyd-spf",
    "ldns-signzone",
    "ldns-keygen",
    "ldns-key2ds",
    "openssl",  # the OCSP responder of the revocation scenarios (lab/revocation.py)
)


def missing_programs() -> list[str]:
    """The lab's programs that are not on PATH (scripts/bootstrap installs them)."""
    return [p for p in REQUIRED_PROGRAMS if shutil.which(p) is None]
