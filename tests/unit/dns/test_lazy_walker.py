"""The chain walker is made when first needed, so the cold CLI's first questions go out before it."""

from __future__ import annotations

import subprocess
import sys
import textwrap

_PROBE = textwrap.dedent(
    """
    import asyncio, sys
    from mecsa.dns.resolver import DnsClient, Resolver
    from mecsa.dns.validation.anchors import iana_root_anchors
    from mecsa.dns.validation.verdict import DnssecMode

    async def main():
        anchors = iana_root_anchors()  # a DS file: parsed without dns.dnssec
        resolver = Resolver(DnsClient(["127.0.0.1"], dnssec_mode=DnssecMode.BOTH, trust_anchors=anchors))
        before = {m for m in ("dns.dnssec", "mecsa.dns.validation.walker") if m in sys.modules}
        own = resolver.validates_itself and await resolver.validates()
        validator = resolver.validator
        after = "mecsa.dns.validation.walker" in sys.modules
        plain = Resolver(DnsClient(["127.0.0.1"], dnssec_mode=DnssecMode.RESOLVER))
        same = validator is resolver.validator
        print(sorted(before), own, same, after, plain.validator, plain.validates_itself)

    asyncio.run(main())
    """
)


def test_the_walker_is_imported_and_made_on_first_use_only() -> None:
    done = subprocess.run(
        [sys.executable, "-c", _PROBE], capture_output=True, text=True, timeout=60, check=True
    )
    assert done.stdout.split() == ["[]", "True", "True", "True", "None", "False"], done.stderr
