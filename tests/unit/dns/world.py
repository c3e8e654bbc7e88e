"""A signed test hierarchy: `.` → `test.` → `top.test.` (NSEC), `n3.test.` (NSEC3), `weak.test.`
(unsigned), each built with dns.dnssec and served by the in-process zone server on loopback."""

from __future__ import annotations

from dataclasses import dataclass, field

from mecsa.dns.resolver import DnsClient
from mecsa.dns.signing import Key, Signing, new_key, sign_zone
from mecsa.dns.validation.anchors import TrustAnchors, parse_anchors
from mecsa.dns.validation.verdict import DnssecMode
from tests.conftest import ServeZones

TLSA = "3 1 1 " + "ab" * 32
HEAD = "@ 300 IN SOA ns hostmaster 1 300 300 300 300\n@ IN NS ns\nns IN A 127.0.0.53\n"
LEAF = (
    HEAD
    + "mx1 IN A 127.0.0.25\n"
    + f"_25._tcp.mx1 IN TLSA {TLSA}\n"
    + "mx2 IN A 127.0.0.26\n"
    + f"*._tcp.mx2 IN TLSA {TLSA}\n"
    + "alias IN CNAME mx1\n"
    + '@ IN TXT "v=spf1 -all"\n'
    + "@ IN MX 10 mx1\n"
    + '_dmarc IN TXT "v=DMARC1; p=reject"\n'
)
KEYS: dict[str, Key] = {}


def key(zone: str) -> Key:
    if zone not in KEYS:
        KEYS[zone] = new_key()
    return KEYS[zone]


@dataclass
class World:
    """What to break; the defaults make a healthy hierarchy."""

    signing: dict[str, Signing] = field(default_factory=dict)
    keys: dict[str, list[Key]] = field(default_factory=dict)
    ds: dict[str, list[str]] = field(default_factory=dict)  # child -> DS rdata texts at the parent
    unsigned: set[str] = field(default_factory=lambda: {"weak.test."})
    extra: dict[str, str] = field(default_factory=dict)  # zone -> more records

    def zone_keys(self, zone: str) -> list[Key]:
        return self.keys.get(zone, [key(zone)])

    def ds_lines(self, child: str) -> str:
        if child in self.unsigned:
            return ""
        texts = self.ds.get(child) or [self.zone_keys(child)[0].ds(child).to_text()]
        return "".join(f"{child} IN DS {t}\n" for t in texts)

    def zones(self) -> dict[str, str]:
        leaves = {"top.test.": LEAF, "n3.test.": LEAF, "weak.test.": LEAF}
        out: dict[str, str] = {}
        for zone, text in leaves.items():
            text += self.extra.get(zone, "")
            if zone in self.unsigned:
                out[zone] = text
            else:
                how = self.signing.get(zone, Signing(denial="nsec3" if zone == "n3.test." else "nsec"))
                out[zone] = sign_zone(zone, text, self.zone_keys(zone), how)
        tld = HEAD + "".join(f"{c} IN NS ns.{c}\nns.{c} IN A 127.0.0.53\n" + self.ds_lines(c) for c in leaves)
        out["test."] = sign_zone(
            "test.", tld + self.extra.get("test.", ""), self.zone_keys("test."), self.signing.get("test.")
        )
        root = ". 300 IN SOA ns.root. hostmaster.root. 1 300 300 300 300\n. IN NS ns.root.\n"
        root += "test. IN NS ns.test.\nns.test. IN A 127.0.0.53\n" + self.ds_lines("test.")
        out["."] = sign_zone(".", root, self.zone_keys("."), self.signing.get("."))
        return out

    def anchors(self) -> TrustAnchors:
        return parse_anchors(f". IN DS {key('.').ds('.').to_text()}\n", "test root")


async def client_for(
    serve_zones: ServeZones,
    world: World,
    mode: DnssecMode = DnssecMode.OWN,
    *,
    validating: bool = False,
    secure: tuple[str, ...] = (),
    anchors: TrustAnchors | None = None,
) -> DnsClient:
    """A client in `mode` on a loopback server that serves the world (validating or not)."""
    plain = await serve_zones(world.zones(), validating=validating, secure=secure)
    return DnsClient(
        plain.nameservers, timeout=1.0, attempts=1, dnssec_mode=mode, trust_anchors=anchors or world.anchors()
    )
