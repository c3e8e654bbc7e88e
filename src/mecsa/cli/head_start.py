"""The head start of `mecsa assess`: its first two questions, before the DNS stack is imported.

Importing asyncio, dnspython and the resolver takes a cold run ~100 ms. The assessment's critical
path starts with the MX question and the validation probe (`. SOA`, whose AD bit says whether the
resolver validates): sent here, on plain sockets, their replies arrive during those imports, and
the resolver takes them when it asks the same questions (`mecsa.dns.presend`). At 50 ms per
round trip that is one round trip off the whole run; on a fast network it changes nothing.

Only what `mecsa.cli.early.assess_early` asks first anyway is sent, to the server the resolver
asks first (the first `--resolver`, else the first nameserver of /etc/resolv.conf), with the
flags it will use: the probe always, the MX question when a check that starts from the MX set
runs. A question sent here that the resolver does not take (a server read differently from
/etc/resolv.conf, say) is closed unanswered after the assessment; the document's question counts
are the resolver's and do not change.
"""

from __future__ import annotations

import contextlib
import ipaddress
from collections.abc import Collection, Iterable, Iterator, Sequence
from pathlib import Path

from mecsa.dns import presend
from mecsa.dns.nameserver import Nameserver, ResolverConfigError, parse_nameserver

_MX, _SOA = 15, 6
# The checks whose observation starts from the MX set (mecsa.observe.mx.observe_mx); the
# early start asks the MX question exactly when one of them runs (tests/unit/test_early.py).
MX_CHECKS = frozenset({"mx", "starttls", "x509", "dane", "mta-sts", "dnssec"})


def selected(names: Iterable[str], only: Collection[str], skip: Collection[str]) -> frozenset[str]:
    """The checks of `names` an assessment runs: those of `--only` (all when none), less `--skip`."""
    return frozenset(n for n in names if (not only or n in only) and n not in skip)


def send_first_questions(
    domain: str,
    resolvers: Sequence[str] | None,
    checks: frozenset[str],
    dnssec_mode: str,
    resolv_conf: str = "/etc/resolv.conf",
) -> int:
    """Send the probe and (when `checks` need it) the MX question of `domain` now; how many went."""
    server = _first_server(resolvers, resolv_conf)
    if server is None:
        return 0
    questions = [(".", _SOA, False)]
    if checks & MX_CHECKS:
        # In `own` mode the resolver's judgement is not wanted: the MX is asked with checking off.
        questions.insert(0, (domain, _MX, dnssec_mode == "own"))
    return presend.send_early(questions, server.host, server.port)


# The values that `assess` checks only after the DNS stack is imported: mecsa.dns.validation.verdict's
# DnssecMode and mecsa.observe.dmarc's DiscoveryMethod (tests/unit/dns/test_presend.py compares).
DNSSEC_MODES = frozenset({"own", "resolver", "both"})
DISCOVERY_METHODS = frozenset({"treewalk", "psl"})
_PROFILES = Path(__file__).resolve().parent.parent / "scoring" / "profiles"


def arguments_pass(timeout: float, dnssec_mode: str, dmarc_discovery: str | None, profile: str) -> bool:
    """Whether the arguments `assess` checks after the DNS stack's imports will pass: only then is
    anything sent early, so that a usage error never asks a question."""
    return (
        timeout > 0
        and dnssec_mode in DNSSEC_MODES
        and (dmarc_discovery is None or dmarc_discovery in DISCOVERY_METHODS)
        and profile in _profile_names()
    )


def _profile_names() -> set[str]:
    """The built-in profiles, as mecsa.scoring.profile_names lists them (the package's JSON files)."""
    try:
        return {p.name.removesuffix(".json") for p in _PROFILES.iterdir() if p.name.endswith(".json")}
    except OSError:
        return set()


@contextlib.contextmanager
def head_start(
    domain: str,
    resolvers: Sequence[str] | None,
    checks: frozenset[str],
    dnssec_mode: str,
    *,
    enabled: bool = True,
) -> Iterator[int]:
    """`send_first_questions` (when `enabled`), and the questions nobody took closed at the end."""
    try:
        yield send_first_questions(domain, resolvers, checks, dnssec_mode) if enabled else 0
    finally:
        presend.discard()


def _first_server(resolvers: Sequence[str] | None, resolv_conf: str) -> Nameserver | None:
    if resolvers:
        try:
            servers = [parse_nameserver(r) for r in resolvers]  # all: a bad later one is a usage error too
        except ResolverConfigError:
            return None  # the usage error is the resolver's to report
        return servers[0]
    try:
        lines = Path(resolv_conf).read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        return None
    for line in lines:
        tokens = line.split()
        if len(tokens) >= 2 and tokens[0] == "nameserver":
            try:
                ipaddress.ip_address(tokens[1])
            except ValueError:
                return None  # dnspython's reading of such a file is its own: do not guess
            return Nameserver(tokens[1], 53)
    return None
