"""Our own DNSSEC validation: trust anchors, the chain walk, denial proofs and algorithm strength."""

from mecsa.dns.validation.anchors import TrustAnchorError, TrustAnchors, iana_root_anchors, load_anchor_file
from mecsa.dns.validation.verdict import ChainVerdict, DnssecMode, StrengthNote, combine
from mecsa.dns.validation.walker import ChainValidator, Fetched

__all__ = [
    "ChainValidator",
    "ChainVerdict",
    "DnssecMode",
    "Fetched",
    "StrengthNote",
    "TrustAnchorError",
    "TrustAnchors",
    "combine",
    "iana_root_anchors",
    "load_anchor_file",
]
