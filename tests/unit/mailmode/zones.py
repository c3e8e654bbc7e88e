"""The DNS of the mail-mode tests: senders with SPF, DKIM keys and DMARC policies."""

from __future__ import annotations

from tests.unit.dkim_keys import zone_txt
from tests.unit.mailmode.signing import HEAD, ed_record, key_line, rsa_record

SENDER_IP = "127.0.0.10"
OTHER_IP = "127.0.0.99"


def key_at(owner: str, record: str) -> str:
    return f"{owner} IN TXT {zone_txt(record)}\n"


def zones() -> dict[str, str]:
    """sender.test: -all and p=reject; strict.test: adkim=s aspf=s pct=50; soft.test: ~all;
    other.test: an unrelated signer with p=none."""
    spf = f'"v=spf1 ip4:{SENDER_IP} -all"'
    return {
        # the TLD answers like a real one (NXDOMAIN for _dmarc.test): RFC 9989 walks reach it
        "test.": HEAD,
        "sender.test.": HEAD
        + f"@ IN TXT {spf}\n@ IN MX 10 mail\nmail IN A {SENDER_IP}\nmail IN TXT {spf}\n"
        + key_line("s1", rsa_record("good"))
        + key_line("s2", rsa_record("published"))
        + key_line("e1", ed_record("ed"))
        + key_line("revoked", "v=DKIM1; p=")
        + key_at("s1._domainkey.mail", rsa_record("good"))
        + '_dmarc IN TXT "v=DMARC1; p=reject; sp=quarantine; np=none; rua=mailto:d@sender.test"\n'
        + "exists IN A 127.0.0.11\n",
        "soft.test.": HEAD + f'@ IN TXT "v=spf1 ip4:{SENDER_IP} ~all"\n',
        "strict.test.": HEAD
        + f"@ IN TXT {spf}\nmail IN TXT {spf}\n"
        + key_line("s1", rsa_record("good"))
        + key_at("s1._domainkey.mail", rsa_record("good"))
        + '_dmarc IN TXT "v=DMARC1; p=reject; adkim=s; aspf=s; pct=50"\n',
        "other.test.": HEAD
        + f"@ IN TXT {spf}\n"
        + key_line("s1", rsa_record("good"))
        + '_dmarc IN TXT "v=DMARC1; p=none"\n',
    }
