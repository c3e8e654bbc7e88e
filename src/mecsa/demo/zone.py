"""The embedded demo zone: a well-configured mail domain, served on loopback until the lab exists.

MX and MTA-STS hosts sit on 127.0.0.x where nothing listens, so the transport checks report
errors (could not connect), never a pass. The DKIM key is a fixed public key made once for the
demo; no private key exists, so nothing can be signed with it.
"""

from __future__ import annotations

DEMO_DOMAIN = "mecsa-demo.test"
DKIM_SELECTOR = "demo2024"
# A 2048-bit RSA SubjectPublicKeyInfo, base64 (generated once with cryptography; private half discarded).
DKIM_PUBLIC_KEY = (
    "MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEAlPlyNpUiTeHKa9iZGtZaqoPvdHDGkrLBVMXsLIaEe7mWuBeO8r/L4X7W"
    "R/8M/lvET4iTgRTF0eZimZqLVSGWTkxu5AvHIkaslW4H7BNr/IrYjpfcUsBmwKmwDkRI03OAaDMmPdpHobLwfZ48BkZqKGpiRHIF"
    "PgzG9pTBXgjz73TgRkm1ntfW9hz3qHNHAW5E7AXZgliFVjYICpRBTRYUNivpajHG0XWyaB57W/xv5+AaVBlapNIkFfc6Lsl9IDgH"
    "YltYIBC6lUkcuRIy2IGbEnfrBbh78sOAL3bWQ9RSwtAZkMcaEVt/cczAd8DxtTQweB24XaCKqo88E5cTJIqGXwIDAQAB"
)


def _txt(text: str) -> str:
    """TXT rdata in zone-file syntax: character-strings of at most 255 octets (RFC 1035 §3.3)."""
    return " ".join(f'"{text[i : i + 250]}"' for i in range(0, len(text), 250))


def demo_zone_text() -> str:
    """The zone file of `mecsa-demo.test`."""
    dkim = f"v=DKIM1; k=rsa; p={DKIM_PUBLIC_KEY}"
    dmarc = f"v=DMARC1; p=reject; sp=reject; rua=mailto:dmarc-reports@{DEMO_DOMAIN}"
    tls_rpt = f"v=TLSRPTv1; rua=mailto:tls-reports@{DEMO_DOMAIN}"
    return "\n".join(
        (
            "$TTL 300",
            "@ IN SOA ns1 hostmaster 2024010101 3600 600 86400 300",
            "@ IN NS ns1",
            "ns1 IN A 127.0.0.53",
            "@ IN MX 10 mx1",
            "@ IN MX 20 mx2",
            "mx1 IN A 127.0.0.25",
            "mx2 IN A 127.0.0.26",
            "mta-sts IN A 127.0.0.27",
            f"@ IN TXT {_txt('v=spf1 mx -all')}",
            f"_dmarc IN TXT {_txt(dmarc)}",
            f"{DKIM_SELECTOR}._domainkey IN TXT {_txt(dkim)}",
            f"_smtp._tls IN TXT {_txt(tls_rpt)}",
            f"_mta-sts IN TXT {_txt('v=STSv1; id=2024010101')}",
            "",
        )
    )


def demo_zones() -> dict[str, str]:
    """{origin: zone text} for `ZoneData.from_texts`."""
    return {DEMO_DOMAIN + ".": demo_zone_text()}
