"""The per-check deadline, derived from the timeouts the user states.

A check's deadline is a backstop against a bug or an unbounded wait, so it must never cut off a
check whose every step stays inside its own stated bound: a fixed 120 s turned a slow MX into an
error as soon as `--smtp-timeout` was raised to 20 s. So it is the longest chain of bounded waits
a check can make, plus a margin (the README's "Timeouts and politeness" states the same formula):

    A = attempts × 2 × dns_timeout          one DNS answer: each attempt may wait for UDP, then
                                            for TCP when the UDP reply was truncated
    deadline = MARGIN + max(
        DNS_BEFORE_SMTP × A + 15 × S + R,   MX → host address → (CNAME re-ask, DNSSEC CD re-ask),
                                            then per address: the session (5 S), its one retry after
                                            a hang-up in the handshake (5 S), the TLS sweep (5 S);
                                            then x509's revocation lookup of the certificate, R
                                            (25 s as a whole; 0 when revocation is off)
        DNS_BEFORE_HTTPS × A + 2 × F,       _mta-sts TXT → policy host address (and re-asks), then
                                            the policy fetch, F per address, for an IPv4 and an
                                            IPv6 address
        DNS_CHAIN_SPF × A,                  the SPF audit: 11 nested records (10 lookups + the
                                            root), then an mx term's MX and address lookups
    )

With the defaults (2 s DNS timeout, 3 attempts, S = 10 s, R = 25 s, F = 20 s) this is 257 s. Sessions to
different MX addresses run at the same time, so the number of MX hosts does not add up here.
"""

from __future__ import annotations

from mecsa.observe.revocation import DEADLINE_S as REVOCATION_DEADLINE_S
from mecsa.probes.https import ATTEMPT_TIMEOUT_S

DNS_BEFORE_SMTP = 6
DNS_BEFORE_HTTPS = 6
DNS_CHAIN_SPF = 13
SMTP_SESSIONS_PER_ADDRESS = 3  # the session, its one retry, the TLS sweep: each bounded by 5 S
HTTPS_ADDRESSES = 2
MARGIN_S = 10.0


def dns_answer_bound(dns_timeout: float, attempts: int) -> float:
    """The longest one DNS answer can take: every attempt waits for UDP and then TCP."""
    return attempts * 2 * dns_timeout


def check_deadline(
    dns_timeout: float, attempts: int, smtp_timeout: float, *, revocation: bool = True
) -> float:
    """The deadline of each check, in seconds, from the stated timeouts (see the module docstring)."""
    answer = dns_answer_bound(dns_timeout, attempts)
    transport = DNS_BEFORE_SMTP * answer + SMTP_SESSIONS_PER_ADDRESS * 5 * smtp_timeout
    transport += REVOCATION_DEADLINE_S if revocation else 0.0
    mta_sts = DNS_BEFORE_HTTPS * answer + HTTPS_ADDRESSES * ATTEMPT_TIMEOUT_S
    spf = DNS_CHAIN_SPF * answer
    return MARGIN_S + max(transport, mta_sts, spf)
