"""policyd-spf (postfix-policyd-spf-python): its configuration file.

It rejects a hard SPF `fail` at RCPT time and adds no verdict for OpenDMARC to trust: OpenDMARC
validates SPF itself (see `opendmarc`). Loopback and the trusted networks are skipped, as they
submit mail rather than relay it in.
"""

from __future__ import annotations

from mecsa.harden.settings import HardenSettings


def policyd_spf_conf(settings: HardenSettings) -> str:
    """The whole policyd-spf.conf."""
    skip = ",".join(("127.0.0.0/8", "::ffff:127.0.0.0/104", "::1", *settings.mynetworks))
    return (
        "# Written by `mecsa harden`; re-run it rather than editing this file.\n"
        "debugLevel = 1\n"
        "TestOnly = 1\n"  # 1 means "act on results"; 0 would only log
        "HELO_reject = Fail\n"
        "Mail_From_reject = Fail\n"
        "PermError_reject = False\n"
        "TempError_Defer = False\n"
        f"skip_addresses = {skip}\n"
    )
